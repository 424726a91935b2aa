"""llmdeploy: fill the weights volume with a Hugging Face snapshot, once (huggingface_hub).

Runs in the vLLM server's own image, which ships huggingface_hub: the repository's top-level
weights, config and tokenizer files at one revision, as llmdeploy's store takes them; HF_TOKEN
and HF_ENDPOINT are read by huggingface_hub itself. Files are renamed into place as they
complete; the marker is written last.
"""

import os
import socket
import sys
from pathlib import Path

from huggingface_hub import snapshot_download

dest = Path(os.environ["LLMDEPLOY_DEST"])
ref = os.environ["LLMDEPLOY_MODEL_REF"]
marker = dest / ".llmdeploy-complete"
if marker.is_file() and marker.read_text() == ref:
    print(f"weights already in the volume: {ref}")
    sys.exit(0)
dest.mkdir(parents=True, exist_ok=True)
snapshot_download(
    repo_id=os.environ["LLMDEPLOY_HF_REPO"],
    revision=os.environ["LLMDEPLOY_HF_REVISION"],
    local_dir=dest,
    allow_patterns=os.environ["LLMDEPLOY_HF_PATTERNS"].split(),
    ignore_patterns=["*/*"],
)
partial = dest / f".llmdeploy-complete.{socket.gethostname()}"
partial.write_text(ref)
os.replace(partial, marker)
print(f"weights ready: {ref}")
