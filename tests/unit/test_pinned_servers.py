"""The llama.cpp the tests run on the host is the one the image pins.

The planner's llama.cpp rules are checked against xllamacpp's server (tests/e2e) and its
figures are recorded for one llama.cpp build (tests/unit/test_kv_llamacpp.py); the dev extra
must install the same xllamacpp the CPU image builds, or CI could check another llama.cpp.
"""

from __future__ import annotations

import re
from pathlib import Path

from llmdeploy.backends.llamacpp import XLLAMACPP_VERSION

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_dev_extra_pins_the_images_xllamacpp() -> None:
    # the dev extra's line (Python 3.10 has no tomllib; the line is one TOML array)
    line = re.search(r"^dev = \[(.*)\]$", PYPROJECT.read_text("utf-8"), re.M)
    assert line is not None
    pins = [dep for dep in re.findall(r'"([^"]+)"', line.group(1)) if dep.startswith("xllamacpp")]
    assert pins == [f"xllamacpp=={XLLAMACPP_VERSION}"]
