"""Small SVG charts drawn on the server: the dashboard needs no chart library and no CDN, and
a chart is in the page's HTML (it prints, and it works without JavaScript).

Every function returns safe markup; labels are escaped here. Colours come from the page's CSS
classes (``series-0`` ... ``series-4``) so the charts follow the admin's light and dark themes."""

from dataclasses import dataclass
from datetime import date

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

FONT_PX = 11
BAR_PX = 16  # height of one horizontal bar
LABEL_PX = 150  # room for the labels left of horizontal bars


@dataclass
class Series:
    label: str
    values: list[int]
    css: str = "series-0"


def _svg(width: int, height: int, title: str, body: str) -> SafeString:
    return mark_safe(
        f'<svg class="jh-chart" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


LABEL_CHARS = 24  # what fits left of a bar; the whole label is in the tooltip


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"


def _nice_max(value: int) -> int:
    """The axis top: 1, 2 or 5 times a power of ten, at least ``value`` (and at least 1)."""
    top = 1
    while True:
        for factor in (1, 2, 5):
            if top * factor >= value:
                return top * factor
        top *= 10


def bars(items: list[tuple[str, int]], *, title: str, css: str = "series-0",
         width: int = 460) -> SafeString:
    """Horizontal bars, one per (label, value), value printed at the end of the bar."""
    if not items:
        return _svg(width, 24, title, '<text x="0" y="16" class="jh-empty">No data</text>')
    top = max(value for _, value in items) or 1
    room = width - LABEL_PX - 60
    parts = []
    for n, (label, value) in enumerate(items):
        y = n * (BAR_PX + 6)
        length = max(1, round(room * value / top)) if value else 0
        parts.append(
            f'<text x="{LABEL_PX - 6}" y="{y + 12}" text-anchor="end">{escape(_short(label))}'
            f"<title>{escape(label)}</title></text>"
            f'<rect class="{css}" x="{LABEL_PX}" y="{y}" width="{length}" height="{BAR_PX}">'
            f"<title>{escape(label)}: {value:,}</title></rect>"
            f'<text x="{LABEL_PX + length + 4}" y="{y + 12}">{value:,}</text>'
        )
    return _svg(width, len(items) * (BAR_PX + 6), title, "".join(parts))


def _axes(days: list[date], top: int, width: int, height: int, left: int) -> str:
    """The value axis (0 and top) and the first, middle and last day under the x axis."""
    bottom = height - 18
    parts = [f'<line class="jh-axis" x1="{left}" y1="{bottom}" x2="{width}" y2="{bottom}"/>',
             f'<text x="{left - 4}" y="{bottom}" text-anchor="end">0</text>',
             f'<text x="{left - 4}" y="{FONT_PX}" text-anchor="end">{top:,}</text>']
    if days:
        step = (width - left) / max(len(days), 1)
        last = len(days) - 1
        for index in sorted({0, len(days) // 2, last}):
            # The ends are anchored inwards, so that their labels stay inside the chart.
            anchor = "start" if index == 0 else "end" if index == last else "middle"
            x = left if anchor == "start" else width if anchor == "end" else \
                left + step * (index + 0.5)
            parts.append(f'<text x="{x:.1f}" y="{height - 4}" text-anchor="{anchor}">'
                         f"{days[index]:%b %d}</text>")
    return "".join(parts)


def lines(days: list[date], series: list[Series], *, title: str, width: int = 460,
          height: int = 140, legend_totals: bool = True) -> SafeString:
    """One line per series over the days, with a legend under the chart (with each series'
    total, unless ``legend_totals`` is off: a rate has no meaningful total)."""
    left, legend = 40, 16 * ((len(series) + 2) // 3)
    plot = height - legend
    top = _nice_max(max((max(s.values, default=0) for s in series), default=0))
    step = (width - left) / max(len(days), 1)
    bottom = plot - 18
    parts = [_axes(days, top, width, plot, left)]
    for s in series:
        points = " ".join(f"{left + step * (i + 0.5):.1f},"
                          f"{bottom - (bottom - FONT_PX) * v / top:.1f}"
                          for i, v in enumerate(s.values))
        total = f": {sum(s.values):,}" if legend_totals else ""
        parts.append(f'<polyline class="{s.css} jh-line" points="{points}">'
                     f"<title>{escape(s.label)}{total}</title></polyline>")
    for n, s in enumerate(series):
        x, y = (n % 3) * 150, plot + 14 + (n // 3) * 16
        total = f" ({sum(s.values):,})" if legend_totals else ""
        parts.append(f'<rect class="{s.css}" x="{x}" y="{y - 9}" width="10" height="10"/>'
                     f'<text x="{x + 14}" y="{y}">{escape(s.label)}{total}</text>')
    return _svg(width, height, title, "".join(parts))


def columns(days: list[date], values: list[int], *, title: str, css: str = "series-3",
            width: int = 460, height: int = 120) -> SafeString:
    """One column per day."""
    left = 40
    top = _nice_max(max(values, default=0))
    step = (width - left) / max(len(days), 1)
    bottom = height - 18
    parts = [_axes(days, top, width, height, left)]
    for i, (day, value) in enumerate(zip(days, values, strict=True)):
        tall = (bottom - FONT_PX) * value / top
        parts.append(f'<rect class="{css}" x="{left + step * i + 1:.1f}" '
                     f'y="{bottom - tall:.1f}" width="{max(step - 2, 1):.1f}" '
                     f'height="{tall:.1f}"><title>{day:%Y-%m-%d}: {value:,}</title></rect>')
    return _svg(width, height, title, "".join(parts))


def flow(stages: list[tuple[str, int]], forward: list[tuple[int, int, int]], *,
         title: str, width: int = 940) -> SafeString:
    """The stages as boxes in journey order (customers now in each) and an arc for every
    stage-to-stage move, its count on it: forward moves above the boxes, backward below."""
    box_w, box_h, gap = 130, 44, (width - 5 * 130) / 4
    mid_y = 130
    xs = [i * (box_w + gap) for i in range(len(stages))]
    parts = []
    top = max((n for _, _, n in forward), default=1) or 1
    for a, b, n in forward:
        x1, x2 = xs[a] + box_w / 2, xs[b] + box_w / 2
        up = b > a
        rise = (35 + 18 * abs(b - a)) * (-1 if up else 1)
        y0 = mid_y - box_h / 2 if up else mid_y + box_h / 2
        thick = 1 + 7 * n / top
        parts.append(
            f'<path class="jh-flow {"forward" if up else "backward"}" '
            f'd="M{x1:.0f},{y0:.0f} C{x1:.0f},{y0 + rise:.0f} {x2:.0f},{y0 + rise:.0f} '
            f'{x2:.0f},{y0:.0f}" stroke-width="{thick:.1f}"><title>{n:,}</title></path>'
            f'<text x="{(x1 + x2) / 2:.0f}" y="{y0 + rise * 0.78:.0f}" '
            f'text-anchor="middle" class="jh-flow-label">{n:,}</text>'
        )
    for x, (label, customers) in zip(xs, stages, strict=True):
        parts.append(
            f'<rect class="jh-stage" x="{x:.0f}" y="{mid_y - box_h / 2}" width="{box_w}" '
            f'height="{box_h}" rx="6"/>'
            f'<text x="{x + box_w / 2:.0f}" y="{mid_y - 4}" text-anchor="middle" '
            f'class="jh-stage-name">{escape(label)}</text>'
            f'<text x="{x + box_w / 2:.0f}" y="{mid_y + 12}" text-anchor="middle">'
            f"{customers:,} now</text>"
        )
    return _svg(width, 262, title, "".join(parts))
