"""One manifest file: objects built as data, dumped with PyYAML, under a comment header that
says what the objects need and where their figures came from."""

from __future__ import annotations

from typing import Any

import yaml

from llmdeploy.core.launch import RenderedFile

_WIDTH = 4096  # keep PromQL queries on one line


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (a dashboard's JSON) as ``|`` blocks, readable in the file."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def manifest_file(path: str, doc: dict[str, Any], comments: list[str]) -> RenderedFile:
    """``doc`` as YAML under ``# ``-prefixed ``comments`` (one line each)."""
    header = "".join(f"# {line}\n" if line else "#\n" for line in comments)
    body = yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=_WIDTH
    )
    return RenderedFile(path=path, content=header + body)
