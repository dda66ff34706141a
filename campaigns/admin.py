"""The campaign builder: a campaign's page with its steps, flow diagram, audience size,
progress, message preview, test sends and the status actions; the global control group.

Every write goes through campaigns.services (campaign_save, steps_remove, the status
services), so the admin follows the same rules as the API and never strands an enrolled
customer; the panels' logic lives in campaigns.admin_builder."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from audiences.models import Segment
from audiences.suggestions import event_names
from campaigns import admin_builder as builder
from campaigns import (
    admin_records,  # noqa: F401  (enrollments, conversions, step sends)
    services,  # noqa: I001
)
from campaigns.admin_flow import flow_preview
from campaigns.admin_steps import FriendlyDurationField, StepFormSet, StepInline
from campaigns.flow import flow_svg
from campaigns.models import Campaign, Step
from campaigns.selectors import campaign_audience_size
from campaigns.timeline import timeline_sources_add
from campaigns.trial_run import campaign_test_run, campaign_test_run_devices
from notifications.services import send_test

CAMPAIGN_FIELDS = (
    "name", "description", "kind", "stage", "segment", "send_at", "crontab", "crontab_time_zone",
    "trigger", "trigger_event_name", "trigger_event_filter", "trigger_stage", "trigger_segment",
    "reentry", "reentry_cooldown", "starts_at", "ends_at", "max_enrollments", "goal_event_name",
    "goal_event_filter", "goal_window", "goal_revenue_property", "holdout_percent",
    "transactional", "throttle_per_minute", "respect_quiet_hours", "quiet_hours_start",
    "quiet_hours_end", "local_send_time", "local_time_passed", "message_expires_at",
)
timeline_sources_add()  # enrollments and messages on a customer's page

KIND_CHOICES = (  # the start of a new campaign: what each kind is for
    (Campaign.Kind.BROADCAST, "Broadcast", "One message to a segment, now or at a set time: "
     "an offer, an announcement."),
    (Campaign.Kind.RECURRING, "Recurring", "The same message to a segment on a schedule, "
     "e.g. every Monday at 10:00: a weekly digest."),
    (Campaign.Kind.JOURNEY, "Journey", "Steps for one customer at a time, started by an "
     "event, a stage or a segment entry: waits, branches, messages."),
)
ENROLLED_COUNT_CAP = 10_000  # the list counts at most this many per campaign, then says "10,000+"


class CampaignForm(forms.ModelForm):
    goal_window = FriendlyDurationField(
        initial=Campaign._meta.get_field("goal_window").default,
        help_text="How long after entry a goal event counts.",
    )
    reentry_cooldown = FriendlyDurationField(required=False,
                                             help_text="How long before they may enter again.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "local_time_passed" in self.fields:  # absent when the campaign is read-only
            self.fields["local_time_passed"].required = False  # absent: the model's default

    def clean_local_time_passed(self):
        return (self.cleaned_data.get("local_time_passed")
                or Campaign._meta.get_field("local_time_passed").default)

    class Meta:
        model = Campaign
        fields = CAMPAIGN_FIELDS
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2, "cols": 60}),
            "trigger_event_filter": forms.Textarea(attrs={"rows": 2, "cols": 40}),
            "trigger_event_name": forms.TextInput(attrs={"list": "jh-event-names"}),
            "goal_event_name": forms.TextInput(attrs={"list": "jh-event-names"}),
            "goal_event_filter": forms.Textarea(attrs={"rows": 2, "cols": 40}),
        }

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        for name, problems in services.campaign_problems(self.instance).items():
            for problem in problems:
                field = name if name in self.fields else None
                if field is None or field not in self.errors:
                    self.add_error(field, problem)


def _fieldsets():
    return (
        (None, {"fields": ("name", "description", "kind", "stage", "status_badge")}),
        ("Audience", {"fields": ("segment", "audience_size"),
                      "description": "Broadcast and recurring campaigns send to this segment; "
                                     "a journey lets in only its members (optional)."}),
        ("Schedule", {"fields": ("send_at", ("crontab", "crontab_time_zone"), "beat_task_link"),
                      "classes": ("jh-kind-broadcast", "jh-kind-recurring")}),
        ("Entry", {"fields": (
            "trigger", ("trigger_event_name", "trigger_event_filter"), "trigger_stage",
            "trigger_segment", ("reentry", "reentry_cooldown"), ("starts_at", "ends_at"),
            "max_enrollments"), "classes": ("jh-kind-journey",)}),
        ("Goal", {"fields": (("goal_event_name", "goal_event_filter"),
                             ("goal_window", "goal_revenue_property")),
                  "description": "Reaching the goal exits the customer and records a "
                                 "conversion, attributed to the last message they got."}),
        ("Delivery controls", {"fields": (
            ("holdout_percent", "transactional"), ("throttle_per_minute", "respect_quiet_hours"),
            ("quiet_hours_start", "quiet_hours_end"), ("local_send_time", "local_time_passed"),
            "message_expires_at"), "classes": ("collapse",)}),
        ("History", {"fields": ("created_by", "created_at", "launched_at", "finished_at"),
                     "classes": ("collapse",)}),
    )


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    inlines = (StepInline,)
    list_display = ("name", "kind", "status", "stage", "audience", "enrolled", "updated_at")
    list_filter = ("kind", "status", "stage", "trigger")
    search_fields = ("name", "description")
    list_select_related = ("segment", "trigger_segment")
    autocomplete_fields = ("segment", "trigger_segment")
    list_per_page = 50  # each row counts its enrollments (capped)
    actions = ("pause_selected", "resume_selected", "archive_selected", "duplicate_selected")
    change_form_template = "admin/campaigns/campaign/change_form.html"
    save_on_top = True

    class Media:
        js = ("campaigns/builder.js", "campaigns/builder_flow.js")
        css = {"all": ("campaigns/builder.css",)}

    def get_fieldsets(self, request, obj=None):
        return _fieldsets()

    def get_readonly_fields(self, request, obj=None):
        readonly = ["status_badge", "audience_size", "beat_task_link", "created_by",
                    "created_at", "launched_at", "finished_at"]
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            readonly += sorted(services.EDITABLE_ONLY_IN_DRAFT)
        return readonly

    def has_change_permission(self, request, obj=None):
        # An archived campaign is history: its page is read-only (it can still be duplicated).
        archived = obj is not None and obj.status == Campaign.Status.ARCHIVED
        return not archived and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.status in services.DELETABLE)

    # --- Lists -------------------------------------------------------------------------------

    @admin.display(description="Audience")
    def audience(self, campaign: Campaign) -> str:
        if campaign.kind != Campaign.Kind.JOURNEY:
            return str(campaign.segment or "-")
        return builder.entry_label(campaign)

    @admin.display(description="Enrolled")
    def enrolled(self, campaign: Campaign) -> str:
        # COUNT over LIMIT: a million-customer broadcast costs a bounded index scan, not a full one.
        count = campaign.enrollments.all()[: ENROLLED_COUNT_CAP + 1].count()
        return f"{ENROLLED_COUNT_CAP:,}+" if count > ENROLLED_COUNT_CAP else f"{count:,}"

    @admin.display(description="Status")
    def status_badge(self, campaign: Campaign) -> str:
        if not campaign.pk:
            return "Draft (new)"
        return format_html('<span class="jh-status jh-status-{}">{}</span>', campaign.status,
                           campaign.get_status_display())

    @admin.display(description="Audience size")
    def audience_size(self, campaign: Campaign) -> str:
        return format_html(
            '<span class="jh-audience-size" data-url="{}" data-kind="{}" data-segment="{}" '
            'data-trigger="{}" data-trigger-segment="{}" aria-live="polite">Counting…</span>',
            reverse("admin:campaigns_campaign_audience_size"), campaign.kind,
            campaign.segment_id or "", campaign.trigger, campaign.trigger_segment_id or "",
        )

    @admin.display(description="Beat schedule")
    def beat_task_link(self, campaign: Campaign) -> str:
        task = campaign.beat_task
        if task is None:
            return "None (launch a broadcast with a send time, or a recurring campaign)"
        url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
        state = "enabled" if task.enabled else "disabled"
        return format_html('<a href="{}">{}</a> ({})', url, task.name, state)

    # --- Saving through the services -----------------------------------------------------------

    def save_model(self, request, obj, form, change):
        fields = {name: value for name, value in form.cleaned_data.items()
                  if name in {f.name for f in Campaign._meta.fields}}
        if not change:
            obj.created_by = request.user
        services.campaign_save(campaign=obj, fields=fields, user=request.user)

    def save_formset(self, request, form, formset, change):
        if not isinstance(formset, StepFormSet):
            return super().save_formset(request, form, formset, change)
        for step in formset.save(commit=False):
            step.save()
        formset.link_new_steps()  # links between steps that were new until now
        if formset.deleted_objects:
            # Customers on a removed step move on to its successor first.
            services.steps_remove(campaign=form.instance, steps=formset.deleted_objects)
        formset.save_m2m()

    def delete_model(self, request, obj):
        services.campaign_delete(campaign=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for campaign in queryset:
            services.campaign_delete(campaign=campaign, user=request.user)

    # --- The builder page -----------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("audience-size/", view(self.audience_size_view),
                 name="campaigns_campaign_audience_size"),
            path("flow-preview/", view(self.flow_preview_view),
                 name="campaigns_campaign_flow_preview"),
            path("<int:pk>/flow-preview/", view(self.flow_preview_view),
                 name="campaigns_campaign_flow_preview"),
            path("<int:pk>/action/<str:name>/", view(self.action_view),
                 name="campaigns_campaign_action"),
            path("<int:pk>/send-test/", view(self.send_test_view),
                 name="campaigns_campaign_send_test"),
            path("<int:pk>/test-run/", view(self.test_run_view),
                 name="campaigns_campaign_test_run"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        """A new campaign starts by choosing its kind; the form then opens for that kind."""
        if request.method == "GET" and "kind" not in request.GET and IS_POPUP_VAR not in \
                request.GET and self.has_add_permission(request):
            context = {**self.admin_site.each_context(request), "opts": self.opts,
                       "title": "Start a campaign", "kinds": KIND_CHOICES}
            return TemplateResponse(request, "admin/campaigns/campaign/choose_kind.html", context)
        return super().add_view(request, form_url, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        extra["event_names"] = event_names()  # offered in triggers, waits and goals
        campaign = self.get_object(request, unquote(object_id)) if object_id else None
        if campaign is not None and request.method == "GET":
            extra.update(self._builder_context(request, campaign))
        if campaign is None or self.has_change_permission(request, campaign):
            extra["step_kinds"] = Step.Kind.choices  # "add a step" on the flow
        if campaign is None:
            extra.setdefault("flow_svg", flow_svg([], entry="Entry: choose the kind below"))
        return super().changeform_view(request, object_id, form_url, extra)

    def _builder_context(self, request, campaign: Campaign) -> dict:
        context = {
            "builder": True,
            "actions_valid": builder.actions_for(campaign),
            "flow_svg": builder.flow_diagram(campaign),
            "progress": builder.progress_summary(campaign),
            "preview_customer": request.GET.get("preview_customer", "").strip(),
        }
        context["strict_skips"] = builder.strict_skips_for(campaign)
        if context["preview_customer"]:
            try:
                customer = builder.customer_find(context["preview_customer"])
                context["previewed"] = customer
                context["previews"] = builder.previews_for(campaign, customer)
            except ValidationError as error:
                context["preview_error"] = " ".join(error.messages)
        return context

    def audience_size_view(self, request: HttpRequest):
        """GET kind, segment, trigger, trigger_segment (ids) -> {"size": n or null, "text"}."""
        if not self.has_view_or_change_permission(request):
            return JsonResponse({"error": "You may not view campaigns."}, status=403)
        draft = Campaign(kind=request.GET.get("kind") or Campaign.Kind.BROADCAST,
                         trigger=request.GET.get("trigger", ""))
        for name in ("segment", "trigger_segment"):
            raw = request.GET.get(name, "")
            found = Segment.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
            if raw and found is None:
                return JsonResponse({"error": f"No segment with id {raw!r}."}, status=400)
            setattr(draft, name, found)
        try:
            size = campaign_audience_size(draft)
        except ValidationError as error:
            return JsonResponse({"error": " ".join(error.messages)}, status=400)
        return JsonResponse({"size": size, "text": _size_text(draft, size)})

    def flow_preview_view(self, request: HttpRequest, pk: int | None = None):
        """POST the campaign page's form (unsaved) -> the flow diagram it describes, with each
        step's problems, as JSON. Nothing is saved."""
        campaign = get_object_or_404(Campaign, pk=pk) if pk is not None else None
        if not self.has_view_or_change_permission(request, campaign):
            return JsonResponse({"error": "You may not view campaigns."}, status=403)
        if request.method != "POST":
            return JsonResponse({"error": "POST the campaign's form."}, status=405)
        form = self.get_form(request, campaign, change=campaign is not None)(
            request.POST, instance=campaign or Campaign())
        form.is_valid()  # fills the instance with what is valid, for the entry's label
        inline = StepInline(self.model, self.admin_site)
        formset = inline.get_formset(request, campaign)(
            request.POST, instance=form.instance, prefix="steps")
        return JsonResponse(flow_preview(formset=formset,
                                         entry=builder.entry_label(form.instance)))

    def action_view(self, request: HttpRequest, pk: int, name: str):
        campaign = get_object_or_404(Campaign, pk=pk)
        allowed = (self.has_add_permission(request) if name == "duplicate"
                   else self.has_change_permission(request, campaign))
        if not allowed:
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(_change_url(campaign))
        try:
            result, message = builder.action_run(campaign=campaign, name=name, user=request.user)
        except ValidationError as error:
            self.message_user(request, _error_text(error), messages.ERROR)
            return HttpResponseRedirect(_change_url(campaign))
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(_change_url(result))

    def send_test_view(self, request: HttpRequest, pk: int):
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(_change_url(campaign))
        who = request.POST.get("customer", "")
        try:
            customer = builder.customer_find(who)
            template = builder.campaign_template(campaign, request.POST.get("template"))
        except ValidationError as error:
            self.message_user(request, _error_text(error), messages.ERROR)
        else:
            send = send_test(template=template, customer=customer, created_by=request.user)
            url = reverse("admin:notifications_send_change", args=[send.pk])
            self.message_user(request, format_html(
                'Test send <a href="{}">#{}</a> of “{}” queued for {}.', url, send.pk, template,
                customer.external_id), messages.SUCCESS)
        return HttpResponseRedirect(_change_url(campaign, preview_customer=who))

    def test_run_view(self, request: HttpRequest, pk: int):
        """POST customer, or run_for=test_devices (and events=happen, goal=reached) -> the test
        run's timeline, on its own page."""
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(_change_url(campaign))
        who = request.POST.get("customer", "")
        choices = {"user": request.user, "events_happen": request.POST.get("events") == "happen",
                   "goal_reached": request.POST.get("goal") == "reached"}
        context = {**self.admin_site.each_context(request), "opts": self.opts,
                   "original": campaign, "events_happen": choices["events_happen"]}
        try:
            if request.POST.get("run_for") == "test_devices":
                runs = campaign_test_run_devices(campaign=campaign, **choices)
                context.update(runs=runs, title=f"Test run of “{campaign}” on the test devices")
            else:
                customer = builder.customer_find(who)
                log = campaign_test_run(campaign=campaign, customer=customer, **choices)
                context.update(customer=customer, log=log,
                               title=f"Test run of “{campaign}” for {customer.external_id}")
        except ValidationError as error:
            self.message_user(request, _error_text(error), messages.ERROR)
            return HttpResponseRedirect(_change_url(campaign, preview_customer=who))
        return TemplateResponse(request, "admin/campaigns/campaign/test_run.html", context)

    # --- List actions ---------------------------------------------------------------------------

    @admin.action(description="Pause selected campaigns", permissions=("change",))
    def pause_selected(self, request, queryset: QuerySet[Campaign]) -> None:
        self._each(request, queryset, "pause")

    @admin.action(description="Resume selected campaigns", permissions=("change",))
    def resume_selected(self, request, queryset: QuerySet[Campaign]) -> None:
        self._each(request, queryset, "resume")

    @admin.action(description="Archive selected campaigns", permissions=("change",))
    def archive_selected(self, request, queryset: QuerySet[Campaign]) -> None:
        self._each(request, queryset, "archive")

    @admin.action(description="Duplicate selected campaigns", permissions=("add",))
    def duplicate_selected(self, request, queryset: QuerySet[Campaign]) -> None:
        self._each(request, queryset, "duplicate")

    def _each(self, request, queryset, name: str) -> None:
        for campaign in queryset:
            try:
                _, message = builder.action_run(campaign=campaign, name=name, user=request.user)
            except ValidationError as error:
                self.message_user(request, f"“{campaign}”: {_error_text(error)}",
                                  messages.ERROR)
            else:
                self.message_user(request, message, messages.SUCCESS)


def _change_url(campaign: Campaign, **params) -> str:
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    params = {key: value for key, value in params.items() if value}
    return f"{url}?{urlencode(params)}#jh-preview" if params else url


def _error_text(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return " ".join(message for messages_ in error.message_dict.values()
                        for message in messages_)
    return " ".join(error.messages)


def _size_text(draft: Campaign, size: int | None) -> str:
    if size is None:
        if draft.kind == Campaign.Kind.JOURNEY:
            return "Anyone who triggers the entry"
        return "Choose a segment"
    return f"{size:,} customer{'s' if size != 1 else ''}"
