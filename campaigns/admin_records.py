"""Read-only admin lists of what campaigns did: enrollments, step sends and conversions.

Enrollments are a big table (a broadcast enrolls its whole segment): no full counts, raw ids
instead of select boxes, and no per-row queries in the list."""

from django.contrib import admin

from audiences.admin.customers import EstimatedCountPaginator
from campaigns.models import Conversion, Enrollment, StepSend


class ReadOnlyAdmin(admin.ModelAdmin):
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "campaign", "customer", "step", "state", "group", "next_run_at",
                    "entered_at", "exited_at", "exit_reason")
    list_filter = ("state", "group", "exit_reason")
    search_fields = ("=customer__external_id",)  # indexed; campaign by the filter in the URL
    raw_id_fields = ("campaign", "customer", "step", "trigger_event")
    list_select_related = ("campaign", "customer", "step")
    paginator = EstimatedCountPaginator


@admin.register(StepSend)
class StepSendAdmin(ReadOnlyAdmin):
    list_display = ("send", "campaign", "step", "variant", "created_at")
    raw_id_fields = ("step", "campaign", "variant", "send")
    list_select_related = ("campaign", "step", "variant", "send")
    search_fields = ("=campaign__name",)


@admin.register(Conversion)
class ConversionAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "campaign", "customer", "group", "variant", "revenue",
                    "delivery")
    list_filter = ("group",)
    search_fields = ("=customer__external_id", "=campaign__name")
    raw_id_fields = ("campaign", "enrollment", "customer", "event", "delivery", "variant")
    list_select_related = ("campaign", "customer", "variant")
    date_hierarchy = "occurred_at"
