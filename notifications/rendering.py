"""Personalise templates with the Django template language over a safe context.

The context holds plain values only (strings, numbers, dicts, lists), never model instances,
and the engine (notifications.template_engine) has no template loaders and no tags that reach
outside the context (debug, load, include, extends, url, csrf_token). So a template can read the
customer it is rendered for, the triggering event, the latest event of a named kind and the
campaign: nothing else. Each message renders within a budget of time, loop iterations and size;
a template over it is refused when saved, and a delivery over it is skipped."""

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Max
from django.template import Context, TemplateSyntaxError

from audiences.models import Customer, Event
from journeyhub.json_rules import json_problem, text_problem
from notifications.models import Template
from notifications.payloads import size_problems
from notifications.template_engine import RenderError, render_budget, render_field

# A save renders the template and each of its (up to 100) translations for a sample customer:
# each within the render budget, all of them together within this.
CHECK_MAX_MS = 500
LAST_EVENT_RE = re.compile(r"\blast\.([A-Za-z0-9_]+)")
TEXT_FIELDS = ("title", "body", "image_url", "url")


class MissingVariables(RenderError):
    """A strict template read a variable that has no value for this customer."""


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str
    image_url: str
    url: str
    data: dict[str, str] = field(default_factory=dict)


def customer_context(customer: Customer) -> dict:
    return {
        "external_id": customer.external_id,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "full_name": customer.full_name,
        "locale": customer.locale,
        "time_zone": customer.time_zone,
        "stage": customer.stage,
        "referral_code": customer.referral_code,
        "referral_link": customer.referral_link,
        "attributes": dict(customer.attributes or {}),
    }


def message_context(*, customer: Customer, event_properties: dict | None = None,
                    last_events: dict[str, dict] | None = None,
                    campaign: dict | None = None, data: dict | None = None) -> dict:
    return {
        "customer": customer_context(customer),
        "event": dict(event_properties or {}),
        "last": dict(last_events or {}),
        "campaign": dict(campaign or {}),
        "data": data or {},
    }


def last_event_names(template: Template) -> set[str]:
    """Event names the template reads as ``last.<name>``, so a batch can prefetch them."""
    sources = [template.title, template.body, template.image_url, template.url]
    sources += [str(value) for value in (template.data or {}).values()]
    if template.pk:
        sources += [t for tr in template.translations.all() for t in (tr.title, tr.body)]
    return {name for source in sources for name in LAST_EVENT_RE.findall(source)}


def last_events_for(customer_ids: Iterable[int], names: set[str]) -> dict[int, dict[str, dict]]:
    """The newest event of each name for each customer: two queries for a whole batch."""
    if not names:
        return {}
    newest_ids = (
        Event.objects.filter(customer_id__in=list(customer_ids), name__in=names)
        .values("customer_id", "name").annotate(newest=Max("id")).values_list("newest", flat=True)
    )
    found: dict[int, dict[str, dict]] = {}
    for customer_id, name, properties in Event.objects.filter(pk__in=list(newest_ids)).values_list(
        "customer_id", "name", "properties"
    ):
        found.setdefault(customer_id, {})[name] = properties
    return found


def pick_translation(template: Template, locale: str) -> tuple[str, str]:
    """(title, body) for the customer's locale: exact, then its language, then the default.
    Uses template.translations.all(), so prefetch them for a batch."""
    translations = {tr.locale.lower(): tr for tr in template.translations.all()}
    wanted = (locale or "").lower()
    chosen = translations.get(wanted) or translations.get(wanted.split("-")[0])
    return (chosen.title, chosen.body) if chosen else (template.title, template.body)


def render(template: Template, context: dict, *, text: tuple[str, str] | None = None,
           check_size: bool = True, strict: bool | None = None) -> Rendered:
    """Render a template; ``text`` is the (title, body) of a translation, if one applies.
    Raises RenderError (RenderOverBudget when over the budget of template_engine;
    MissingVariables when strict, by default the template's own flag, and a variable has no
    value), also when the payload would be over a provider's limit with what sending adds
    (notifications.payloads), unless ``check_size`` is False (sending measures each message for
    its own provider)."""
    title, body = text or (template.title, template.body)
    ctx = Context(context, autoescape=False)
    try:
        with render_budget(strict=template.strict if strict is None else strict) as budget:
            rendered = Rendered(
                title=render_field(title, ctx, field="title").strip(),
                body=render_field(body, ctx, field="body").strip(),
                image_url=render_field(template.image_url, ctx, field="image URL").strip(),
                url=render_field(template.url, ctx, field="URL").strip(),
                data={str(k): render_field(str(v), ctx, field=f"{k!r} data value")
                      for k, v in (template.data or {}).items()},
            )
    except RenderError:
        raise
    except TemplateSyntaxError as error:
        raise RenderError(f"template syntax: {error}") from error
    except RecursionError as error:
        raise RenderError("the template is nested too deeply") from error
    except Exception as error:  # noqa: BLE001 - any filter may raise on odd values
        raise RenderError(f"{type(error).__name__}: {error}") from error
    if budget.missing:  # a strict template: no message with a gap in it
        names = ", ".join(dict.fromkeys(budget.missing))
        raise MissingVariables(f"strict template: no value for {names}")
    if template.kind != Template.Kind.SILENT and not rendered.title and not rendered.body:
        raise RenderError("the message rendered empty")
    if check_size and (problems := size_problems(
            template, title=rendered.title, body=rendered.body, image_url=rendered.image_url,
            url=rendered.url, data=rendered.data)):
        raise RenderError("; ".join(problems))
    return rendered


SAMPLE_CUSTOMER = Customer(
    external_id="sample", first_name="Alexandra", last_name="Montgomery-Smith", locale="en",
    time_zone="Europe/Lisbon", stage="engagement", referral_code="SAMPLE2345",
    attributes={"city": "Lisbon"},
)


def template_field_problems(fields: dict) -> dict[str, str]:
    """{field: reason} for template fields holding what cannot be stored (a NUL character or
    a lone surrogate): ``fields`` are some of title, body, image_url, url and data."""
    problems = {name: text_problem(fields[name]) for name in TEXT_FIELDS
                if isinstance(fields.get(name), str)}
    if (data_problem := json_problem(fields.get("data") or {}, path="data")) is not None:
        where, reason = data_problem
        problems["data"] = reason if where == "data" else f"{where}: {reason}"
    return {name: reason for name, reason in problems.items() if reason}


def template_check(template: Template, *, texts: Iterable[tuple[str, str, str]] = ()) -> list[str]:
    """Problems that make a template unsendable, checked when it is saved: syntax errors,
    forbidden tags, a render over the budget, and a payload over the limit for a realistic
    sample customer. ``texts`` are the translations as (locale, title, body)."""
    problems = []
    context = message_context(customer=SAMPLE_CUSTOMER)
    deadline = time.monotonic() + CHECK_MAX_MS / 1000
    for index, (locale, title, body) in enumerate([("", template.title, template.body), *texts]):
        if index and time.monotonic() > deadline:  # the template itself is always checked
            problems.append(f"[{locale}] not checked: the template and its translations take "
                            f"over {CHECK_MAX_MS} ms to render together")
            break
        try:
            # Not strict: a sample has no event, so what a strict template reads is checked per
            # customer when it is sent (and shown by the preview).
            render(template, context, text=(title, body), strict=False)
        except RenderError as error:
            problems.append(f"[{locale}] {error}" if locale else str(error))
    return problems
