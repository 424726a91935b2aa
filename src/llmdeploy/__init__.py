"""llmdeploy: take a language model from a laptop to production."""

__version__ = "0.1.0"
