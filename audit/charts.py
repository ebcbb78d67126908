"""Small server-side charts: inline SVG built in Python (no JavaScript, no CDN, no build step).

``bar_chart`` and ``line_chart`` take labelled points and return markup safe to drop into a template. Every
chart has a ``<title>`` (read by screen readers) and each mark a tooltip with its exact value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2")
# Colours that mean something: a series named for an outcome is drawn in its colour, whatever its place.
OUTCOME_COLORS = {
    "committed": "#16a34a",
    "ok": "#16a34a",
    "rejected": "#d97706",
    "failed": "#dc2626",
    "stale": "#7c3aed",
}
# Text stays legible once the 640-unit chart is scaled down into a card (~360 px wide): 13 units ≈ 8 px.
FONT_SIZE = 13
_CHAR_WIDTH = FONT_SIZE * 0.62  # an average glyph's width, to keep x labels from overlapping
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 52, 12, 22, 34


def _fmt(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.2f}"


def _frame(width: int, height: int, title: str, top: float, unit: str, labels: Sequence[str]) -> list[str]:
    plot_h = height - _PAD_TOP - _PAD_BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" class="chart" preserveAspectRatio="xMidYMid meet"><title>{escape(title)}</title>',
    ]
    for i in range(3):  # gridlines at 0, half, top
        value = top * i / 2
        y = _PAD_TOP + plot_h - plot_h * i / 2
        parts.append(
            f'<line x1="{_PAD_LEFT}" x2="{width - _PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#d1d5db" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{_PAD_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="{FONT_SIZE}" '
            f'fill="#374151">{escape(_fmt(value))}{escape(unit)}</text>'
        )
    plot_w = width - _PAD_LEFT - _PAD_RIGHT
    # Every step-th label, so that the longest fits in the room it gets (no two overlap).
    longest = max((len(label) for label in labels), default=1)
    room = plot_w / max(1, len(labels))
    step = max(1, math.ceil((longest * _CHAR_WIDTH + 8) / room))
    for i, label in enumerate(labels):
        if i % step:
            continue
        x = _PAD_LEFT + plot_w * (i + 0.5) / max(1, len(labels))
        parts.append(
            f'<text x="{x:.1f}" y="{height - 10}" text-anchor="middle" font-size="{FONT_SIZE}" '
            f'fill="#374151">{escape(label)}</text>'
        )
    return parts


def bar_chart(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 180,
    color: str = PALETTE[0],
) -> SafeString:
    labels = [label for label, _ in points]
    top = max([value for _, value in points] + [1.0])
    parts = _frame(width, height, title, top, unit, labels)
    plot_w = width - _PAD_LEFT - _PAD_RIGHT
    plot_h = height - _PAD_TOP - _PAD_BOTTOM
    slot = plot_w / max(1, len(points))
    for i, (label, value) in enumerate(points):
        bar_h = plot_h * value / top
        x = _PAD_LEFT + slot * i + slot * 0.15
        y = _PAD_TOP + plot_h - bar_h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{bar_h:.1f}" '
            f'fill="{color}"><title>{escape(label)}: {escape(_fmt(value))}{escape(unit)}</title></rect>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every interpolated text is escaped above)


def line_chart(
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 180,
) -> SafeString:
    values = [v for points in series.values() for v in points if v is not None]
    top = max([*values, 1.0])
    parts = _frame(width, height, title, top, unit, labels)
    plot_w = width - _PAD_LEFT - _PAD_RIGHT
    plot_h = height - _PAD_TOP - _PAD_BOTTOM
    for n, (name, points) in enumerate(series.items()):
        color = OUTCOME_COLORS.get(name) or PALETTE[n % len(PALETTE)]
        coords = []
        for i, value in enumerate(points):
            if value is None:
                continue
            x = _PAD_LEFT + plot_w * (i + 0.5) / max(1, len(labels))
            y = _PAD_TOP + plot_h - plot_h * value / top
            coords.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"><title>{escape(name)} '
                f"{escape(labels[i])}: {escape(_fmt(value))}{escape(unit)}</title></circle>"
            )
        if len(coords) > 1:
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(coords)}"/>'
            )
        parts.append(
            f'<text x="{_PAD_LEFT + 6 + 130 * n}" y="{_PAD_TOP - 6}" font-size="{FONT_SIZE}" '
            f'fill="{color}">■ {escape(name)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every interpolated text is escaped above)
