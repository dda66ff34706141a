"""The JSON field for values people and apps send (attributes, properties, rules, filters,
template data): refused unless storable (journeyhub.json_rules) wherever a form or full_clean
checks it, and read, written and shown whatever its depth (journeyhub.json_deep)."""

import json

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import models

from journeyhub.json_deep import DeepSafeDecoder, DeepSafeEncoder
from journeyhub.json_rules import too_deep, validate_storable_json


class StoredJSONFormField(forms.JSONField):
    """forms.JSONField that refuses what cannot be stored, naming where, and that shows any
    stored value, however deep. ``indent`` lays the JSON out for reading (None: one line)."""

    default_validators = [validate_storable_json]
    indent: int | None = None

    def __init__(self, **kwargs):
        kwargs.setdefault("encoder", DeepSafeEncoder)
        super().__init__(**kwargs)
        # CharField's NUL check reads str(value): a repr, recursive per level, and one that
        # escapes NUL anyway. validate_storable_json checks every string and key instead.
        self.validators = [validator for validator in self.validators
                           if not isinstance(validator, ProhibitNullCharactersValidator)]

    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:
            raise ValidationError(too_deep(), code="invalid")

    def bound_data(self, data, initial):
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        # A form shown again shows the text as typed: decoded, a "\ud800" escape would be a
        # character no page can encode.
        return forms.fields.InvalidJSONInput(data)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=self.indent, cls=self.encoder)


class StoredJSONField(models.JSONField):
    """models.JSONField with the storage rules as its validator, the deep-safe encoder and
    decoder, and StoredJSONFormField in forms (the admin's among them).

    It deconstructs as a plain JSONField: the column is the same, so it needs no migration."""

    default_validators = [validate_storable_json]

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("encoder", DeepSafeEncoder)
        kwargs.setdefault("decoder", DeepSafeDecoder)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, _, args, kwargs = super().deconstruct()
        for option, default in (("encoder", DeepSafeEncoder), ("decoder", DeepSafeDecoder)):
            if kwargs.get(option) is default:
                del kwargs[option]
        return name, "django.db.models.JSONField", args, kwargs

    def formfield(self, **kwargs):
        # Typed input is read by the C decoder alone: text past its recursion limit is refused
        # at once, not read by the slower deep fallback.
        return super().formfield(**{"form_class": StoredJSONFormField, "decoder": None,
                                    **kwargs})
