"""One JSON error shape for the API, and the input checks every endpoint shares.

Every error body is ``{"detail": "...", "code": "..."}``; validation errors add ``"errors"``,
a map of field name to messages. Bad input is reported, never silently ignored or turned into
a 500: unknown fields, text the database cannot store, deep nesting and the errors services
raise all become 400s here."""

import logging
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, parsers, serializers
from rest_framework.response import Response
from rest_framework.utils import json  # refuses NaN and Infinity, which JSON does not have
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

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
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
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
        return {"detail": "Invalid input.", "code": "invalid", "errors": errors}
    detail = data.get("detail", "") if isinstance(data, dict) else data
    return {"detail": str(detail), "code": getattr(detail, "code", None) or "error"}


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
    typo ("emial") or a read-only field sent back fails loudly instead of being dropped."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, f in self.fields.items() if not f.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({
                    name: ["This field is read-only." if name in self.fields else "Unknown field."]
                    for name in unknown
                })
        return super().to_internal_value(data)


class ErrorSerializer(serializers.Serializer):
    """The body of every error response (documentation only)."""

    detail = serializers.CharField(help_text="What went wrong, for a person.")
    code = serializers.CharField(help_text="What went wrong, for a program.")


class ValidationErrorSerializer(ErrorSerializer):
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


def api_not_found(request, *args, **kwargs):
    """Unknown paths under /api/: the API's JSON 404, not the admin's redirect to its login."""
    return JsonResponse({"detail": "No such endpoint.", "code": "not_found"}, status=404)
