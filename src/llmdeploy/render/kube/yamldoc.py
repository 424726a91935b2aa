"""YAML out of data, and the Kubernetes quantities the manifests carry.

Every manifest is built as dicts and lists and dumped here with PyYAML (never assembled as
text): keys stay in the order they were built (``kind`` and ``metadata`` first, as people write
them), multi-line strings (scripts, a Modelfile) are block literals, no anchors or aliases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from llmdeploy.core.sizes import GIB, MIB

Doc = dict[str, Any]


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def dump(docs: Sequence[Mapping[str, Any]], *, header: Sequence[str] = ()) -> str:
    """YAML documents separated by ``---``; ``header`` lines become comments at the top."""
    text = "".join(f"# {line}".rstrip() + "\n" for line in header)
    bodies = [
        yaml.dump(dict(doc), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096)
        for doc in docs
    ]
    return text + "---\n".join(bodies)


def memory_quantity(count: int) -> str:
    """Bytes as a Kubernetes quantity, rounded up: ``8Gi``, ``1536Mi``."""
    mib = max(1, math.ceil(count / MIB))
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def storage_quantity(count: int) -> str:
    """A volume size, rounded up to whole GiB (provisioners round up anyway)."""
    return f"{max(1, math.ceil(count / GIB))}Gi"


def cpu_quantity(cpus: float) -> str:
    """``2`` -> ``2``; ``0.5`` -> ``500m``."""
    millis = round(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
