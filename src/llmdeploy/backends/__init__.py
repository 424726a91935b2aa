"""Inference-backend adapters: each describes how to run its server; engines execute."""
