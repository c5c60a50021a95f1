# SPDX-License-Identifier: GPL-3.0-or-later
"""Small charts as inline SVG, for a page that must open anywhere with nothing fetched: no
script, no font, no namespace URL (HTML5 needs none for inline SVG). Every text is escaped.

Bars and areas are filled with one solid colour each, and the charts have no background of
their own, so a screenshot of the page shows them as blocks of that colour on the page's."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 1080
HEIGHT = 220
MARGIN_LEFT = 64
MARGIN_BOTTOM = 28
MARGIN_TOP = 12
AXIS_COLOUR = "#555555"
MAX_LABELS = 24
"""Labels under the x axis at most (every n-th bar is labelled beyond that)."""


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    colour: str,
    label: str,
    unit_text: str,
    css_class: str,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """One bar per (name, value), left to right, its height the value against the largest; each
    bar's tooltip says its name and ``unit_text`` of its value (``{}`` is where it goes)."""
    plot_width, plot_height = width - MARGIN_LEFT, height - MARGIN_BOTTOM - MARGIN_TOP
    highest = max((value for _, value in bars), default=0.0)
    parts = [_frame(label, width, height), _y_axis(highest, unit_text, height)]
    if bars:
        slot = plot_width / len(bars)
        every = max(1, -(-len(bars) // MAX_LABELS))
        for index, (name, value) in enumerate(bars):
            tall = plot_height * value / highest if highest > 0 else 0.0
            x = MARGIN_LEFT + index * slot + slot * 0.1
            tip = escape(f"{name}: {unit_text.format(value)}")
            parts.append(
                f'<rect class="{escape(css_class)}" x="{x:.1f}" '
                f'y="{MARGIN_TOP + plot_height - tall:.1f}" width="{slot * 0.8:.1f}" '
                f'height="{tall:.1f}" fill="{escape(colour)}"><title>{tip}</title></rect>'
            )
            if index % every == 0:
                parts.append(
                    f'<text x="{x + slot * 0.4:.1f}" y="{height - 10}" text-anchor="middle">'
                    f"{escape(name)}</text>"
                )
    return "".join(parts) + "</svg>"


def area_chart(
    points: Sequence[tuple[float, float]],
    *,
    colour: str,
    label: str,
    x_text: str,
    y_text: str,
    css_class: str,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """A rising step line of (x, y) points, x in order, filled down to the x axis; the axes'
    ends are labelled with ``x_text`` and ``y_text`` of their values."""
    plot_width, plot_height = width - MARGIN_LEFT, height - MARGIN_BOTTOM - MARGIN_TOP
    highest = max((y for _, y in points), default=0.0)
    parts = [_frame(label, width, height), _y_axis(highest, y_text, height)]
    if points and highest > 0:
        first, last = points[0][0], points[-1][0]
        span = (last - first) or 1.0
        bottom = MARGIN_TOP + plot_height

        def at(x: float, y: float) -> str:
            left = MARGIN_LEFT + plot_width * (x - first) / span
            return f"{left:.1f},{bottom - plot_height * y / highest:.1f}"

        outline = [at(first, 0.0)]
        previous = 0.0
        for x, y in points:
            outline += [at(x, previous), at(x, y)]
            previous = y
        outline += [at(last, previous), at(last, 0.0)]
        parts.append(
            f'<polygon class="{escape(css_class)}" points="{" ".join(outline)}" '
            f'fill="{escape(colour)}"/>'
        )
        for x, anchor in ((first, "start"), (last, "end")):
            parts.append(
                f'<text x="{MARGIN_LEFT + plot_width * (x - first) / span:.1f}" '
                f'y="{height - 10}" text-anchor="{anchor}">{escape(x_text.format(x - first))}'
                "</text>"
            )
    return "".join(parts) + "</svg>"


def _frame(label: str, width: int, height: int) -> str:
    bottom = height - MARGIN_BOTTOM
    return (
        f'<svg role="img" aria-label="{escape(label)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-size="11" font-family="sans-serif">'
        f"<title>{escape(label)}</title>"
        f'<line x1="{MARGIN_LEFT}" y1="{bottom}" x2="{width}" y2="{bottom}" '
        f'stroke="{AXIS_COLOUR}"/>'
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" y2="{bottom}" '
        f'stroke="{AXIS_COLOUR}"/>'
    )


def _y_axis(highest: float, unit_text: str, height: int) -> str:
    bottom = height - MARGIN_BOTTOM
    return (
        f'<text x="{MARGIN_LEFT - 6}" y="{MARGIN_TOP + 10}" text-anchor="end">'
        f"{escape(unit_text.format(highest))}</text>"
        f'<text x="{MARGIN_LEFT - 6}" y="{bottom}" text-anchor="end">'
        f"{escape(unit_text.format(0.0))}</text>"
    )
