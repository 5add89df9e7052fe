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


def bar_chart(title: str, bars: list[Bar], *, low: float = 0.0, high: float | None = None) -> Markup:
    """Bars from `low` (0, or −100 for NPS) to `high` (default: the largest value)."""
    values = [b.value for b in bars if b.value is not None]
    top = high if high is not None else max([v for v in values if v > 0] or [1.0])
    span = (top - low) or 1.0
    zero_x = LABEL_W + BAR_W * (0 - low) / span
    height = ROW * max(1, len(bars)) + 8
    width = LABEL_W + BAR_W + VALUE_W
    parts = [f'<svg class="cb-chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    if low < 0:
        parts.append(f'<line class="cb-axis" x1="{zero_x:.1f}" y1="0" x2="{zero_x:.1f}" y2="{height}"/>')
    for i, bar in enumerate(bars):
        y = 4 + i * ROW
        parts.append(f'<text class="cb-label" x="{LABEL_W - 8}" y="{y + ROW / 2 + 4:.1f}" '
                     f'text-anchor="end">{escape(bar.label)}</text>')
        end_x = zero_x
        if bar.value is not None:
            value = min(max(bar.value, low), top)
            x = LABEL_W + BAR_W * (value - low) / span
            left, right = sorted((zero_x, x))
            kind = "cb-bar-neg" if bar.value < 0 else "cb-bar"
            parts.append(f'<rect class="{kind}" x="{left:.1f}" y="{y + 4}" width="{max(right - left, 1):.1f}" '
                         f'height="{ROW - 8}" rx="2"><title>{escape(bar.label)}: {escape(bar.text)}</title></rect>')
            end_x = max(x, zero_x)
        parts.append(f'<text class="cb-value" x="{end_x + 6:.1f}" y="{y + ROW / 2 + 4:.1f}">'
                     f'{escape(bar.text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
