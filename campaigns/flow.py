"""The campaign's steps drawn as a flow diagram: server-side SVG, no JavaScript, no CDN.

Steps stand in one column in their order, from the entry at the top to the end at the bottom.
An arrow to the step right below is a short straight line; any other link (a jump forward, a
loop back) runs in a lane of its own: "next" links on the right, "else" links on the left, so
arrows never lie on top of each other. Branches label their arrows (yes / no, happened /
timed out), and an empty "else" of a branch ends in a small exit marker."""

from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from campaigns.models import Step

BOX_W, BOX_H = 300, 54  # wide enough for a 36-character label at 13px
ROW_GAP = 34  # vertical room for an arrow and its label between two boxes
LANE_GAP = 16  # horizontal distance between parallel jump arrows
MARGIN = 24
TERMINAL_H = 30
LABEL_MAX = 38  # characters of a step's label or detail before an ellipsis

KIND_STYLE = {  # icon (DejaVu Sans has every glyph) and colour per step kind
    Step.Kind.SEND: ("✉", "#2563eb"),
    Step.Kind.WAIT: ("◔", "#d97706"),
    Step.Kind.WAIT_UNTIL: ("◷", "#d97706"),
    Step.Kind.WAIT_EVENT: ("⚑", "#d97706"),
    Step.Kind.SPLIT_SEGMENT: ("⋔", "#7c3aed"),
    Step.Kind.SPLIT_RANDOM: ("⚄", "#7c3aed"),
    Step.Kind.SET_ATTRIBUTE: ("✎", "#0d9488"),
    Step.Kind.SET_STAGE: ("➚", "#0d9488"),
    Step.Kind.EXIT: ("■", "#6b7280"),
}
BRANCH_LABELS = {  # (next, else) arrow labels of the branching kinds
    Step.Kind.WAIT_EVENT: ("happened", "timed out"),
    Step.Kind.SPLIT_SEGMENT: ("yes", "no"),
    Step.Kind.SPLIT_RANDOM: ("chosen %", "others"),
}


@dataclass(frozen=True)
class FlowNode:
    id: int
    label: str
    kind: str
    next: int | None  # None: completed (or, for an exit step, nothing)
    else_: int | None = None  # branches only; None: exit
    detail: str = ""
    number: int = 0  # 1-based, as validation messages name steps
    active: int = 0  # customers waiting on the step now
    problems: tuple[str, ...] = ()  # what keeps the step from running (the unsaved builder)


def _field(item, *names, default=None):
    for name in names:
        if isinstance(item, dict) and name in item:
            return item[name]
        if not isinstance(item, dict) and hasattr(item, name):
            return getattr(item, name)
    return default


def flow_nodes(flow) -> list[FlowNode]:
    """FlowNodes from campaigns.selectors.campaign_flow (a list of nodes, or an object or dict
    holding them as ``nodes``), read by name so both dicts and dataclasses do."""
    items = _field(flow, "nodes", default=flow) or []
    return [
        FlowNode(
            id=_field(item, "id"), label=str(_field(item, "label", default="") or ""),
            kind=str(_field(item, "kind", default="")),
            next=_field(item, "next", "next_id", "next_step_id"),
            else_=_field(item, "else_", "else", "else_id", "else_step_id"),
            detail=str(_field(item, "detail", "summary", default="") or ""),
            number=int(_field(item, "number", default=0) or 0),
            active=int(_field(item, "active", default=0) or 0),
            problems=tuple(_field(item, "problems", default=()) or ()),
        )
        for item in items
    ]


def _short(text: str) -> str:
    return text if len(text) <= LABEL_MAX else text[: LABEL_MAX - 1] + "…"


@dataclass
class _Layout:
    nodes: list[FlowNode]
    entry: str
    lanes_right: int = 0
    lanes_left: int = 0

    def __post_init__(self):
        self.row = {node.id: index for index, node in enumerate(self.nodes)}
        self.left_pad = MARGIN + LABEL_PAD

    def box_y(self, index: int) -> int:
        return MARGIN + TERMINAL_H + ROW_GAP + index * (BOX_H + ROW_GAP)

    def end_y(self) -> int:
        return self.box_y(len(self.nodes))

    def box_x(self) -> int:
        return self.left_pad + self.lanes_left * LANE_GAP


LABEL_PAD = 70  # room left of the boxes for "timed out" labels and exit markers


def flow_svg(flow, *, entry: str = "Entry") -> SafeString:
    """The diagram as an inline <svg> element; ``entry`` labels the top terminal (the trigger)."""
    nodes = flow_nodes(flow)
    layout = _Layout(nodes=nodes, entry=entry)
    jumps = _jumps(layout)
    layout.lanes_right = sum(1 for jump in jumps if jump[3] == "right")
    layout.lanes_left = sum(1 for jump in jumps if jump[3] == "left")
    parts = [_terminal(layout, MARGIN, _short(entry), "jh-flow-entry")]
    parts.append(_arrow_down(layout, MARGIN + TERMINAL_H, layout.box_y(0) if nodes else
                             layout.end_y(), ""))
    for index, node in enumerate(nodes):
        parts.append(_box(layout, index, node))
        parts.extend(_straight_links(layout, index, node))
    parts.extend(_jump_paths(layout, jumps))
    parts.append(_terminal(layout, layout.end_y(), "End", "jh-flow-end"))
    width = layout.box_x() + BOX_W + MARGIN + LANE_GAP * (layout.lanes_right + 1) + LABEL_PAD
    height = layout.end_y() + TERMINAL_H + MARGIN
    return mark_safe(  # noqa: S308 - every text inside went through escape()
        f'<svg class="jh-flow" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="Flow of the campaign\'s steps" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">{_defs()}{"".join(parts)}</svg>'
    )


def _defs() -> str:
    return (
        '<defs><marker id="jh-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#475569"/></marker></defs>'
    )


def _links(node: FlowNode) -> list[tuple[int | None, str, str]]:
    """(target, label, side) of each arrow leaving a node; target None means it ends."""
    if node.kind == Step.Kind.EXIT:
        return []
    labels = BRANCH_LABELS.get(node.kind)
    if labels is None:
        return [(node.next, "", "right")]
    return [(node.next, labels[0], "right"), (node.else_, labels[1], "left")]


def _is_straight(layout: _Layout, index: int, target, side: str) -> bool:
    """The arrow goes straight down: to the step right below, or to the end from the last."""
    if side != "right":
        return False
    below = index + 1
    if target is None:
        return below == len(layout.nodes)
    return layout.row.get(target) == below


def _jumps(layout: _Layout) -> list[tuple[int, int | None, str, str]]:
    """Links that need a lane: (from row, to row or None for an exit, label, side)."""
    jumps = []
    for index, node in enumerate(layout.nodes):
        for target, label, side in _links(node):
            if _is_straight(layout, index, target, side):
                continue
            if target is None and side == "left":
                continue  # drawn as an exit marker beside the box
            to_row = len(layout.nodes) if target is None else layout.row.get(target)
            if to_row is not None:
                jumps.append((index, to_row, label, side))
    return jumps


def _box(layout: _Layout, index: int, node: FlowNode) -> str:
    icon, colour = KIND_STYLE.get(node.kind, ("•", "#475569"))
    x, y = layout.box_x(), layout.box_y(index)
    label = f"{node.number}. {node.label or node.kind}" if node.number else node.label
    title = escape(_short(label or node.kind))
    detail = escape(_short(node.detail)) if node.detail else ""
    kind_css = escape(node.kind)
    problem_css = " jh-flow-problem" if node.problems else ""
    return (
        f'<g class="jh-flow-step jh-flow-{kind_css}{problem_css}" data-step="{escape(node.id)}">'
        + (f"<title>{escape(' '.join(node.problems))}</title>" if node.problems else "")
        + f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" '
        f'fill="{"#fef2f2" if node.problems else "#fff"}" '
        f'stroke="{"#dc2626" if node.problems else colour}" '
        f'stroke-width="{2.5 if node.problems else 1.5}"/>'
        f'<rect x="{x}" y="{y}" width="6" height="{BOX_H}" rx="3" fill="{colour}"/>'
        f'<circle cx="{x + 28}" cy="{y + BOX_H / 2}" r="14" fill="{colour}" opacity=".12"/>'
        f'<text x="{x + 28}" y="{y + BOX_H / 2 + 6}" text-anchor="middle" font-size="17" '
        f'fill="{colour}">{icon}</text>'
        f'<text x="{x + 52}" y="{y + (22 if detail else 32)}" font-size="13" '
        f'font-weight="bold" fill="#1e293b">{title}</text>'
        + (f'<text x="{x + 52}" y="{y + 40}" font-size="12" fill="#64748b">{detail}</text>'
           if detail else "")
        + _waiting(x, y, node.active)
        + _problem_badge(x, y, len(node.problems))
        + "</g>"
    )


def _problem_badge(x: int, y: int, count: int) -> str:
    """A red badge on the box's top left corner: how many problems the step has."""
    if not count:
        return ""
    text = f"⚠ {count} problem{'s' if count != 1 else ''}"
    width = 16 + 6.5 * len(text)
    return (f'<g class="jh-flow-problem-badge"><rect x="{x + 10}" y="{y - 9}" width="{width}" '
            f'height="18" rx="9" fill="#dc2626"/><text x="{x + 10 + width / 2}" y="{y + 4}" '
            f'text-anchor="middle" font-size="11" fill="#fff">{escape(text)}</text></g>')


def _waiting(x: int, y: int, active: int) -> str:
    """A badge with the customers waiting on the step, on the box's top right corner."""
    if not active:
        return ""
    text = f"{active:,} here"
    width = 14 + 6.5 * len(text)
    left = x + BOX_W - width - 8
    return (f'<g class="jh-flow-waiting"><rect x="{left}" y="{y - 9}" width="{width}" '
            f'height="18" rx="9" fill="#0f766e"/><text x="{left + width / 2}" y="{y + 4}" '
            f'text-anchor="middle" font-size="11" fill="#fff">{escape(text)}</text></g>')


def _straight_links(layout: _Layout, index: int, node: FlowNode) -> list[str]:
    parts = []
    centre_y = layout.box_y(index) + BOX_H / 2
    for target, label, side in _links(node):
        if _is_straight(layout, index, target, side):
            top = layout.box_y(index) + BOX_H
            parts.append(_arrow_down(layout, top, layout.box_y(index + 1), label))
        elif target is None and side == "left":
            parts.append(_exit_marker(layout, centre_y, label))
    return parts


def _arrow_down(layout: _Layout, y1: float, y2: float, label: str) -> str:
    x = layout.box_x() + BOX_W / 2
    text = (f'<text x="{x + 8}" y="{(y1 + y2) / 2 + 4}" font-size="11" fill="#0f766e">'
            f"{escape(label)}</text>") if label else ""
    return (f'<line class="jh-flow-link" x1="{x}" y1="{y1}" x2="{x}" y2="{y2 - 2}" '
            f'stroke="#475569" stroke-width="1.5" marker-end="url(#jh-arrow)"/>{text}')


def _exit_marker(layout: _Layout, y: float, label: str) -> str:
    x2 = layout.box_x()
    x1 = x2 - 44 - layout.lanes_left * LANE_GAP
    return (
        f'<line class="jh-flow-link jh-flow-exit" x1="{x2}" y1="{y}" x2="{x1 + 8}" y2="{y}" '
        f'stroke="#94a3b8" stroke-width="1.5" stroke-dasharray="4 3" '
        f'marker-end="url(#jh-arrow)"/>'
        f'<text x="{x1}" y="{y + 4}" font-size="11" text-anchor="end" fill="#b91c1c">'
        f"exit</text>"
        f'<text x="{x2 - 6}" y="{y - 6}" font-size="11" text-anchor="end" fill="#b45309">'
        f"{escape(label)}</text>"
    )


def _jump_paths(layout: _Layout, jumps) -> list[str]:
    parts, lane = [], {"right": 0, "left": 0}
    # Short jumps get the inner lanes, so a long arrow goes around them instead of across.
    for from_row, to_row, label, side in sorted(jumps, key=lambda j: abs(j[1] - j[0])):
        lane[side] += 1
        y1 = layout.box_y(from_row) + BOX_H / 2 + (6 if side == "right" else -6)
        y2 = (layout.box_y(to_row) + BOX_H / 2 - (6 if side == "right" else -6)
              if to_row < len(layout.nodes) else layout.end_y() + TERMINAL_H / 2)
        if side == "right":
            edge = layout.box_x() + BOX_W
            x_lane = edge + lane[side] * LANE_GAP + 8
            end_x = edge if to_row < len(layout.nodes) else layout.box_x() + BOX_W / 2 + 50
        else:
            edge = layout.box_x()
            x_lane = edge - lane[side] * LANE_GAP - 8
            end_x = edge if to_row < len(layout.nodes) else layout.box_x() + BOX_W / 2 - 50
        colour = "#0f766e" if side == "right" else "#b45309"
        parts.append(
            f'<path class="jh-flow-link jh-flow-jump" d="M{edge},{y1} H{x_lane} V{y2} '
            f'H{end_x + (2 if side == "right" else -2)}" fill="none" stroke="{colour}" '
            f'stroke-width="1.5" marker-end="url(#jh-arrow)"/>'
        )
        if label:  # right: under the arrow's start; left: outside its lane, clear of lines
            x, y, anchor = ((edge + 4, y1 + 13, "start") if side == "right"
                            else (x_lane - 4, y1 + 4, "end"))
            parts.append(f'<text x="{x}" y="{y}" font-size="11" text-anchor="{anchor}" '
                         f'fill="{colour}">{escape(label)}</text>')
    return parts


def _terminal(layout: _Layout, y: float, text: str, css: str) -> str:
    x = layout.box_x() + BOX_W / 2
    width = min(BOX_W, 40 + 7 * len(text))
    return (
        f'<g class="{css}"><rect x="{x - width / 2}" y="{y}" width="{width}" '
        f'height="{TERMINAL_H}" rx="{TERMINAL_H / 2}" fill="#f1f5f9" stroke="#94a3b8"/>'
        f'<text x="{x}" y="{y + 19}" text-anchor="middle" font-size="12" fill="#334155">'
        f"{escape(text)}</text></g>"
    )
