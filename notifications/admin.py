"""Admin for devices. django-push-notifications registers its own admins for the token rows."""

from django.contrib import admin, messages
from django.db.models import QuerySet

from audiences.admin.customers import EstimatedCountPaginator
from notifications.models import Device
from notifications.services import device_deactivate, devices_mark_test

DEACTIVATED_BY_STAFF = "Deactivated in the admin"
DEACTIVATE_MAX = 10_000  # one service call per device, inside the request


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = (
        "id", "kind", "platform", "customer", "app_version", "environment", "permission",
        "is_active", "is_test", "last_seen_at",
    )
    list_filter = ("kind", "platform", "environment", "permission", "is_active", "is_test")
    search_fields = ("=customer__external_id",)  # indexed; an OR with more fields would scan
    raw_id_fields = ("customer", "apns", "fcm", "webpush")
    list_select_related = ("customer",)
    readonly_fields = ("created_at", "deactivated_reason")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ("deactivate", "mark_test", "unmark_test")

    @admin.action(description="Mark as test devices", permissions=("change",))
    def mark_test(self, request, queryset: QuerySet[Device]) -> None:
        count = devices_mark_test(devices=queryset, is_test=True)
        self.message_user(request, f"Marked {count} device(s) as test devices: journey test runs "
                                   "for “all test devices” send to them.", messages.SUCCESS)

    @admin.action(description="Unmark as test devices", permissions=("change",))
    def unmark_test(self, request, queryset: QuerySet[Device]) -> None:
        count = devices_mark_test(devices=queryset, is_test=False)
        self.message_user(request, f"{count} device(s) are no longer test devices.",
                          messages.SUCCESS)

    @admin.action(description="Deactivate selected devices", permissions=("change",))
    def deactivate(self, request, queryset: QuerySet[Device]) -> None:
        active = queryset.filter(is_active=True).select_related("apns", "fcm", "webpush")
        if active.count() > DEACTIVATE_MAX:
            self.message_user(request, f"Select at most {DEACTIVATE_MAX:,} active devices at "
                                       "a time (filter the list first).", messages.ERROR)
            return
        count = 0
        for device in active.iterator(chunk_size=500):
            device_deactivate(device=device, reason=DEACTIVATED_BY_STAFF)
            count += 1
        if count:
            self.message_user(request, f"Deactivated {count} device(s).", messages.SUCCESS)
        else:
            self.message_user(request, "The selected devices were already inactive.",
                              messages.WARNING)
from notifications import admin_delivery  # noqa: E402,F401  (templates, sends, deliveries)
