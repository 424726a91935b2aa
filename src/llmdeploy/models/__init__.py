"""Model references (file://, pkg://, hf://, https://, ollama://), the host-side store,
sources that download into it, inspection of GGUF and Hugging Face models."""
