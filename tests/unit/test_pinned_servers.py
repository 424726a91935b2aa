"""The llama.cpp the tests run on the host is the one the image pins.

The planner's llama.cpp rules are checked against xllamacpp's server (tests/e2e) and its
figures are recorded for one llama.cpp build (tests/unit/test_kv_llamacpp.py); the dev extra
must install the same xllamacpp the CPU image builds, or CI could check another llama.cpp.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from llmdeploy.backends.llamacpp import XLLAMACPP_VERSION

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_dev_extra_pins_the_images_xllamacpp() -> None:
    extras = tomllib.loads(PYPROJECT.read_text("utf-8"))["project"]["optional-dependencies"]
    pins = [dep for dep in extras["dev"] if dep.startswith("xllamacpp")]
    assert pins == [f"xllamacpp=={XLLAMACPP_VERSION}"]
