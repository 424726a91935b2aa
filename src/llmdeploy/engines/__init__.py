"""Container-engine adapters (Podman, Docker) behind one interface; they execute RunSpecs."""
