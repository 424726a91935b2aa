"""Small clients for the inference endpoints llmdeploy starts."""
