"""Admin for customers, events, consent topics, stage rules and transitions.

Customers and events are the big tables (millions of rows): no full counts, no per-row queries
in lists, and a customer's page shows their timeline a page at a time (audiences.timeline)."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV, JSON, XLSX

from audiences.admin.identity import CustomerDataRightsMixin
from audiences.admin.import_handoff import ImportHandoffMixin
from audiences.models import Customer, Event, Stage, StageRule, StageTransition, Topic
from audiences.resources import CustomerExportResource, CustomerResource
from audiences.stages import customer_stage_set
from audiences.timeline import Cursor, customer_timeline
from journeyhub.json_deep import DeepSafeEncoder

RECENT_ROWS = 20  # stage transitions shown on a customer's page
# An admin export is built in the web process's memory: beyond this, filter the list first.
EXPORT_MAX_ROWS = 100_000
LOCALES_CACHE_SECONDS = 300
EXACT_COUNT_BELOW = 100_000  # whole tables larger than this show PostgreSQL's row estimate


class EstimatedCountPaginator(Paginator):
    """Pages of a big table without COUNT(*) on every view: an unfiltered list of a large table
    takes PostgreSQL's own row estimate (COUNT(*) reads every row: 0.1-0.3 s at millions).
    Filtered lists, and every list elsewhere, are counted exactly."""

    @cached_property
    def count(self) -> int:
        query = self.object_list.query
        if connection.vendor == "postgresql" and not query.where:
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                               [query.model._meta.db_table])
                row = cursor.fetchone()
            if row and row[0] >= EXACT_COUNT_BELOW:
                return int(row[0])
        return super().count


def _json_text(value) -> str:
    """A stored JSON value as JSON text, whatever its depth (repr would recurse per level)."""
    return json.dumps(value, ensure_ascii=False, cls=DeepSafeEncoder)


def _changelist_link(model, text: str, **filters) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    query = "&".join(f"{key}={value}" for key, value in filters.items())
    return format_html('<a href="{}?{}">{}</a>', url, query, text)


def _timeline_context(request, customer_id: int) -> dict:
    """One page of the customer's timeline (``?timeline=<cursor>`` for older ones)."""
    raw = request.GET.get("timeline", "")
    try:
        cursor = Cursor.parse(raw) if raw else None
    except ValidationError as error:
        return {"timeline_error": " ".join(error.messages)}
    items, older = customer_timeline(customer_id=customer_id, cursor=cursor)
    return {"timeline": items, "timeline_older": str(older) if older else "",
            "timeline_paged": bool(raw)}


class LocaleFilter(admin.SimpleListFilter):
    """The locales in use, from a DISTINCT kept LOCALES_CACHE_SECONDS: reading every customer
    on each page view is not worth showing a brand-new locale a few minutes sooner."""

    title = "locale"
    parameter_name = "locale"

    def lookups(self, request, model_admin):
        locales = cache.get_or_set(
            "admin:customer-locales",
            lambda: list(Customer.objects.order_by("locale").values_list("locale", flat=True)
                         .distinct()),
            LOCALES_CACHE_SECONDS,
        )
        return [(locale, locale) for locale in locales]

    def queryset(self, request, queryset):
        return queryset.filter(locale=self.value()) if self.value() else queryset


@admin.register(Customer)
class CustomerAdmin(CustomerDataRightsMixin, ImportHandoffMixin, ImportExportModelAdmin):
    list_display = (
        "external_id", "full_name", "email", "stage", "last_seen_at", "locale", "created_at",
    )
    list_filter = ("stage", LocaleFilter, "push_opt_out")
    # Names and e-mail by substring (a scan); see get_search_results for external ids.
    search_fields = ("=external_id", "email", "first_name", "last_name")
    raw_id_fields = ("referred_by",)
    readonly_fields = (
        "bucket", "referral_code", "stage_changed_at", "last_seen_at", "created_at",
        "updated_at", "stage_history", "data_rights",
    )
    fieldsets = (
        (None, {"fields": ("external_id", "first_name", "last_name", "email", "referred_by")}),
        ("Journey", {"fields": ("stage", "stage_changed_at", "last_seen_at", "stage_history")}),
        ("Preferences", {"fields": ("locale", "time_zone", "push_opt_out", "attributes")}),
        ("Identity", {"fields": ("bucket", "referral_code", "created_at", "updated_at")}),
        ("Data rights", {"fields": ("data_rights",)}),
    )
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    change_form_template = "admin/audiences/customer/change_form.html"
    import_error_display = ("message",)  # a reason for the reader, not a traceback
    formats = [CSV, XLSX, JSON]
    import_formats = [CSV, XLSX]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        if request.method == "GET" and str(object_id).isdigit():
            extra.update(_timeline_context(request, int(object_id)))
        return super().change_view(request, object_id, form_url, extra)

    def get_search_results(self, request, queryset, search_term):
        """An exact external id finds its customer through the unique index alone, instead of
        OR-ing it with substring matches that read the whole table."""
        term = search_term.strip()
        if term and Customer.objects.filter(external_id=term).exists():
            return queryset.filter(external_id=term), False
        return super().get_search_results(request, queryset, search_term)

    def get_import_resource_classes(self, request):
        return [CustomerResource]

    def get_export_resource_classes(self, request):
        return [CustomerExportResource]

    def get_export_data(self, file_format, request, queryset, **kwargs):
        rows = queryset.count()
        if rows > EXPORT_MAX_ROWS:  # export_action shows a ValueError as a message on the form
            raise ValueError(
                f"{rows:,} customers is more than one export can hold ({EXPORT_MAX_ROWS:,}): "
                "filter the list (by stage, locale...) and export the parts."
            )
        return super().get_export_data(file_format, request, queryset, **kwargs)

    def get_import_data_kwargs(self, **kwargs):
        # The confirm step reads the file again; a row that fails there rolls back the whole
        # file instead of importing the others (the preview already refuses bad files).
        return {**super().get_import_data_kwargs(**kwargs), "rollback_on_validation_errors": True}

    def add_success_message(self, result, request):
        if not result.has_validation_errors():
            return super().add_success_message(result, request)
        reasons = "; ".join(
            f"row {row.number}: {' '.join(row.error.messages)}" for row in result.invalid_rows
        )
        self.message_user(request, f"Nothing was imported. {reasons}", messages.ERROR)

    @admin.display(description="name", ordering="last_name")
    def full_name(self, customer: Customer) -> str:
        return customer.full_name

    @admin.display(description="stage transitions")
    def stage_history(self, customer: Customer) -> str:
        if customer.pk is None:
            return "-"
        transitions = customer.transitions.order_by("-at", "-pk")[:RECENT_ROWS]
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{} → {}</td><td>{}</td></tr>",
            ((t.at, t.from_stage, t.to_stage, t.cause) for t in transitions),
        )
        link = _changelist_link(
            StageTransition, "all transitions", customer__id__exact=customer.pk
        )
        return format_html("<table>{}</table>{}", rows, link)

    def save_model(self, request, obj, form, change):
        """A stage picked here is a move like any other: recorded and announced."""
        wanted = obj.stage
        if change and "stage" in form.changed_data:
            obj.stage = form.initial["stage"]
        super().save_model(request, obj, form, change)
        if change and wanted != obj.stage:
            cause = f"Set in the admin by {request.user}"
            customer_stage_set(customer=obj, stage=wanted, cause=cause)


class EventNameFilter(admin.SimpleListFilter):
    """The distinct event names, found by hopping along the (name, occurred_at) index instead
    of reading every event: a few dozen index probes at millions of rows."""

    title = "name"
    parameter_name = "name"

    def lookups(self, request, model_admin):
        return [(name, name) for name in _event_names()]

    def queryset(self, request, queryset):
        return queryset.filter(name=self.value()) if self.value() else queryset


def _event_names() -> list[str]:
    table = connection.ops.quote_name(Event._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE names(name) AS (
                SELECT min(name) FROM {table}
                UNION ALL
                SELECT (SELECT min(name) FROM {table} WHERE name > names.name)
                FROM names WHERE names.name IS NOT NULL
            )
            SELECT name FROM names WHERE name IS NOT NULL
            """
        )
        return [row[0] for row in cursor.fetchall()]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("name", "customer", "occurred_at", "received_at")
    list_filter = (EventNameFilter,)
    date_hierarchy = "occurred_at"
    raw_id_fields = ("customer",)
    list_select_related = ("customer",)
    search_fields = ("=customer__external_id",)  # indexed; an OR with more fields would scan
    show_full_result_count = False
    paginator = EstimatedCountPaginator


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "description")
    search_fields = ("key", "name")
    prepopulated_fields = {"key": ("name",)}


class StageRuleForm(forms.ModelForm):
    from_stages = forms.MultipleChoiceField(
        choices=Stage.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Stages the rule moves customers out of; none ticked means any other stage.",
    )

    class Meta:
        model = StageRule
        fields = (
            "name", "kind", "event_name", "first_time_only", "inactivity_days", "from_stages",
            "to_stage", "priority", "is_active",
        )


@admin.register(StageRule)
class StageRuleAdmin(admin.ModelAdmin):
    form = StageRuleForm
    list_display = ("name", "kind", "event_name", "inactivity_days", "to_stage", "priority",
                    "is_active")
    list_filter = ("kind", "to_stage", "is_active")
    list_editable = ("priority", "is_active")
    search_fields = ("name", "event_name")


@admin.register(StageTransition)
class StageTransitionAdmin(admin.ModelAdmin):
    """The journey's history: written by rules and services only, never edited here."""

    list_display = ("at", "customer", "from_stage", "to_stage", "cause")
    list_filter = ("to_stage", "from_stage")
    raw_id_fields = ("customer", "rule", "event")
    list_select_related = ("customer",)
    search_fields = ("=customer__external_id",)
    date_hierarchy = "at"
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
