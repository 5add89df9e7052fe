"""Charts as inline SVG, drawn on the server: no chart library, no script, nothing from a CDN.

Horizontal bars, one per department, with the value written at the bar's end; a bar chart
for a signed measure (NPS, −100…100) grows both ways from a zero line. Colours come from CSS
classes (`.cb-bar`, `.cb-bar-neg`), so the page's stylesheet themes them; the SVG carries a
<title> and an aria-label for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

ROW = 26
LABEL_W = 150
BAR_W = 260
VALUE_W = 70


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: no data (drawn as "—")
    text: str  # the value as shown


def bar_chart(title: str, bars: list[Bar], *, low: float = 0.0, high: float | None = None,
              label_w: int = LABEL_W) -> Markup:
    """Bars from `low` (0, or −100 for NPS) to `high` (default: the largest value); `label_w`: room
    for the labels (the funnel's step names are longer than department names)."""
    values = [b.value for b in bars if b.value is not None]
    top = high if high is not None else max([v for v in values if v > 0] or [1.0])
    span = (top - low) or 1.0
    zero_x = label_w + BAR_W * (0 - low) / span
    height = ROW * max(1, len(bars)) + 8
    width = label_w + BAR_W + VALUE_W
    parts = [f'<svg class="cb-chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    if low < 0:
        parts.append(f'<line class="cb-axis" x1="{zero_x:.1f}" y1="0" x2="{zero_x:.1f}" y2="{height}"/>')
    for i, bar in enumerate(bars):
        y = 4 + i * ROW
        parts.append(f'<text class="cb-label" x="{label_w - 8}" y="{y + ROW / 2 + 4:.1f}" '
                     f'text-anchor="end">{escape(bar.label)}</text>')
        end_x = zero_x
        if bar.value is not None:
            value = min(max(bar.value, low), top)
            x = label_w + BAR_W * (value - low) / span
            left, right = sorted((zero_x, x))
            kind = "cb-bar-neg" if bar.value < 0 else "cb-bar"
            parts.append(f'<rect class="{kind}" x="{left:.1f}" y="{y + 4}" width="{max(right - left, 1):.1f}" '
                         f'height="{ROW - 8}" rx="2"><title>{escape(bar.label)}: {escape(bar.text)}</title></rect>')
            end_x = max(x, zero_x)
        parts.append(f'<text class="cb-value" x="{end_x + 6:.1f}" y="{y + ROW / 2 + 4:.1f}">'
                     f'{escape(bar.text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


LINE_W, LINE_H, PAD_L, PAD_B, PAD_T, PAD_R = 520, 180, 44, 26, 12, 12


@dataclass(frozen=True)
class Point:
    label: str  # the day, as shown under the axis
    value: float | None  # None: no data that day (the line breaks)
    text: str


def line_chart(title: str, points: list[Point], *, low: float = 0.0, high: float | None = None,
               unit: str = "") -> Markup:
    """A daily trend: one line from `low` to `high` (default: the largest value), a dot per day with
    data (its value in a <title>), gaps where a day has none; first, middle and last days labelled."""
    values = [p.value for p in points if p.value is not None]
    top = high if high is not None else max(values + [low + 1.0])
    span = (top - low) or 1.0
    inner_w, inner_h = LINE_W - PAD_L - PAD_R, LINE_H - PAD_T - PAD_B
    step = inner_w / max(1, len(points) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        v = min(max(v, low), top)
        return PAD_L + i * step, PAD_T + inner_h * (1 - (v - low) / span)

    parts = [f'<svg class="cb-chart cb-line-chart" viewBox="0 0 {LINE_W} {LINE_H}" width="100%" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for v in (low, (low + top) / 2, top):  # three gridlines with their values
        _, y = xy(0, v)
        parts.append(f'<line class="cb-grid" x1="{PAD_L}" y1="{y:.1f}" x2="{LINE_W - PAD_R}" y2="{y:.1f}"/>'
                     f'<text class="cb-label" x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{v:.0f}{escape(unit)}</text>')
    if low < 0 < top:
        _, y = xy(0, 0.0)
        parts.append(f'<line class="cb-axis" x1="{PAD_L}" y1="{y:.1f}" x2="{LINE_W - PAD_R}" y2="{y:.1f}"/>')
    runs: list[list[tuple[float, float]]] = [[]]
    for i, p in enumerate(points):
        if p.value is None:
            runs.append([])
        else:
            runs[-1].append(xy(i, p.value))
    for run in runs:
        if len(run) > 1:
            parts.append('<polyline class="cb-line" fill="none" points="'
                         + " ".join(f"{x:.1f},{y:.1f}" for x, y in run) + '"/>')
    for i, p in enumerate(points):
        if p.value is not None:
            x, y = xy(i, p.value)
            parts.append(f'<circle class="cb-dot" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                         f'<title>{escape(p.label)}: {escape(p.text)}</title></circle>')
    for i in sorted({0, (len(points) - 1) // 2, len(points) - 1}) if points else []:
        x, _ = xy(i, low)
        anchor = "start" if i == 0 else ("end" if i == len(points) - 1 else "middle")
        parts.append(f'<text class="cb-label" x="{x:.1f}" y="{LINE_H - 6}" text-anchor="{anchor}">'
                     f'{escape(points[i].label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
