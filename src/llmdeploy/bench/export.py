"""CSV and self-contained HTML renderings of a :class:`BenchReport`.

The HTML page is rendered from the Jinja2 template ``templates/report.html.j2`` (autoescape
on, undefined names are errors) with the rows of :mod:`llmdeploy.bench.tables`, the same the
console shows. Its plots are Vega-Lite specifications (:mod:`llmdeploy.bench.plots`) drawn in
the browser by Vega and Vega-Lite, which the page carries inline (``templates/vendor/``), so
it opens with no network. A few lines of script record, in ``#render-check``, how many data
marks each plot laid out with a non-empty box.
"""

from __future__ import annotations

import csv
import io
import re
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from llmdeploy.bench.plots import plot_specs
from llmdeploy.bench.report import BenchReport, write_text
from llmdeploy.bench.tables import (
    CSV_COLUMNS,
    describe_run,
    error_messages,
    request_rows,
    server_table,
    stage_csv_row,
    stage_notes,
    summary_table,
)

if TYPE_CHECKING:
    from jinja2 import Environment
    from markupsafe import Markup

__all__ = ["render_csv", "render_html", "write_csv", "write_html", "write_requests_csv"]

VEGA_VERSION = "6.4.0"  # templates/vendor/vega.min.js (npm: vega)
VEGA_LITE_VERSION = "6.5.0"  # templates/vendor/vega-lite.min.js (npm: vega-lite)
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.M)


def render_csv(report: BenchReport) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for st in report.stages:
        w.writerow(stage_csv_row(st))
    return buf.getvalue()


def write_csv(report: BenchReport, path: str | Path) -> None:
    write_text(path, render_csv(report), "CSV file")


def write_requests_csv(report: BenchReport, path: str | Path) -> None:
    rows = request_rows(report)
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    write_text(path, buf.getvalue(), "CSV file")


def write_html(report: BenchReport, path: str | Path) -> None:
    write_text(path, render_html(report), "HTML page")


def render_html(report: BenchReport) -> str:
    """The self-contained HTML page of ``report``."""
    server_keys, server_rows = server_table(report)
    return _environment().get_template("report.html.j2").render(
        run=describe_run(report),
        downgrades=report.downgrades,
        messages=error_messages(report),
        gates=report.gates,
        stages=[st.name for st in report.stages],
        summary=summary_table(report),
        notes=[(st.name, stage_notes(st, report.config.workers)) for st in report.stages],
        server_keys=server_keys,
        server_rows=server_rows,
        plots=plot_specs(report),
        vega_js=_vendor_script("vega.min.js"),
        vega_lite_js=_vendor_script("vega-lite.min.js"),
        vega_version=VEGA_VERSION,
        vega_lite_version=VEGA_LITE_VERSION,
    )


@lru_cache(maxsize=1)
def _environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("llmdeploy.bench", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":")}  # |tojson, compact
    return env


@lru_cache(maxsize=4)
def _vendor_script(name: str) -> Markup:
    """A vendored script as trusted page text (inlined; its source-map comment dropped so
    nothing on the page points at another file)."""
    from markupsafe import Markup

    text = (files("llmdeploy.bench") / "templates" / "vendor" / name).read_text("utf-8")
    if "</script" in text.lower():  # would end the inline <script> element early
        raise ValueError(f"vendored {name} cannot be inlined: it contains '</script'")
    return Markup(_SOURCE_MAP.sub("", text))
