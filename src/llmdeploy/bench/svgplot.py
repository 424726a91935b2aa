"""Tiny dependency-free SVG charts (line and scatter) for the self-contained HTML report.

Every data mark carries ``class="mark"`` so a browser test can check that plots rendered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")

__all__ = ["PALETTE", "Series", "chart", "nice_ticks"]


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]
    color: str = PALETTE[0]
    line: bool = True
    markers: bool = False
    dashed: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks: list[float] = []
    v = start
    while v <= hi + step * 1e-9 and len(ticks) < 50:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(v, 12))
    return ticks


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 10000:
        return f"{v / 1000:g}k"
    return f"{v:.4g}"


def chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    chart_id: str,
    width: int = 640,
    height: int = 320,
    y_min: float | None = 0.0,
) -> str:
    """An SVG chart of lines and/or markers with axes, ticks, labels and a legend."""
    pts = [p for s in series for p in s.points if math.isfinite(p[0]) and math.isfinite(p[1])]
    left, right, top, bottom = 64, 16, 34, 48
    pw, ph = width - left - right, height - top - bottom
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" id="{escape(chart_id)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="20" class="ttl">{escape(title)}</text>',
    ]
    if not pts:
        out.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="empty">'
            "no data</text></svg>"
        )
        return "".join(out)
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    xt = nice_ticks(min(xs), max(xs))
    y_lo = min(ys) if y_min is None else min(y_min, min(ys))
    yt = nice_ticks(y_lo, max(ys))
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]

    def sx(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1) * pw

    def sy(y: float) -> float:
        return top + ph - (y - y0) / ((y1 - y0) or 1) * ph

    out.append('<g class="axes" font-size="11" fill="#444">')
    for t in yt:
        y = sy(t)
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e6e6"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt_tick(t)}</text>'
        )
    for t in xt:
        x = sx(t)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#888"/>'
            f'<text x="{x:.1f}" y="{top + ph + 17}" text-anchor="middle">{_fmt_tick(t)}</text>'
        )
    out.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#888"/>'
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#888"/>'
        f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>'
        f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text></g>"
    )
    for s in series:
        good = [p for p in s.points if math.isfinite(p[0]) and math.isfinite(p[1])]
        if not good:
            continue
        if s.line and len(good) > 1:
            d = "M" + " L".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in good)
            dash = ' stroke-dasharray="5,4"' if s.dashed else ""
            out.append(
                f'<path class="mark" d="{d}" fill="none" stroke="{s.color}" '
                f'stroke-width="1.8"{dash}><title>{escape(s.name)}</title></path>'
            )
        if s.markers or (s.line and len(good) == 1):
            r = 2.2 if len(good) > 200 else 3.5
            out.append(f'<g fill="{s.color}" fill-opacity="0.75">')
            out.extend(
                f'<circle class="mark" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{r}"/>'
                for x, y in good
            )
            out.append("</g>")
    # legend
    lx, ly = left + 8, top + 6
    out.append('<g class="legend" font-size="11">')
    for i, s in enumerate(series):
        y = ly + i * 15
        out.append(
            f'<rect x="{lx}" y="{y}" width="10" height="10" fill="{s.color}"/>'
            f'<text x="{lx + 14}" y="{y + 9}">{escape(s.name)}</text>'
        )
    out.append("</g></svg>")
    return "".join(out)
