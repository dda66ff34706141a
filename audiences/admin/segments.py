"""Admin for segments: rules editor with live count and sample, static list upload."""

import csv
import json
from collections.abc import Iterator

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.urls import NoReverseMatch, path, reverse

from audiences.models import Customer, Segment
from audiences.segments import (
    ATTRIBUTE_OPS,
    PROFILE_FIELDS,
    PROFILE_OPS,
    RULES_REQUIRED,
    validate_rules,
)
from audiences.selectors import (
    customers_matching,
    external_ids_check,
    segment_count,
    segment_key_change_problem,
    segment_sample,
)
from audiences.services import segment_members_replace, segment_save
from audiences.suggestions import attribute_values, rule_suggestions
from journeyhub.json_fields import StoredJSONFormField
from journeyhub.json_rules import too_deep

SAMPLE_SIZE = 10  # customers shown under the count: enough to eyeball, one cheap LIMIT query
RULES_HELP = (
    'JSON. Groups: {"all": [...]}, {"any": [...]}, {"not": {...}}. Rules: attribute, stage, '
    'event, last_seen, consent, bucket, profile, segment, device. Example: {"all": [{"stage": '
    '{"in": ["engagement"]}}, {"event": {"name": "purchase", "min_count": 2, '
    '"within_days": 30}}]}. The full grammar is under "Rule reference" below.'
)
KEY_HELP = (
    "How the API, the send command and other segments' rules name this segment (letters, "
    "digits, - and _); empty: made from the name. Code that uses the old key stops finding it."
)
MEMBER_FILE_HELP = (
    "CSV or TXT, UTF-8: one external id per line, or a CSV whose header has an external_id "
    "column. Replaces all members; if any id is unknown, nothing changes."
)


class RulesField(StoredJSONFormField):
    """Rules shown as indented JSON; a syntax error says where it is."""

    indent = 2

    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            return parse_rules_json(value)
        return super().to_python(value)


def parse_rules_json(text: str | bytes):
    """json.loads, with errors a marketer can act on (where the syntax breaks)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValidationError(
            f"Invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}.",
            code="invalid",
        )
    except RecursionError:
        raise ValidationError(too_deep(), code="invalid")


def member_file_lines(upload) -> Iterator[str]:
    """One entry per line of an uploaded CSV or TXT file: its external id, or "" for a blank or
    header line (so line numbers in errors match the file). Reads the file as it goes."""
    column = None  # where the id sits in each row, fixed by the first non-blank line
    for number, raw in enumerate(upload, start=1):  # File iteration starts at the beginning
        cells = next(csv.reader([_decode(raw, number)]), [])
        if not cells:
            yield ""
        elif column is None:
            column, is_header = _id_column(cells, number)
            yield "" if is_header else cells[column].strip()
        elif column >= len(cells):
            raise ValidationError(f"Line {number} has no external_id column.")
        else:
            yield cells[column].strip()


def _decode(raw: bytes, number: int) -> str:
    try:
        return raw.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise ValidationError(f"Line {number} is not UTF-8 text; save the file as UTF-8.")


def _id_column(cells: list[str], number: int) -> tuple[int, bool]:
    """Where the external id is, and whether this first line is a header naming it."""
    names = [cell.strip().lower() for cell in cells]
    if "external_id" in names:
        return names.index("external_id"), True
    if len(cells) > 1:
        raise ValidationError(
            f"Line {number}: a CSV with several columns needs a header with an external_id column."
        )
    return 0, False


class SegmentForm(forms.ModelForm):
    rules = RulesField(
        required=False, help_text=RULES_HELP,
        widget=forms.Textarea(attrs={"rows": 16, "cols": 90, "spellcheck": "false",
                                     "class": "vLargeTextField jh-rules-editor"}),
    )
    member_file = forms.FileField(
        required=False, label="Upload members", help_text=MEMBER_FILE_HELP
    )
    key = forms.SlugField(
        max_length=50, required=False, help_text=KEY_HELP,
        widget=forms.TextInput(attrs={"class": "vTextField"}),
    )

    class Meta:
        model = Segment
        fields = ("name", "key", "description", "kind", "rules")

    def clean(self):
        data = super().clean()
        self._clean_key(data)
        kind = data.get("kind")
        if kind == Segment.Kind.DYNAMIC and "rules" in data:
            self._clean_rules(data["rules"])
        elif kind == Segment.Kind.STATIC:
            data["rules"] = {}
        if data.get("member_file"):
            self._clean_member_file(kind, data["member_file"])
        return data

    def _clean_key(self, data) -> None:
        if not data.get("key") and data.get("name"):
            data["key"] = Segment(name=data["name"]).key_from_name()
        problem = segment_key_change_problem(self.instance, data.get("key"))
        if problem:
            self.add_error("key", problem)

    def _clean_rules(self, rules) -> None:
        if rules is None:
            self.add_error("rules", RULES_REQUIRED)
            return
        try:
            validate_rules(rules, segment_id=self.instance.pk)
        except ValidationError as error:
            self.add_error("rules", error)

    def _clean_member_file(self, kind, upload) -> None:
        try:
            if kind != Segment.Kind.STATIC:
                raise ValidationError("Only a static segment takes a member list.")
            if not any(member_file_lines(upload)):
                raise ValidationError("The file lists no external ids.")
            external_ids_check(member_file_lines(upload))
        except ValidationError as error:
            self.add_error("member_file", error)


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = ("name", "key", "kind", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name", "key", "description")
    ordering = ("name",)
    show_full_result_count = False
    prepopulated_fields = {"key": ("name",)}
    fieldsets = (
        (None, {"fields": ("name", "key", "description", "kind")}),
        ("Rules", {"fields": ("rules",), "classes": ("jh-when-dynamic",)}),
        ("Members", {"fields": ("member_file",), "classes": ("jh-when-static",)}),
    )

    class Media:
        js = ("audiences/segment_preview.js", "audiences/segment_builder.js")
        css = {"all": ("audiences/segment_preview.css",)}

    def get_urls(self):
        preview = path("preview/", self.admin_site.admin_view(self.preview_view),
                       name="audiences_segment_preview")
        suggest = path("suggest/", self.admin_site.admin_view(self.suggest_view),
                       name="audiences_segment_suggest")
        return [preview, suggest, *super().get_urls()]

    def save_model(self, request, obj, form, change):
        segment_save(segment=obj)
        upload = form.cleaned_data.get("member_file")
        if upload:
            count = segment_members_replace(segment=obj, external_ids=member_file_lines(upload))
            self.message_user(request, f"{obj} now has {count:,} members from {upload.name}.")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra = {**(extra_context or {}), "preview_url": reverse("admin:audiences_segment_preview"),
                 "rules_config": _rules_config()}
        # Only when showing the page: a save should not wait for a count over every customer.
        segment = self.get_object(request, unquote(object_id)) if object_id else None
        if segment is not None and request.method == "GET":
            extra["audience"] = _audience(segment)
        return super().changeform_view(request, object_id, form_url, extra)

    def suggest_view(self, request):
        """GET ?attribute=<key> -> {"values": [...]}: the key's common values, for the rows."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "You may not view segments."}, status=403)
        key = request.GET.get("attribute", "")
        if not key or len(key) > 100:
            return JsonResponse({"error": "Give attribute=<key>."}, status=400)
        return JsonResponse({"values": attribute_values(key)})

    def preview_view(self, request):
        """POST rules as JSON -> {"count": n, "sample": [...]}, or {"error": ...} with 400.
        ``?segment=<id>`` names the segment being edited, so a reference back to it is a cycle."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "You may not view segments."}, status=403)
        if request.method != "POST":
            return JsonResponse({"error": "POST the rules as JSON."}, status=405)
        raw_id = request.GET.get("segment", "")
        if raw_id and not raw_id.isdigit():
            return JsonResponse({"error": "segment must be a segment id."}, status=400)
        try:
            return JsonResponse(_preview(parse_rules_json(request.body), int(raw_id or 0) or None))
        except ValidationError as error:
            return JsonResponse({"error": "; ".join(error.messages), "errors": error.messages},
                                status=400)


def _rules_config() -> dict:
    """What the visual rules editor offers: operators, fields and the suggestions."""
    return {
        "attribute_ops": list(ATTRIBUTE_OPS), "profile_fields": list(PROFILE_FIELDS),
        "profile_ops": list(PROFILE_OPS), "suggestions": rule_suggestions(),
        "suggest_url": reverse("admin:audiences_segment_suggest"),
    }


def _preview(rules, segment_id: int | None) -> dict:
    validate_rules(rules, segment_id=segment_id)
    customers = customers_matching(rules, segment_id=segment_id)
    return {
        "count": customers.count(),
        "sample": _sample_rows(customers.order_by("-pk")[:SAMPLE_SIZE]),
    }


def _audience(segment: Segment) -> dict:
    """Count and sample of the saved segment, or why they cannot be had."""
    try:
        return {"count": segment_count(segment),
                "sample": _sample_rows(segment_sample(segment, n=SAMPLE_SIZE))}
    except ValidationError as error:  # rules that stopped compiling, e.g. a deleted reference
        return {"error": "; ".join(error.messages)}


def _sample_rows(customers) -> list[dict]:
    return [
        {"id": customer.pk, "external_id": customer.external_id, "name": customer.full_name,
         "stage": customer.stage, "url": _customer_url(customer)}
        for customer in customers
    ]


def _customer_url(customer: Customer) -> str | None:
    try:
        return reverse("admin:audiences_customer_change", args=[customer.pk])
    except NoReverseMatch:  # the customer admin is not installed on this site
        return None
