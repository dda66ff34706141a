"""One customer to bring in, checked: the rules every way in shares (the batch API, JSON Lines
and CSV files), without a DRF serializer per item.

An item is a JSON object: profile fields, ``attributes`` (merged key by key, null deletes a key,
as ``PUT /customers/{id}/`` does), ``opted_out_topics`` (replaces the customer's opt-outs),
``push_opt_out``, ``referral_code`` (the customer's own), ``referred_by_code`` and ``devices``.
A field that is absent leaves the stored value alone. Files may also set ``stage`` and
``created_at``. Errors are a flat map of field path to messages (``devices[0].token``)."""

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audiences.api.event_items import parse_event_items
from audiences.models import Customer, Stage, external_id_problem
from audiences.services import EventInput
from journeyhub.json_rules import (
    JSON_INT_MAX,
    JSON_INT_MIN,
    UNSTORABLE_TEXT,
    json_problem,
    text_problem,
)
from notifications.models import Device
from notifications.tokens import (
    BROWSERS,
    TOKEN_MAX,
    default_platform,
    platform_problem,
    token_errors,
    token_normalised,
)

# Loose BCP 47, as the customer API: language, then subtags (en, pt-BR, zh-Hant-TW).
LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
# Codes brought from another system keep their shape, within what a link and a person can carry.
REFERRAL_CODE = re.compile(r"^[A-Z0-9_-]{4,16}$")
DEVICES_MAX = 20  # devices per customer in one item: more is a fan of test phones, not a person
TOPICS_MAX = 200
TEXT_FIELDS = {  # field -> max length, from the model
    name: Customer._meta.get_field(name).max_length
    for name in ("external_id", "first_name", "last_name", "email", "locale", "time_zone")
}
PROFILE_FIELDS = ("first_name", "last_name", "email", "locale", "time_zone")
API_FIELDS = frozenset({
    "external_id", *PROFILE_FIELDS, "attributes", "opted_out_topics", "push_opt_out",
    "referral_code", "referred_by_code", "devices",
})
FILE_FIELDS = API_FIELDS | {"stage", "created_at"}
EVENT_FIELDS = frozenset({"customer_id", "name", "properties", "occurred_at", "event_id"})
DEVICE_TEXT = {  # device field -> max length
    "app_version": Device._meta.get_field("app_version").max_length,
    "locale": Device._meta.get_field("locale").max_length,
    "time_zone": Device._meta.get_field("time_zone").max_length,
    "application_id": 64,
    "p256dh": 88,
    "auth": 24,
}
DEVICE_CHOICES = {
    "kind": set(Device.Kind.values),
    "platform": set(Device.Platform.values),
    "environment": set(Device.Environment.values),
    "permission": set(Device.Permission.values),
}
DEVICE_FIELDS = frozenset({"token", "browser", *DEVICE_TEXT, *DEVICE_CHOICES})
BROWSER_NAMES = set(BROWSERS)


@lru_cache(maxsize=1)
def time_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@dataclass(slots=True)
class CustomerItem:
    """A checked item: None means "not given, leave alone"."""

    external_id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    locale: str | None = None
    time_zone: str | None = None
    stage: str | None = None
    attributes: dict | None = None  # as sent: None values delete keys
    opted_out_topics: list[str] | None = None
    push_opt_out: bool | None = None
    referral_code: str | None = None
    referred_by_code: str | None = None
    created_at: datetime | None = None
    devices: list[dict] | None = None

    def fingerprint(self, attributes_json: str | None) -> int | None:
        """Equal for two items that set the same customer fields (``attributes_json`` is the
        attributes as sorted JSON); None when the item sets none: it only names the
        customer, e.g. to add a device."""
        values = (self.first_name, self.last_name, self.email, self.locale, self.time_zone,
                  self.stage, self.push_opt_out, self.referral_code, self.referred_by_code,
                  self.created_at, attributes_json,
                  None if self.opted_out_topics is None else tuple(self.opted_out_topics))
        if values.count(None) == len(values):
            return None
        return hash(values)


class Errors(dict):
    def add(self, name: str, message: str) -> None:
        self.setdefault(name, []).append(message)


def customer_item_parse(raw, *, topics: frozenset[str], fields: frozenset[str] = API_FIELDS
                        ) -> tuple[CustomerItem | None, dict[str, list[str]]]:
    """Check one raw item. Returns (item, {}) or (None, errors)."""
    if not isinstance(raw, dict):
        return None, {"non_field_errors": ["Expected an object."]}
    errors = Errors()
    for name in raw.keys() - fields:
        errors.add(str(name), "Unknown field.")
    item = CustomerItem(external_id=_external_id(raw, errors))
    for name in PROFILE_FIELDS:
        if name in raw:
            setattr(item, name, _profile_text(name, raw[name], errors))
    if "stage" in raw:
        item.stage = _choice("stage", raw["stage"], set(Stage.values), errors)
    if "attributes" in raw:
        item.attributes = _attributes(raw["attributes"], errors)
    if "opted_out_topics" in raw:
        item.opted_out_topics = _topics(raw["opted_out_topics"], topics, errors)
    if "push_opt_out" in raw:
        item.push_opt_out = _boolean("push_opt_out", raw["push_opt_out"], errors)
    for name in ("referral_code", "referred_by_code"):
        if name in raw:
            setattr(item, name, _referral_code(name, raw[name], errors))
    if "created_at" in raw:
        item.created_at = _moment("created_at", raw["created_at"], errors)
    if "devices" in raw:
        item.devices = _devices(raw["devices"], errors)
    if errors:
        return None, dict(errors)
    return item, {}


def _text(name: str, value, max_length: int, errors: Errors, *, blank: bool = True) -> str | None:
    if value is None:
        errors.add(name, "This field may not be null.")
        return None
    if not isinstance(value, str):
        errors.add(name, "Not a valid string.")
        return None
    if problem := text_problem(value):
        errors.add(name, problem)
    elif len(value) > max_length:
        errors.add(name, f"Ensure this field has no more than {max_length} characters.")
    elif not blank and not value:
        errors.add(name, "This field may not be blank.")
    return value


def _external_id(raw: dict, errors: Errors) -> str:
    if "external_id" not in raw:
        errors.add("external_id", "This field is required.")
        return ""
    value = _text("external_id", raw["external_id"], TEXT_FIELDS["external_id"], errors,
                  blank=False)
    if value and "external_id" not in errors and (problem := external_id_problem(value)):
        errors.add("external_id", problem)
    return value or ""


def _profile_text(name: str, value, errors: Errors) -> str | None:
    text = _text(name, value, TEXT_FIELDS[name], errors, blank=name in ("first_name",
                                                                        "last_name", "email"))
    if text is None or name in errors:
        return None
    if name == "email" and text:
        try:
            validate_email(text)
        except ValidationError:
            errors.add(name, "Enter a valid email address.")
    elif name == "locale" and not LOCALE.match(text):
        errors.add(name, "Give a BCP 47 language tag, e.g. en or pt-BR.")
    elif name == "time_zone" and text not in time_zone_names():
        errors.add(name, f"{text!r} is not an IANA time zone (e.g. Europe/Lisbon).")
    return text


def _choice(name: str, value, allowed: set[str], errors: Errors) -> str | None:
    if not isinstance(value, str) or value not in allowed:
        shown = repr(value)[:60]
        errors.add(name, f"{shown} is not one of: {', '.join(sorted(allowed))}.")
        return None
    return value


def _attributes(value, errors: Errors) -> dict | None:
    if not isinstance(value, dict):
        errors.add("attributes", "Give a JSON object, e.g. {\"city\": \"Lisbon\"}.")
        return None
    if not _plain(value) and (problem := json_problem(value, path="attributes")):
        errors.add(*problem)
        return None
    return value


def _plain(value: dict) -> bool:
    """Flat and storable as it is: most attributes are; json_problem walks the rest."""
    for key, item in value.items():
        kind = type(item)
        if kind is str:
            if UNSTORABLE_TEXT.search(item):
                return False
        elif kind is int:
            if not JSON_INT_MIN <= item <= JSON_INT_MAX:
                return False
        elif not (kind is bool or item is None):
            return False
        if UNSTORABLE_TEXT.search(key):
            return False
    return True


def _topics(value, known: frozenset[str], errors: Errors) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(key, str) for key in value):
        errors.add("opted_out_topics", "Give a list of topic keys.")
        return None
    if len(value) > TOPICS_MAX:
        errors.add("opted_out_topics", f"Ensure this field has no more than {TOPICS_MAX} "
                                       "elements.")
        return None
    unknown = sorted(set(value) - known)
    if unknown:
        shown = ", ".join(repr(key)[:60] for key in unknown[:5])
        errors.add("opted_out_topics", f"Unknown topics: {shown}.")
        return None
    return sorted(set(value))


def _boolean(name: str, value, errors: Errors) -> bool | None:
    if not isinstance(value, bool):
        errors.add(name, "Must be a valid boolean.")
        return None
    return value


def _referral_code(name: str, value, errors: Errors) -> str | None:
    text = _text(name, value, 16, errors, blank=False)
    if text is None or name in errors:
        return None
    code = text.strip().upper()
    if not REFERRAL_CODE.match(code):
        errors.add(name, "A referral code is 4 to 16 letters, digits, - or _.")
        return None
    return code


def _moment(name: str, value, errors: Errors) -> datetime | None:
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        errors.add(name, "Datetime has wrong format: use ISO 8601.")
        return None
    return parsed.astimezone(UTC) if timezone.is_aware(parsed) else timezone.make_aware(parsed)


def _devices(value, errors: Errors) -> list[dict] | None:
    if not isinstance(value, list):
        errors.add("devices", "Give a list of devices.")
        return None
    if len(value) > DEVICES_MAX:
        errors.add("devices", f"Ensure this field has no more than {DEVICES_MAX} elements.")
        return None
    devices, seen = [], set()
    for index, raw in enumerate(value):
        device = _device(raw, f"devices[{index}]", errors)
        if device is None:
            continue
        key = (device["kind"], device["token"])
        if key in seen:
            errors.add(f"devices[{index}].token", "The same token twice in one customer.")
        seen.add(key)
        devices.append(device)
    return devices


def _device(raw, path: str, errors: Errors) -> dict | None:
    """A device as the app registers it (notifications.tokens): kind and token required,
    the platform defaulted from the kind where there is only one."""
    if not isinstance(raw, dict):
        errors.add(path, "Expected an object.")
        return None
    local = Errors()
    device = {}
    for name, value in raw.items():
        if value is None:
            continue
        if name in DEVICE_CHOICES:
            device[name] = _choice(name, value, DEVICE_CHOICES[name], local)
        elif name in DEVICE_TEXT:
            device[name] = _text(name, value, DEVICE_TEXT[name], local)
        elif name == "token":
            device[name] = _text(name, value, TOKEN_MAX, local, blank=False)
        elif name == "browser":
            device[name] = _choice(name, str(value).lower(), BROWSER_NAMES, local)
        else:
            local.add(str(name), "Unknown field.")
    for name in ("kind", "token"):
        if raw.get(name) is None and name not in local:
            local.add(name, "This field is required.")
    if not local:
        _device_rules(device, local)
    for name, messages in local.items():
        for message in messages:
            errors.add(f"{path}.{name}", message)
    return None if local else device


def _device_rules(device: dict, errors: Errors) -> None:
    kind = device["kind"]
    device["platform"] = device.get("platform") or default_platform(kind)
    if device["platform"] is None:
        errors.add("platform", f"Say which platform this {kind} device runs on.")
    elif problem := platform_problem(kind, device["platform"]):
        errors.add("platform", problem)
    if device.get("time_zone") and device["time_zone"] not in time_zone_names():
        errors.add("time_zone", f"{device['time_zone']!r} is not an IANA time zone.")
    if device.get("locale") and not LOCALE.match(device["locale"]):
        errors.add("locale", "Give a BCP 47 language tag, e.g. en or pt-BR.")
    for name, reason in token_errors(kind, device).items():
        errors.add(name, reason)
    device["token"] = token_normalised(kind, device["token"])
    if "browser" in device:
        device["browser"] = BROWSERS[device["browser"]]


def event_item_parse(raw, *, now: datetime) -> tuple[EventInput | None, dict[str, list[str]]]:
    """Check one event of a history file: the rules of the events API (parse_event_items),
    and what the API's body parser checks before them (text and JSON the database can
    store)."""
    valid, invalid = parse_event_items([raw], now=now)
    if invalid:
        return None, invalid[0]
    item = valid[0][1]
    errors = Errors()
    for name, value in (("customer_id", item.customer_external_id), ("name", item.name),
                        ("event_id", item.client_event_id)):
        if value and (problem := text_problem(value)):
            errors.add(name, problem)
    if not _plain(item.properties) and (
            problem := json_problem(item.properties, path="properties")):
        errors.add(*problem)
    return (None, dict(errors)) if errors else (item, {})
