"""Model references (file://, pkg://) and the host-side model store mounted into containers."""
