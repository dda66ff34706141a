"""How a template's message will look on an iPhone, an Android phone and in a browser, for the
admin's template page: rendered for a customer (the sample one by default), cut where each
platform cuts it, with the buttons, badge and image each shows, and each provider's payload
size against its limit."""

from dataclasses import dataclass, field

from audiences.models import Customer
from notifications.models import Template
from notifications.payloads import (
    KIND_LABELS,
    PAYLOAD_LIMITS,
    largest_message,
    payload_bytes,
    template_presentation,
)
from notifications.providers.base import Presentation
from notifications.rendering import (
    SAMPLE_CUSTOMER,
    RenderError,
    last_event_names,
    last_events_for,
    message_context,
    pick_translation,
    render,
)

# Roughly where each platform's collapsed notification cuts the text (characters).
CUTS = {"ios": (60, 178), "android": (40, 90), "web": (50, 120)}


@dataclass
class PlatformPreview:
    platform: str  # ios, android, web
    label: str
    title: str
    body: str
    buttons: list[str]
    shows_image: bool
    note: str = ""


@dataclass
class TemplatePreview:
    customer: str
    error: str = ""
    silent: bool = False
    image_url: str = ""
    badge: str = ""
    data: dict = field(default_factory=dict)
    platforms: list[PlatformPreview] = field(default_factory=list)
    sizes: list[tuple[str, int, int]] = field(default_factory=list)  # (provider, bytes, limit)


def template_preview(template: Template, customer: Customer | None = None) -> TemplatePreview:
    person = customer or SAMPLE_CUSTOMER
    preview = TemplatePreview(customer=person.external_id,
                              silent=template.kind == Template.Kind.SILENT)
    last = last_events_for([person.pk], last_event_names(template)).get(person.pk) \
        if person.pk else None
    context = message_context(customer=person, last_events=last)
    try:
        rendered = render(template, context, check_size=False,
                          text=pick_translation(template, person.locale) if template.pk
                          else None)
    except RenderError as error:
        preview.error = str(error)
        return preview
    look = template_presentation(template)
    preview.image_url, preview.data = rendered.image_url, rendered.data
    preview.badge = _badge(look)
    preview.sizes = [(KIND_LABELS[kind], _size(kind, template, rendered), limit)
                     for kind, limit in PAYLOAD_LIMITS.items()]
    if not preview.silent:
        preview.platforms = [_platform(name, label, rendered, look)
                             for name, label in (("ios", "iPhone"), ("android", "Android"),
                                                 ("web", "Browser"))]
    return preview


def _platform(name: str, label: str, rendered, look: Presentation) -> PlatformPreview:
    title_cut, body_cut = CUTS[name]
    note = {"ios": look.interruption_level or "", "android": look.android_channel_id and
            f"channel {look.android_channel_id}" or "", "web": ""}[name]
    return PlatformPreview(
        platform=name, label=label, title=_cut(rendered.title, title_cut),
        body=_cut(rendered.body, body_cut), buttons=[a.title for a in look.actions],
        shows_image=bool(rendered.image_url), note=note,
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _badge(look: Presentation) -> str:
    if look.badge is None:
        return ""
    return f"+{look.badge}" if look.badge_increment else str(look.badge)


def _size(kind: str, template: Template, rendered) -> int:
    message = largest_message(kind, template, title=rendered.title, body=rendered.body,
                              image_url=rendered.image_url, url=rendered.url, data=rendered.data)
    try:
        return payload_bytes(message)
    except ValueError:
        return 0
