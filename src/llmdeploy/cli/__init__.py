"""Thin Typer command modules. Only this package imports Typer and Rich."""
