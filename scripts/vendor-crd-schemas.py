#!/usr/bin/env python3
"""Refresh the CRD schemas ``llmdeploy export kube --check`` validates custom resources against.

Usage: vendor-crd-schemas.py SOURCE_LABEL CRD.yaml [CRD.yaml ...]

Each CustomResourceDefinition's served versions are written to
``src/llmdeploy/deploy/crd_schemas/<group>_<kind>_<version>.json`` as
``{"source": SOURCE_LABEL, "group", "kind", "version", "schema": openAPIV3Schema}`` with the
``description`` texts dropped (they are most of the bytes and no rule). Example, from clones of
the upstream repositories at their release tags:

    git -C keda show v2.20.2:config/crd/bases/keda.sh_scaledobjects.yaml > /tmp/so.yaml
    scripts/vendor-crd-schemas.py "kedacore/keda v2.20.2" /tmp/so.yaml
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parents[1] / "src" / "llmdeploy" / "deploy" / "crd_schemas"


def strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: strip_descriptions(v)
            for k, v in node.items()
            if not (k == "description" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, files = argv[0], argv[1:]
    for name in files:
        for crd in yaml.safe_load_all(Path(name).read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            kind = spec["names"]["kind"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                schema = strip_descriptions(version["schema"]["openAPIV3Schema"])
                record = {
                    "source": source,
                    "group": spec["group"],
                    "kind": kind,
                    "version": version["name"],
                    "schema": schema,
                }
                out = OUT / f"{spec['group']}_{kind}_{version['name']}.json"
                out.write_text(json.dumps(record, indent=None, sort_keys=True) + "\n")
                print(f"wrote {out.relative_to(OUT.parents[3])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
