"""Deployment lifecycle: plan (pure), up / down / status / logs (through an engine)."""
