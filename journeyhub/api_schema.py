"""How the OpenAPI schema describes what the API really accepts, where drf-spectacular's
defaults say less: a strict serializer (StrictFieldsMixin) refuses unknown fields, so its
request body allows no other properties; a list of nested objects states its length limits;
text that DRF trims holds more than spaces; an identifier may be an integer; a percentage may
be sent as a number or as its text."""

from drf_spectacular import openapi
from drf_spectacular.plumbing import get_lib_doc_excludes, is_list_serializer
from rest_framework import serializers

from journeyhub.api_errors import IdentifierField, StrictFieldsMixin

# 0 to 100 with up to two decimals, as text: what DecimalField(5, 2, 0..100) takes.
PERCENT_TEXT = r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$"
# Some character that str.strip() keeps, spelled out: "\S" differs between Python (which
# counts \x1c-\x1f as space) and the ECMA regexes of OpenAPI.
NOT_ONLY_SPACE = (r"[^\t\n\u000b\f\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029"
                  r"\u202f\u205f\u3000]")
# Keys that describe the field as a whole and stay outside a oneOf of its forms.
OUTER_KEYS = {"readOnly", "writeOnly", "nullable", "deprecated", "description", "title",
              "default"}


def lib_doc_excludes() -> list:
    """Classes whose docstrings are not API documentation: drf-spectacular's, and the mixin's
    (a serializer without a docstring of its own would show the mixin's)."""
    return [*get_lib_doc_excludes(), StrictFieldsMixin]


# Choices beyond this many (the ~600 time zones) are listed by their enum alone, not spelled
# out again in the description of every field that takes them.
CHOICES_DESCRIBED_MAX = 50


class AutoSchema(openapi.AutoSchema):
    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, StrictFieldsMixin):
            schema["additionalProperties"] = False
        for name, field in serializer.fields.items():
            prop = schema["properties"].get(name)
            if prop and isinstance(field, serializers.ChoiceField) \
                    and len(field.choices) > CHOICES_DESCRIBED_MAX:
                prop["description"] = str(field.help_text or "")
        return schema

    def _unwrap_list_serializer(self, serializer, direction):
        schema = super()._unwrap_list_serializer(serializer, direction)
        if schema and is_list_serializer(serializer):
            if serializer.min_length is not None:
                schema["minItems"] = serializer.min_length
            if serializer.max_length is not None:
                schema["maxItems"] = serializer.max_length
        return schema

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        if _is_trimmed_text(field) and schema.get("type") == "string" and "pattern" not in schema:
            schema["pattern"] = NOT_ONLY_SPACE  # DRF strips spaces: "  " is blank, refused
        if isinstance(field, IdentifierField):
            _one_of(schema, {"type": "integer"})
        elif _is_percent(field) and schema.get("type") == "string":
            schema.update(pattern=PERCENT_TEXT)
            schema.pop("format", None)
            _one_of(schema, {"type": "number", "minimum": 0, "maximum": 100})


def _is_trimmed_text(field) -> bool:
    return (isinstance(field, serializers.CharField) and field.trim_whitespace
            and not field.allow_blank and not field.read_only)


def _is_percent(field) -> bool:
    return (isinstance(field, serializers.DecimalField) and not field.read_only
            and field.min_value == 0 and field.max_value == 100 and field.decimal_places == 2)


def _one_of(schema: dict, alternative: dict) -> None:
    """The field's schema becomes one of its own form and ``alternative``."""
    inner = {key: schema.pop(key) for key in list(schema) if key not in OUTER_KEYS}
    schema["oneOf"] = [inner, alternative]
