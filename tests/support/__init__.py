"""Helpers shared by several test folders (synthetic models, ...)."""
