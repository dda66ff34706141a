"""One JSON error shape for the API, and the input checks every endpoint shares.

Every error body is ``{"detail": "...", "code": "..."}``; validation errors add ``"errors"``,
a map of field name to messages. Bad input is reported, never silently ignored or turned into
a 500: unknown fields, text the database cannot store, deep nesting and the errors services
raise all become 400s here."""

import logging
import re
from collections import deque

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.urls import is_valid_path, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, pagination, parsers, serializers
from rest_framework.response import Response
from rest_framework.utils import json  # refuses NaN and Infinity, which JSON does not have
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from journeyhub.api_json import JSONRenderer
from journeyhub.json_rules import JSON_MAX_DEPTH, json_problem

logger = logging.getLogger(__name__)

# Cheap tests on the raw text that every body with a problem json_problem finds must pass, so
# most bodies skip the walk: NUL and surrogates arrive only as \u escapes, a non-finite or
# oversized number needs a long exponent or a long run of digits, deep nesting many brackets.
UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|d[89a-f])", re.IGNORECASE)
SUSPECT_NUMBER = re.compile(r"\d{19}|[eE]\+?\d{2}")
# The body's envelope (a batch, its item, the field) around a value JSON_MAX_DEPTH deep.
BODY_MAX_DEPTH = JSON_MAX_DEPTH + 4


class BodyTooLarge(exceptions.APIException):
    """Django refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB by default) before they
    are parsed, which bounds the memory one request can take."""

    status_code = 413
    default_detail = "The request body is too large."
    default_code = "body_too_large"


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = (exc.message_dict if hasattr(exc, "error_dict")
                  else {"non_field_errors": exc.messages})
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, RequestDataTooBig):
        exc = BodyTooLarge(f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} "
                           "bytes.")
    elif isinstance(exc, SuspiciousOperation):  # Django answers these 400 outside DRF too
        exc = exceptions.ParseError(str(exc))
    response = drf_exception_handler(exc, context)
    if response is None:
        # A bug, not bad input: keep the traceback in the logs and the body JSON.
        logger.exception("Unhandled API error", exc_info=exc)
        set_rollback()
        return Response({"detail": "Server error.", "code": "server_error"}, status=500)
    response.data = _error_body(exc, response.data)
    return response


def _error_body(exc, data) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        return {"detail": "Invalid input.", "code": "invalid", "errors": flat_errors(errors)}
    detail = data.get("detail", "") if isinstance(data, dict) else data
    body = {"detail": str(detail), "code": getattr(detail, "code", None) or "error"}
    if getattr(exc, "status_code", None) == 400:  # every 400 says which part was wrong
        field = "body" if isinstance(exc, exceptions.ParseError) else "non_field_errors"
        body["errors"] = {field: [str(detail)]}
    return body


def flat_errors(errors: dict) -> dict[str, list[str]]:
    """DRF nests the errors of lists and nested objects ({"translations": {0: {"title":
    [...]}}}); the API reports one flat map of paths to messages, paths written as the JSON
    rules write them: ``translations[0].title``, ``opted_out_topics[3]``."""
    flat: dict[str, list[str]] = {}
    pending = deque([("", errors)])
    while pending:
        path, item = pending.popleft()
        if isinstance(item, dict):
            pending.extend((_error_path(path, key), value) for key, value in item.items())
        elif isinstance(item, list) and any(isinstance(value, dict | list) for value in item):
            pending.extend((f"{path}[{index}]", value) for index, value in enumerate(item)
                           if value)  # a many=True list has {} for its valid items
        else:
            messages = item if isinstance(item, list) else [item]
            flat.setdefault(path or "non_field_errors", []).extend(map(str, messages))
    return flat


def _error_path(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key == "non_field_errors" and path:  # about the nested object as a whole
        return path
    return f"{path}.{key}" if path else str(key)


class StrictJSONParser(parsers.JSONParser):
    """JSON only, and only values the database can store (journeyhub.json_rules); a body that
    holds anything else is refused as a whole, naming the path of the first problem."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
            data = json.loads(text)
        except ValueError as exc:  # includes undecodable bytes
            raise exceptions.ParseError(f"JSON parse error - {exc}")
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.")
        problem = json_problem(data, max_depth=BODY_MAX_DEPTH) if _suspect(text) else None
        if problem is not None:
            where, reason = problem
            raise exceptions.ValidationError({"body" if where == "value" else where: [reason]})
        return data


def _suspect(text: str) -> bool:
    brackets = text.count("{") + text.count("[")
    return bool(brackets > BODY_MAX_DEPTH or UNSTORABLE_ESCAPE.search(text)
                or SUSPECT_NUMBER.search(text))


class StrictFieldsMixin:
    """Serializer mixin: a field the serializer does not accept is an error, not ignored, so a
    typo ("emial") or a read-only field sent back fails loudly instead of being dropped.

    A JSON body's values must also have the JSON type the schema gives them: DRF would take
    1 for "1", "yes" for true and "7" for 7, which the schema does not say. Serializers of
    query parameters, whose values are all text, set ``json_body = False``."""

    json_body = True

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, f in self.fields.items() if not f.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({
                    name: ["This field is read-only." if name in self.fields else "Unknown field."]
                    for name in unknown
                })
            if self.json_body:
                _check_json_types(self.fields, data)
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as error:
            if isinstance(error.detail, dict):
                for name, problems in error.detail.items():
                    if name in self.fields:
                        error.detail[name] = _choices_listed(self.fields[name], problems)
            raise


# A choice field with more choices than this (the IANA time zones) says its rule instead.
CHOICES_LISTED_MAX = 60


def _choices_listed(field, problems):
    """A choice field's "not a valid choice" problems, with the valid choices appended: a 400
    says what would have been accepted. Follows a list field into its items."""
    if isinstance(field, serializers.ListField) and isinstance(problems, dict):
        return {index: _choices_listed(field.child, item) for index, item in problems.items()}
    if not isinstance(field, serializers.ChoiceField) or len(field.choices) > CHOICES_LISTED_MAX:
        return problems
    if not isinstance(problems, list):
        return problems
    valid = ", ".join(str(choice) for choice in field.choices)
    return [exceptions.ErrorDetail(f"{problem} Choose one of: {valid}.", code=problem.code)
            if getattr(problem, "code", None) == "invalid_choice" else problem
            for problem in problems]


class EmptyBodySerializer(StrictFieldsMixin, serializers.Serializer):
    """For requests that take no fields (DELETE, actions): anything sent is reported, not
    ignored."""


def refuse_body(request) -> None:
    """A 400 unless the request's body is empty (or an empty JSON object)."""
    EmptyBodySerializer(data=request.data).is_valid(raise_exception=True)


class IdentifierField(serializers.CharField):
    """An id from the sender's systems: text, or an integer taken as its digits (backends often
    keep numeric ids)."""


def _check_json_types(fields: dict, data: dict) -> None:
    errors = {}
    for name, value in data.items():
        field = fields[name]
        if isinstance(field, FREE_JSON_FIELDS) and (problem := json_problem(value, path=name)):
            where, reason = problem  # the body's depth allowed its envelope: this is the value's
            errors[where] = [reason]
        elif isinstance(field, serializers.ListField) and isinstance(value, list):
            items = {index: [problem] for index, item in enumerate(value)
                     if (problem := json_type_problem(field.child, item))}
            if items:
                errors[name] = items
        elif problem := json_type_problem(field, value):
            errors[name] = [problem]
    if errors:
        raise serializers.ValidationError(errors)


def json_type_problem(field, value) -> str | None:
    """Why ``value`` from a JSON body does not have the type the schema gives ``field``."""
    if value is None:
        return None  # allow_null decides
    if value == "" and isinstance(field, serializers.RelatedField):
        return "Send null for none, not an empty string."  # DRF would read "" as null
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Must be true or false."
    integer = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(field, IdentifierField):
        return None if isinstance(value, str) or integer else "Must be a string or an integer."
    if isinstance(field, serializers.IntegerField | serializers.PrimaryKeyRelatedField):
        return None if integer else "Must be a whole number."
    if isinstance(field, serializers.DecimalField | serializers.FloatField):
        numeric = isinstance(value, str | int | float) and not isinstance(value, bool)
        return None if numeric else "Must be a number."
    if isinstance(field, TEXT_FIELDS) and not isinstance(value, str):
        return "Not a valid string."
    return None


# Fields holding free-form JSON (attributes, properties, data, filters, rules).
FREE_JSON_FIELDS = (serializers.DictField, serializers.JSONField)
# Fields whose JSON value is a string (DRF would also take a number and use its digits).
TEXT_FIELDS = (serializers.CharField, serializers.ChoiceField, serializers.SlugRelatedField,
               serializers.DateTimeField, serializers.DateField, serializers.TimeField,
               serializers.DurationField)


class StrictLimitOffsetPagination(pagination.LimitOffsetPagination):
    """``limit`` and ``offset`` as DRF reads them, except that a value that is not a whole
    number in range is a 400 naming the parameter, not silently the default."""

    def get_limit(self, request) -> int:
        return self._number(request, self.limit_query_param, self.default_limit,
                            low=1, high=self.max_limit)

    def get_offset(self, request) -> int:
        return self._number(request, self.offset_query_param, 0, low=0, high=MAX_OFFSET)

    @staticmethod
    def _number(request, name: str, default: int, *, low: int, high: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
            raise exceptions.ValidationError({name: [f"A whole number from {low} to {high}."]})
        return int(raw)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        ranges = {self.limit_query_param: (1, self.max_limit),
                  self.offset_query_param: (0, MAX_OFFSET)}
        for parameter in parameters:
            low, high = ranges[parameter["name"]]
            parameter["schema"].update(minimum=low, maximum=high)
        return parameters


MAX_OFFSET = 2**63 - 1  # what SQL's OFFSET takes


class ErrorSerializer(serializers.Serializer):
    """The body of every error response (documentation only)."""

    detail = serializers.CharField(help_text="What went wrong, for a person.")
    code = serializers.CharField(help_text="What went wrong, for a program.")


class ValidationErrorSerializer(ErrorSerializer):
    """The body of a 400: what was wrong, field by field."""

    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field name to messages; errors about the whole body are under "
                  "non_field_errors.",
    )


ERROR_DESCRIPTIONS = {
    400: "Invalid input: malformed JSON, unknown fields or wrong values.",
    401: "Missing, malformed, unknown, revoked or expired credentials.",
    403: "The API key lacks the scope this endpoint needs.",
    404: "Not found (or not yours).",
    409: "Already done: this report was made before.",
    413: "Request body too large.",
    415: "Send Content-Type: application/json.",
    429: "Too many requests: wait the seconds given in Retry-After.",
}


def error_responses(*statuses: int) -> dict:
    """drf-spectacular ``responses`` entries for the given error statuses."""
    return {
        status: OpenApiResponse(
            ValidationErrorSerializer if status == 400 else ErrorSerializer,
            description=ERROR_DESCRIPTIONS[status],
        )
        for status in statuses
    }


@csrf_exempt  # an API client holds no CSRF token: the answer is JSON, for every method
def api_not_found(request, *args, **kwargs):
    """Unknown paths under /api/: the API's JSON 404, not the admin's redirect to its login
    nor the CSRF middleware's HTML page."""
    detail = "No such endpoint."
    if not request.path_info.endswith("/") and is_valid_path(f"{request.path_info}/") \
            and resolve(f"{request.path_info}/").func is not api_not_found:
        detail += f" API paths end with a slash: {request.path_info}/"
    return JsonResponse({"detail": detail, "code": "not_found"}, status=404)


def api_content_type_middleware(get_response):
    """A body sent to the API without a Content-Type is a 415, as one of the wrong type is:
    DRF would read it as an empty body and go on without it."""

    def middleware(request):
        if (request.path_info.startswith("/api/") and request.META.get("CONTENT_LENGTH") not in
                (None, "", "0") and not request.content_type):
            return JsonResponse({"detail": ERROR_DESCRIPTIONS[415],
                                 "code": "unsupported_media_type"}, status=415)
        return get_response(request)

    return middleware


class JSONErrorsMixin:
    """For API views that render something else (the schema as YAML, the docs as HTML): their
    errors, like every other API error, are JSON."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response
