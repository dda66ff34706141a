"""Customers in and out of files (CSV, XLSX, JSON) for the admin's import and export.

Import upserts on ``external_id``. Every row is validated like a form would be (time zone,
stage, e-mail, attributes as a JSON object); one bad row and the admin shows its row number and
reason and imports nothing. A stage changed by a file is recorded as a transition, like any
other stage change. An empty cell leaves locale, time zone and stage as they are (or at their
defaults for a new customer); an empty ``attributes`` cell means no attributes."""

import json
import logging

from django.core.exceptions import ValidationError
from import_export import fields, resources, results, widgets
from import_export.instance_loaders import CachedInstanceLoader, ModelInstanceLoader

from audiences.models import Customer
from audiences.stages import customer_stage_set
from journeyhub.json_deep import DeepSafeEncoder
from journeyhub.json_rules import text_problem, too_deep
from journeyhub.spreadsheet import cell_escaped, cell_unescaped

IMPORT_COLUMNS = (
    "external_id", "first_name", "last_name", "email", "locale", "time_zone", "stage",
    "attributes", "push_opt_out",
)
EXPORT_ONLY_COLUMNS = ("referral_code", "stage_changed_at", "last_seen_at", "created_at")
IMPORT_CAUSE = "Imported from a file"
EXPORT_CHUNK_SIZE = 2000  # rows fetched per query while exporting: bounded memory per chunk
logger = logging.getLogger(__name__)
TRUE_WORDS = frozenset({"1", "true", "yes", "y"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "n"})


class JSONObjectWidget(widgets.Widget):
    """A JSON object in one cell, e.g. ``{"city": "Lisbon", "plan": "pro"}``."""

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, dict):
            return value
        if value is None or not str(value).strip():
            return {}
        try:
            parsed = json.loads(str(value))
        except json.JSONDecodeError as error:
            raise ValueError(f"Not valid JSON: {error.msg} at character {error.pos + 1}.")
        except RecursionError:
            raise ValueError(too_deep())
        if not isinstance(parsed, dict):
            raise ValueError('Give a JSON object, e.g. {"city": "Lisbon"}.')
        return parsed

    def render(self, value, obj=None, **kwargs):
        return json.dumps(value or {}, ensure_ascii=False, sort_keys=True, cls=DeepSafeEncoder)


class YesNoWidget(widgets.BooleanWidget):
    """1/0, true/false or yes/no; an empty cell is no. Anything else is an error, not a
    silent False."""

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, bool):
            return value
        word = "" if value is None else str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(f"{value!r} is not a yes/no value: use 1/0, true/false or yes/no.")


class TextWidget(widgets.CharWidget):
    """Text a spreadsheet could take for a formula is written with a leading apostrophe and
    read back without it (journeyhub.spreadsheet)."""

    def clean(self, value, row=None, **kwargs):
        value = super().clean(value, row, **kwargs)
        return cell_unescaped(value) if isinstance(value, str) else value

    def render(self, value, obj=None, **kwargs):
        text = super().render(value, obj, **kwargs)
        return cell_escaped(text) if isinstance(text, str) else text


class TrimmedWidget(widgets.CharWidget):
    """Surrounding spaces dropped; an empty cell gives None, which the field does not save."""

    def __init__(self, *, lower: bool = False):
        super().__init__(allow_blank=False)
        self.lower = lower

    def clean(self, value, row=None, **kwargs):
        text = "" if value is None else str(value).strip()
        if not text:
            return None
        return text.lower() if self.lower else text


class ReasonOnlyError(results.Error):
    """An unexpected import error: staff read its reason on the page, the log keeps the
    traceback (paths and code are no business of the person importing)."""

    def __init__(self, error, row=None, number=None):
        super().__init__(error, row=row, number=number)
        logger.warning("Customer import failed (row %s)", number, exc_info=error)

    @property
    def traceback(self) -> str:
        return ""


def _kept_when_empty(name: str, *, lower: bool = False) -> fields.Field:
    return fields.Field(
        attribute=name, column_name=name, widget=TrimmedWidget(lower=lower),
        saves_null_values=False,
    )


def _export_only(name: str, widget: widgets.Widget | None = None) -> fields.Field:
    """Shown to the reader of an export, never taken from a file."""
    return fields.Field(attribute=name, column_name=name, widget=widget, readonly=True)


class StorableIdsLoader(CachedInstanceLoader):
    """CachedInstanceLoader (all the file's customers in one query), leaving out of that query
    the ids no database can hold (a NUL, a lone surrogate): PostgreSQL would refuse the whole
    query, where before_import_row refuses just their rows."""

    def __init__(self, resource, dataset=None):
        ModelInstanceLoader.__init__(self, resource, dataset)
        self.pk_field = resource.fields[resource.get_import_id_fields()[0]]
        self.all_instances = {}
        if dataset.dict and self.pk_field.column_name in dataset.dict[0]:
            ids = [value for row in dataset.dict
                   if not text_problem(str(value := self.pk_field.clean(row)))]
            customers = self.get_queryset().filter(**{f"{self.pk_field.attribute}__in": ids})
            self.all_instances = {self.pk_field.get_value(c): c for c in customers}


def _text(name: str) -> fields.Field:
    return fields.Field(attribute=name, column_name=name, widget=TextWidget())


class CustomerResource(resources.ModelResource):
    external_id = _text("external_id")
    first_name = _text("first_name")
    last_name = _text("last_name")
    email = _text("email")
    locale = _kept_when_empty("locale")
    time_zone = _kept_when_empty("time_zone")
    stage = _kept_when_empty("stage", lower=True)
    attributes = fields.Field(
        attribute="attributes", column_name="attributes", widget=JSONObjectWidget()
    )
    push_opt_out = fields.Field(
        attribute="push_opt_out", column_name="push_opt_out", widget=YesNoWidget()
    )

    class Meta:
        model = Customer
        import_id_fields = ["external_id"]
        fields = IMPORT_COLUMNS
        instance_loader_class = StorableIdsLoader  # one query for all the file's ids
        clean_model_instances = True  # time zone, stage choice, e-mail: the model's validators
        skip_unchanged = True
        report_skipped = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._stage_before: dict[int, str] = {}
        self._stage_wanted: dict[int, str] = {}

    def get_error_result_class(self):
        return ReasonOnlyError

    def before_import_row(self, row, **kwargs):
        """Text no database can store (NUL, lone surrogates) is a field error, in any column."""
        errors = {column: [problem] for column, value in row.items()
                  if isinstance(value, str) and (problem := text_problem(value))}
        if errors:
            raise ValidationError(errors)

    def after_init_instance(self, instance, new, row, **kwargs):
        if not new:
            self._stage_before[instance.pk] = instance.stage

    def before_save_instance(self, instance, row, **kwargs):
        """An existing customer's stage moves through customer_stage_set, after the save, so
        the move is recorded and announced; the plain save keeps the stored stage."""
        before = self._stage_before.get(instance.pk)
        if before is not None and instance.stage != before:
            self._stage_wanted[instance.pk] = instance.stage
            instance.stage = before

    def after_save_instance(self, instance, row, **kwargs):
        wanted = self._stage_wanted.pop(instance.pk, None)
        if wanted is not None:
            customer_stage_set(customer=instance, stage=wanted, cause=IMPORT_CAUSE)


class CustomerExportResource(CustomerResource):
    """The import columns, then what the reader may want but a file never sets. A file
    exported with these columns imports back: the extra columns are ignored."""

    referral_code = _export_only("referral_code")
    stage_changed_at = _export_only("stage_changed_at", widgets.DateTimeWidget())
    last_seen_at = _export_only("last_seen_at", widgets.DateTimeWidget())
    created_at = _export_only("created_at", widgets.DateTimeWidget())

    class Meta(CustomerResource.Meta):
        fields = IMPORT_COLUMNS + EXPORT_ONLY_COLUMNS
        chunk_size = EXPORT_CHUNK_SIZE
