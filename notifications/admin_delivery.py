"""Admin for templates, sends, deliveries and the global delivery controls."""

import re

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from audiences.models import Customer
from notifications.models import (
    Delivery,
    DeliveryBatch,
    DeliverySettings,
    DemoReceivedPush,
    Device,
    FrequencyCap,
    LocalTimePassed,
    ProviderOutage,
    Send,
    Template,
    TemplateTranslation,
)
from notifications.previews import template_preview
from notifications.rendering import template_check, template_field_problems
from notifications.selectors import send_outage, send_progress
from notifications.services import send_cancel, send_create, send_pause, send_resume, send_test

AUDIENCE_SHOWN = 10  # external ids shown on a send's page; the rest as a count
SURROGATE_RE = re.compile("[\ud800-\udfff]")


class TemplateTranslationFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [form for form in self.forms
                if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        for form in kept:
            for name, problem in template_field_problems(form.cleaned_data).items():
                form.add_error(name, problem)
        kept = [form for form in kept if form.is_valid()]
        # One check for all the translations, so that together they stay within its time.
        texts = [(f.cleaned_data["locale"], f.cleaned_data["title"], f.cleaned_data["body"])
                 for f in kept]
        problems = [p for p in template_check(self.instance, texts=texts) if p.startswith("[")]
        for form, (locale, _, _) in zip(kept, texts, strict=True):
            if mine := [p for p in problems if p.startswith(f"[{locale}] ")]:
                form.add_error("body", "; ".join(mine))


class TemplateTranslationInline(admin.TabularInline):
    model = TemplateTranslation
    formset = TemplateTranslationFormSet
    extra = 0


PRESENTATION_FIELDS = ("badge_mode", "badge", "sound", "thread_id", "android_channel_id",
                       "interruption_level", "relevance_score", "actions", "apns_category")


class TemplateForm(forms.ModelForm):
    class Meta:
        model = Template
        fields = ("name", "kind", "topic", "priority", "title", "body", "image_url", "url", "data",
                  *PRESENTATION_FIELDS, "ttl_seconds", "collapse_key", "strict")

    def clean(self):
        cleaned = super().clean()
        unstorable = template_field_problems(cleaned)
        for name, problem in unstorable.items():
            self.add_error(name, problem)
        if unstorable:
            return cleaned
        candidate = Template(**{k: v for k, v in cleaned.items() if k in
                                ("kind", "priority", "title", "body", "image_url", "url", "data",
                                 "ttl_seconds", "collapse_key", *PRESENTATION_FIELDS)})
        for problem in template_check(candidate):
            raise ValidationError(f"This template cannot be sent: {problem}")
        return cleaned


class SendTestForm(forms.Form):
    customer = forms.CharField(label="Customer external id")

    def clean_customer(self):
        external_id = self.cleaned_data["customer"].strip()
        customer = Customer.objects.filter(external_id=external_id).first()
        if customer is None:
            raise ValidationError(f"No customer with external id {external_id!r}.")
        return customer


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    form = TemplateForm
    list_display = ("name", "kind", "title", "topic", "priority", "updated_at")
    list_filter = ("kind", "topic", "priority", "inline")
    search_fields = ("name", "title", "body")
    ordering = ("name",)  # also the order of the template pickers (autocomplete) elsewhere
    inlines = (TemplateTranslationInline,)
    change_form_template = "admin/notifications/template/change_form.html"
    fieldsets = (
        (None, {"fields": ("name", "kind", "topic", "priority")}),
        ("Message", {
            "fields": ("title", "body", "image_url", "url", "data"),
            "description": (
                "Django template language over a safe context: {{ customer.first_name }}, "
                "{{ customer.attributes.city }}, {{ customer.referral_code }}, "
                "{{ event.restaurant }} (the triggering event), "
                "{{ last.order_placed.restaurant }} (the customer's latest order_placed event), "
                "{{ campaign.source }}. Use |default:'...' for missing values."
            ),
        }),
        ("How it shows", {
            "fields": PRESENTATION_FIELDS,
            "description": "Badge, sound, grouping and buttons (see the README's template "
                           "reference for what each provider receives).",
        }),
        ("Delivery", {"fields": ("ttl_seconds", "collapse_key", "strict")}),
    )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        template = Template.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if template is not None and request.method == "GET":
            wanted = request.GET.get("preview_customer", "").strip()
            customer = Customer.objects.filter(external_id=wanted).first() if wanted else None
            extra_context = {
                **(extra_context or {}), "preview": template_preview(template, customer),
                "preview_customer_id": wanted,
                "preview_problem": f"No customer with external id {wanted!r}."
                if wanted and customer is None else "",
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        urls = super().get_urls()
        send_test_url = path("<int:pk>/send-test/", self.admin_site.admin_view(self.send_test_view),
                             name="notifications_template_send_test")
        return [send_test_url, *urls]

    def send_test_view(self, request: HttpRequest, pk: int):
        template = get_object_or_404(Template, pk=pk)
        if not self.has_change_permission(request, template):
            raise PermissionDenied
        form = SendTestForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            send = send_test(template=template, customer=form.cleaned_data["customer"],
                             created_by=request.user)
            self.message_user(request, f"Test send #{send.pk} queued for "
                              f"{form.cleaned_data['customer']}.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:notifications_send_change",
                                                args=[send.pk]))
        context = {**self.admin_site.each_context(request), "form": form, "template": template,
                   "opts": self.model._meta, "title": f"Send “{template}” to a customer"}
        return TemplateResponse(request, "admin/notifications/template/send_test.html", context)


class SendForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(
        choices=Device.Kind.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Only these providers; none ticked means every device.",
    )
    customer_external_ids = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Instead of a segment: external ids, one per line or comma-separated.",
    )

    class Meta:
        model = Send
        fields = ("template", "segment", "kinds", "throttle_per_minute",
                  "respect_quiet_hours", "quiet_hours_start", "quiet_hours_end", "local_time",
                  "local_time_passed", "cap_exempt", "expires_at", "source")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["local_time_passed"].required = False  # absent: the default, next day

    def clean(self):
        cleaned = super().clean()
        if (cleaned.get("quiet_hours_start") is None) != (cleaned.get("quiet_hours_end") is None):
            self.add_error("quiet_hours_end", "An own quiet window needs both its start and its "
                                              "end (leave both empty for the global window).")
        raw = cleaned.get("customer_external_ids", "")
        external_ids = [x.strip() for x in raw.replace(",", "\n").splitlines() if x.strip()]
        if bool(external_ids) == bool(cleaned.get("segment")):
            raise ValidationError("Choose a segment or list customers, not both and not neither.")
        if external_ids:
            found = dict(Customer.objects.filter(external_id__in=external_ids)
                         .values_list("external_id", "pk"))
            missing = [x for x in external_ids if x not in found]
            if missing:
                self.add_error("customer_external_ids",
                               f"Unknown customers: {', '.join(missing[:20])}")
            cleaned["customer_ids"] = list(found.values())
        return cleaned


@admin.register(Send)
class SendAdmin(admin.ModelAdmin):
    list_display = ("id", "template", "audience", "status", "progress", "source", "created_at")
    list_filter = ("status",)
    search_fields = ("=id", "template__name", "source")
    list_select_related = ("template", "segment")
    raw_id_fields = ("trigger_event",)
    actions = ("pause", "resume", "cancel")
    readonly_fields = ("status", "error", "progress", "skipped_by_reason", "created_by",
                       "created_at", "started_at", "finished_at")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = SendForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return [*SendForm.Meta.fields[:2], "customer_external_ids", *SendForm.Meta.fields[2:]]
        return ("template", "audience_detail", "kinds", "status", "error", "progress",
                "skipped_by_reason", "throttle_per_minute", "respect_quiet_hours",
                "quiet_hours_start", "quiet_hours_end", "local_time", "local_time_passed",
                "cap_exempt", "expires_at", "source", "test_devices_only", "created_by",
                "created_at", "started_at", "finished_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return self.get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            return
        data = form.cleaned_data
        audience = ({"segment": data["segment"]} if data.get("segment")
                    else {"customer_ids": data["customer_ids"]})
        send = send_create(
            template=data["template"], kinds=data.get("kinds") or [],
            throttle_per_minute=data.get("throttle_per_minute"),
            respect_quiet_hours=data.get("respect_quiet_hours", True),
            quiet_hours=(data.get("quiet_hours_start"), data.get("quiet_hours_end")),
            local_time=data.get("local_time"),
            local_time_passed=data.get("local_time_passed") or LocalTimePassed.NEXT_DAY,
            cap_exempt=data.get("cap_exempt", False), expires_at=data.get("expires_at"),
            source=data.get("source", ""), created_by=request.user, **audience,
        )
        obj.pk = send.pk

    def change_view(self, request, object_id, form_url="", extra_context=None):
        send = Send.objects.filter(pk=object_id).first()
        if send is not None and send.error and request.method == "GET":
            self.message_user(request, send.error, messages.ERROR)
        outage = send_outage(send) if send is not None and request.method == "GET" else ""
        if outage:
            self.message_user(request, f"{outage}: nothing is lost, the send resumes by "
                                       "itself.", messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Audience")
    def audience(self, send: Send) -> str:
        if send.segment_id:
            return f"Segment: {send.segment}"
        return f"{len(send.customer_ids or [])} customer(s)"

    @admin.display(description="Audience")
    def audience_detail(self, send: Send) -> str:
        """The segment (linked), or the count of customers and the first few external ids:
        an explicit audience may hold thousands of ids."""
        if send.segment_id:
            url = reverse("admin:audiences_segment_change", args=[send.segment_id])
            return format_html('Segment <a href="{}">{}</a>', url, send.segment)
        ids = send.customer_ids or []
        shown = dict(Customer.objects.filter(pk__in=ids[:AUDIENCE_SHOWN]).values_list(
            "pk", "external_id"))
        names = ", ".join(shown.get(pk, f"#{pk} (erased)") for pk in ids[:AUDIENCE_SHOWN])
        more = f", and {len(ids) - AUDIENCE_SHOWN:,} more" if len(ids) > AUDIENCE_SHOWN else ""
        return f"{len(ids):,} customer{'s' if len(ids) != 1 else ''}: {names}{more}"

    @admin.display(description="Progress")
    def progress(self, send: Send) -> str:
        progress = send_progress(send)
        done = f"{progress.sent} sent / {progress.total} ({progress.percent:.0f}% done)"
        outage = send_outage(send)
        return f"{done}; {outage}" if outage else done

    @admin.display(description="Skipped and failed, by reason")
    def skipped_by_reason(self, send: Send) -> str:
        reasons = send_progress(send).reasons
        if not reasons:
            return "-"
        url = reverse("admin:notifications_delivery_changelist")
        return format_html(
            "{} (<a href='{}?send__id__exact={}'>deliveries</a>)",
            ", ".join(f"{reason}: {count}" for reason, count in sorted(reasons.items())),
            url, send.pk,
        )

    @admin.action(description="Pause selected sends", permissions=("change",))
    def pause(self, request, queryset: QuerySet[Send]) -> None:
        self._each(request, queryset, send_pause, "Paused")

    @admin.action(description="Resume selected sends", permissions=("change",))
    def resume(self, request, queryset: QuerySet[Send]) -> None:
        self._each(request, queryset, send_resume, "Resumed")

    @admin.action(description="Cancel selected sends", permissions=("change",))
    def cancel(self, request, queryset: QuerySet[Send]) -> None:
        self._each(request, queryset, send_cancel, "Cancelled")

    def _each(self, request, queryset, service, verb: str) -> None:
        done, refused = 0, []
        for send in queryset:
            try:
                service(send=send)
                done += 1
            except ValidationError as error:
                refused.append(f"#{send.pk}: {' '.join(error.messages)}")
        if done:
            self.message_user(request, f"{verb} {done} send(s).", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.ERROR)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "send", "customer", "kind", "status", "reason", "sent_at",
                    "opened_at")
    list_filter = ("status", "reason", "kind")
    search_fields = ("=id", "=customer__external_id")
    raw_id_fields = ("send", "customer", "device")
    list_select_related = ("send__template", "customer")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DeliveryBatch)
class DeliveryBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "send", "number", "kind", "application_id", "size", "status",
                    "attempts", "not_before", "claimed_at", "fence", "finished_at")
    list_filter = ("status", "kind")
    raw_id_fields = ("send",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ProviderOutage)
class ProviderOutageAdmin(admin.ModelAdmin):
    """Providers answering only temporary errors: their batches wait until the next try. A row
    goes by itself once the provider accepts messages again."""

    list_display = ("kind", "application_id", "retry_at", "failures", "error", "started_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def cap_text(count: int, window_hours: int) -> str:
    """The frequency cap as a marketer says it: "2 per 7 days", "3 per 1 day 12 hours"."""
    if not count:
        return "Off"
    days, hours = divmod(window_hours, 24)
    parts = [f"{days} day{'s' if days != 1 else ''}" if days else "",
             f"{hours} hour{'s' if hours != 1 else ''}" if hours else ""]
    return f"{count} per {' '.join(part for part in parts if part) or '0 hours'}"


class DeliverySettingsForm(forms.ModelForm):
    """The cap's window in days and hours (stored as hours)."""

    window_days = forms.IntegerField(min_value=0, required=False, label="per (days)",
                                     widget=forms.NumberInput(attrs={"style": "width: 5em"}))
    window_hours = forms.IntegerField(min_value=0, max_value=23, required=False,
                                      label="and hours",
                                      widget=forms.NumberInput(attrs={"style": "width: 5em"}))

    class Meta:
        model = DeliverySettings
        fields = ("frequency_cap", "quiet_hours_start", "quiet_hours_end", "default_time_zone",
                  "control_group_percent")
        labels = {"frequency_cap": "At most (messages)"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        days, hours = divmod(self.instance.frequency_window_hours or 0, 24)
        self.fields["window_days"].initial, self.fields["window_hours"].initial = days, hours

    def clean(self):
        data = super().clean()
        total = (data.get("window_days") or 0) * 24 + (data.get("window_hours") or 0)
        if data.get("frequency_cap") and total < 1:
            self.add_error("window_days", "The window must be at least an hour.")
        self.instance.frequency_window_hours = total
        return data


@admin.register(DeliverySettings)
class DeliverySettingsAdmin(admin.ModelAdmin):
    form = DeliverySettingsForm
    list_display = ("__str__", "cap", "quiet_hours_start", "quiet_hours_end",
                    "control_group_percent")
    readonly_fields = ("cap",)
    fieldsets = (
        ("Frequency cap", {"fields": (("frequency_cap", "window_days", "window_hours"), "cap"),
                           "description": "At most this many non-transactional pushes reach a "
                                          "customer within the window; 0 turns the cap off."}),
        ("Quiet hours", {"fields": (("quiet_hours_start", "quiet_hours_end"),)}),
        ("Time zone and control group", {"fields": ("default_time_zone",
                                                    "control_group_percent")}),
    )

    @admin.display(description="Frequency cap")
    def cap(self, controls: DeliverySettings) -> str:
        return cap_text(controls.frequency_cap, controls.frequency_window_hours)

    def has_add_permission(self, request):
        return not DeliverySettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        controls = DeliverySettings.load()
        return HttpResponseRedirect(
            reverse("admin:notifications_deliverysettings_change", args=[controls.pk])
        )


@admin.register(FrequencyCap)
class FrequencyCapAdmin(admin.ModelAdmin):
    """Caps on top of the global one: per consent topic or per kind of campaign."""

    list_display = ("__str__", "topic", "campaign_kind", "cap", "window_hours")
    list_filter = ("campaign_kind",)
    list_select_related = ("topic",)


@admin.register(DemoReceivedPush)
class DemoReceivedPushAdmin(admin.ModelAdmin):
    """What the demo sink received and decrypted: proof that sends really went out."""

    list_display = ("received_at", "kind", "title", "body", "buttons", "customer", "tag",
                    "urgency", "ttl")
    list_select_related = ("inbox__device__customer",)
    readonly_fields = ("inbox", "received_at", "title", "body", "payload", "tag", "ttl",
                       "urgency")
    show_full_result_count = False

    @admin.display(description="Customer")
    def customer(self, received: DemoReceivedPush):
        return received.inbox.device.customer

    @admin.display(description="Kind")
    def kind(self, received: DemoReceivedPush) -> str:
        return "silent (data only)" if received.payload.get("kind") == "silent" else "alert"

    @admin.display(description="Buttons")
    def buttons(self, received: DemoReceivedPush) -> str:
        actions = received.payload.get("actions") or []
        return " | ".join(str(a.get("title", "")) for a in actions if isinstance(a, dict)) or "-"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
