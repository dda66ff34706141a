"""The engine messages render with, and the budget each message renders within.

Django's template language without the tags that reach outside the context (debug, load, url,
csrf_token; there are no loaders, so no include or extends), and with a budget per message:
CPU time, {% for %} iterations, and size. The budget is spent cooperatively wherever work
happens: each loop iteration, each node rendered, each filter applied. So no template, however
written, holds a worker longer than RENDER_MAX_MS or fills its memory: three nested loops of a
hundred stop after RENDER_MAX_LOOPS iterations instead of running a million, and a filter asked
for a width of a million characters is refused before it allocates them.

The first problem is kept on the budget as well as raised, because Django swallows exceptions
inside {% if %} conditions: a render that carried on anyway fails at its end."""

import functools
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NoReturn

from django.template import (
    Context,
    Engine,
    Library,
    Node,
    Variable,
    VariableDoesNotExist,
    defaultfilters,
    defaulttags,
)
from django.template.base import FilterExpression, VariableNode
from django.template.defaulttags import LoremNode, WidthRatioNode

# A personalised message renders in about 0.05 ms; 50 ms is a thousand times that. A worker
# spends at most this much CPU time on one message (the thread's own, so a worker starved of
# the CPU by others does not fail templates well within it), and a batch stops rendering at
# a third of its lease (notifications.sending.batch_send), so even a batch of templates at the
# limit cannot lose its claim.
RENDER_MAX_MS = 50
# {% for %} iterations per message, all loops together. One costs 0.3-5 µs depending on its
# body, so the cap is reached within the time budget; a 4 KB message never needs more.
RENDER_MAX_LOOPS = 10_000
# One field's source and output, and any value a filter builds (four times the 4 KB payload,
# so that a long value may still be truncated). Parsing 16 KB of tags takes ~30 ms, once.
FIELD_MAX_BYTES = 16 * 1024
FIELD_MAX_KB = FIELD_MAX_BYTES // 1024
LOREM_MAX = 100  # {% lorem %} words or paragraphs
WIDTHRATIO_MAX = 2**53  # beyond it a float no longer counts in units: the result means nothing
FORBIDDEN_TAGS = {"debug", "load", "url", "csrf_token"}
# Filters whose numeric argument is the width or precision of their output.
WIDTH_FILTERS = {"ljust", "rjust", "center", "stringformat", "floatformat"}
NUMBER_RE = re.compile(r"\d+")


class RenderError(Exception):
    pass


class RenderOverBudget(RenderError):
    """The message went over its budget; the message says which part and how."""


class RenderBudget:
    """What is left of one message's budget. ``field`` names the part rendering ("body")."""

    def __init__(self, *, strict: bool = False) -> None:
        self.deadline = time.thread_time() + RENDER_MAX_MS / 1000
        self.loops_left = RENDER_MAX_LOOPS
        self.field = "message"
        self.output = 0  # characters the current field has produced so far
        self.problem: str | None = None
        self.strict = strict
        self.missing: list[str] = []  # strict: variables rendered without a value

    def refuse(self, problem: str) -> NoReturn:
        self.problem = self.problem or problem
        raise RenderOverBudget(self.problem)

    def tick(self) -> None:
        if self.problem:  # refused already, and something swallowed the exception
            raise RenderOverBudget(self.problem)
        if time.thread_time() > self.deadline:
            self.refuse(f"the {self.field} takes over {RENDER_MAX_MS} ms to render")

    def loop(self) -> None:
        self.loops_left -= 1
        if self.loops_left < 0:
            self.refuse(f"the {self.field}'s loops run more than {RENDER_MAX_LOOPS:,} times")
        self.tick()

    def spend(self, characters: int) -> None:
        self.output += max(characters, 0)
        if self.output > FIELD_MAX_BYTES:
            self.refuse(f"the {self.field} renders over {FIELD_MAX_KB} KB")


_BUDGET: ContextVar[RenderBudget] = ContextVar("render_budget")


@contextmanager
def render_budget(*, strict: bool = False) -> Iterator[RenderBudget]:
    """One message's budget, for render_field() calls inside. ``strict``: note in ``missing``
    each variable that renders without a value and without a default."""
    budget = RenderBudget(strict=strict)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)
    if budget.problem:
        raise RenderOverBudget(budget.problem)


def render_field(source: str, context: Context, *, field: str) -> str:
    """Render one field of a message (``field`` names it in problems), inside render_budget()."""
    if "{" not in source:
        return source
    budget = _BUDGET.get()
    budget.field, budget.output = field, 0
    if _over_size(source):
        budget.refuse(f"the {field} is over {FIELD_MAX_KB} KB")
    # Parsing is bounded by the size above and happens once per process (the cache): the
    # budget is for rendering, so the clock does not run while parsing.
    started = time.thread_time()
    template = _compiled(source)
    budget.deadline += time.thread_time() - started
    output = template.render(context)
    if _over_size(output):
        budget.refuse(f"the {field} renders over {FIELD_MAX_KB} KB")
    return output


def _over_size(text: str) -> bool:
    # A character is at most 4 bytes in UTF-8: most texts need no encoding to be measured.
    return len(text) * 4 > FIELD_MAX_BYTES and len(text.encode()) > FIELD_MAX_BYTES


@functools.lru_cache(maxsize=256)
def _compiled(source: str):
    # A batch renders the same few sources 500 times: parse each once. A compiled Template
    # keeps no state between renders, so sharing it is safe.
    template = ENGINE.from_string(source)
    for node in template.nodelist.get_nodes_by_type(Node):
        node.__class__ = _metered(type(node))
        if isinstance(node, VariableNode):
            node.filter_expression = _Watched(node.filter_expression)
    return template


# --- Strict templates: a variable with no value is noted --------------------------------------

DEFAULT_FILTERS = {"default", "default_if_none"}


class _Watched:
    """A {{ variable }}'s expression that, in a strict render, notes the variable when it has
    no value (absent, None or empty) and no |default filter supplies one."""

    def __init__(self, expression: FilterExpression) -> None:
        self.expression = expression
        self.defaulted = any(func.__name__ in DEFAULT_FILTERS
                             for func, _args in expression.filters)

    def __str__(self) -> str:
        return str(self.expression)

    def resolve(self, context, ignore_failures=False):
        budget = _BUDGET.get(None)
        variable = self.expression.var
        if budget is not None and budget.strict and not self.defaulted and isinstance(
                variable, Variable):
            try:
                value = variable.resolve(context)
            except VariableDoesNotExist:
                value = None
            if value is None or value == "":
                budget.missing.append(str(variable))
        return self.expression.resolve(context, ignore_failures)


# --- Every node: time and output --------------------------------------------------------------


class _Metered:
    """Mixed into every node of a compiled message. Each node rendered checks the time, and
    pays for the characters it adds to what its children produced: a text or a variable pays
    its whole output, a loop or an {% if %} nothing more, a {% filter %} block what it grew.
    So repeating a large value, in a loop or not, stops at the size limit instead of filling
    memory. (Django builds nodes in its parser, so this is mixed in by swapping their class.)"""

    def render_annotated(self, context):
        budget = _BUDGET.get()
        budget.tick()
        before = budget.output
        output = super().render_annotated(context)
        budget.spend(len(output) - (budget.output - before))
        return output


@functools.cache
def _metered(node_class: type) -> type:
    return type(f"Metered{node_class.__name__}", (_Metered, node_class), {})


# --- Tags: {% for %} counts its iterations, widthratio and lorem are bounded --------------------


class _CountedSequence:
    """The sequence of a {% for %}: every item taken is one iteration of the budget."""

    def __init__(self, expression) -> None:
        self.expression = expression

    def __str__(self) -> str:
        return str(self.expression)

    def resolve(self, context, ignore_failures=False):
        values = self.expression.resolve(context, ignore_failures=ignore_failures)
        return None if values is None else _Counted(values)


class _Counted:
    def __init__(self, values) -> None:
        self.values = values if hasattr(values, "__len__") else list(values)

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self):
        return _counting(iter(self.values))

    def __reversed__(self):
        return _counting(reversed(self.values))


def _counting(items):
    budget = _BUDGET.get()
    for item in items:
        budget.loop()
        yield item


def _counted_for(parser, token):
    node = defaulttags.do_for(parser, token)
    node.sequence = _CountedSequence(node.sequence)
    return node


class _BoundedWidthRatioNode(WidthRatioNode):
    def render(self, context):
        output = super().render(context)
        result = context.get(self.asvar, "") if self.asvar else output
        if result and abs(int(result)) > WIDTHRATIO_MAX:
            budget = _BUDGET.get()
            budget.refuse(f"the {budget.field}'s widthratio gives {int(result):.3g}, "
                          f"over its limit of {WIDTHRATIO_MAX:,}")
        return output


def _bounded_widthratio(parser, token):
    node = defaulttags.widthratio(parser, token)
    return _BoundedWidthRatioNode(node.val_expr, node.max_expr, node.max_width, node.asvar)


class _BoundedLoremNode(LoremNode):
    def render(self, context):
        try:
            count = int(self.count.resolve(context))
        except (ValueError, TypeError):
            count = 1
        if count > LOREM_MAX:
            budget = _BUDGET.get()
            budget.refuse(f"the {budget.field} asks lorem for {count:,} words or paragraphs, "
                          f"over {LOREM_MAX}")
        return super().render(context)


def _bounded_lorem(parser, token):
    node = defaulttags.lorem(parser, token)
    return _BoundedLoremNode(node.count, node.method, node.common)


BOUNDED_TAGS = {"for": _counted_for, "widthratio": _bounded_widthratio, "lorem": _bounded_lorem}


# --- Filters: time, widths, and no value over the size limit --------------------------------


def _budgeted(name: str, function):
    """``function`` (a filter) checking the time, refusing a width or a join too large before
    it allocates, and refusing a value it grew past the size limit."""

    @functools.wraps(function)  # keeps the signature Django checks and the filter's flags
    def budgeted(value, *args, **kwargs):
        budget = _BUDGET.get()
        budget.tick()
        if name in WIDTH_FILTERS and args and _largest_number(args[0]) > FIELD_MAX_BYTES:
            budget.refuse(f"the {budget.field} asks {name} for over {FIELD_MAX_KB} KB "
                          f"({name}:{str(args[0])[:24]})")
        if name == "join" and args and _joined_length(value, str(args[0])) > FIELD_MAX_BYTES:
            _refuse_growth(budget, name)
        result = function(value, *args, **kwargs)
        if _size(result) > FIELD_MAX_BYTES and _size(result) > _size(value):
            _refuse_growth(budget, name)
        return result

    return budgeted


def _refuse_growth(budget: RenderBudget, name: str) -> NoReturn:
    budget.refuse(f"the {budget.field}'s {name} filter makes a value over {FIELD_MAX_KB} KB")


def _size(value) -> int:
    return len(value) if isinstance(value, str | list | tuple | dict) else 0


def _largest_number(argument) -> int:
    """The largest number written in ``argument`` (a width, a precision, a format), or 0."""
    digit_runs = NUMBER_RE.findall(str(argument))
    if any(len(run.lstrip("0")) > len(str(FIELD_MAX_BYTES)) for run in digit_runs):
        return FIELD_MAX_BYTES + 1  # too long to be worth converting: over the limit anyway
    return max((int(run) for run in digit_runs), default=0)


def _joined_length(value, separator: str) -> int:
    """The length join would build, counted up to just past the limit."""
    if not isinstance(value, str | list | tuple | dict):
        return 0
    length = len(separator) * max(len(value) - 1, 0)
    for item in value:
        if length > FIELD_MAX_BYTES:
            break
        length += len(str(item))
    return length


def _engine() -> Engine:
    engine = Engine(autoescape=False, loaders=[], builtins=[])
    safe = Library()
    safe.tags = {n: t for n, t in defaulttags.register.tags.items() if n not in FORBIDDEN_TAGS}
    safe.tags.update(BOUNDED_TAGS)
    safe.filters = {n: _budgeted(n, f) for n, f in defaultfilters.register.filters.items()}
    engine.template_builtins = [safe]
    return engine


ENGINE = _engine()
