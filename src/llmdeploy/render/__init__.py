"""Pure renderers: resolved profile in, file contents out. Writing to disk is separate."""
