"""The steps of a campaign in its admin page (an ordered inline), and a step's own page where
its A/B variants are edited.

Both check the whole campaign's steps with campaigns.validation.steps_problems before saving,
so an unreachable step, a loop with no wait or a send without a message is a form error that
names the step. Links (next / else) offer this campaign's saved steps and the steps added in
the same form, not saved yet ("new-<row>"), which are linked once everything is saved."""

import re
from datetime import timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.choices import CallableChoiceIterator
from django.utils.html import format_html

from campaigns.models import Campaign, Step, Variant
from campaigns.validation import (
    StepDraft,
    draft_from_fields,
    drafts_from_steps,
    steps_problems,
)

WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]
DURATION_UNITS = {"d": "days", "day": "days", "days": "days", "h": "hours", "hour": "hours",
                  "hours": "hours", "m": "minutes", "min": "minutes", "minute": "minutes",
                  "minutes": "minutes", "w": "weeks", "week": "weeks", "weeks": "weeks"}
DURATION_PART = re.compile(r"(\d+)\s*([a-z]+)")
DRAFT_FIELDS = ("kind", "name", "duration", "local_time", "weekdays", "event_name", "percent",
                "attribute_key", "stage")
STEP_FIELDS = ("position", "kind", "name", "next_step", "else_step", "template", "duration",
               "local_time", "weekdays", "event_name", "event_filter", "segment", "percent",
               "attribute_key", "attribute_value", "stage")


class DurationPartsWidget(forms.MultiWidget):
    """Days, hours and minutes in three small boxes. The form reads them as "2d 3h 0m"; a
    single value under the field's own name ("3 days", as scripts and the API post) is taken
    as it is."""

    template_name = "campaigns/widgets/duration_parts.html"  # forms render from app dirs
    UNITS = (("d", "days"), ("h", "hours"), ("m", "minutes"))

    def __init__(self, attrs=None):
        boxes = [forms.NumberInput(attrs={"min": 0, "step": 1, "class": "jh-duration-part",
                                          "aria-label": label, "placeholder": "0"})
                 for _, label in self.UNITS]
        super().__init__(boxes, attrs)

    def decompress(self, value):
        if isinstance(value, str):
            try:
                value = FriendlyDurationField().to_python(value)
            except ValidationError:
                return [None, None, None]
        if not isinstance(value, timedelta):
            return [None, None, None]
        seconds = int(value.total_seconds())
        return [seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60]

    def value_from_datadict(self, data, files, name):
        if name in data:
            return data.get(name)
        parts = super().value_from_datadict(data, files, name)
        if not any(str(part or "").strip() for part in parts):
            return ""
        text = " ".join(f"{str(part).strip() or 0}{unit}"
                        for part, (unit, _) in zip(parts, self.UNITS, strict=True))
        return text if re.fullmatch(r"(\d+[dhm] ?){3}", text + " ") else "?"

    def value_omitted_from_data(self, data, files, name):
        return name not in data and super().value_omitted_from_data(data, files, name)


class FriendlyDurationField(forms.DurationField):
    """Accepts "3 days", "2h 30m", "1 week" as well as Django's "3 00:00:00"."""

    widget = DurationPartsWidget

    def to_python(self, value):
        text = (value or "").strip().lower() if isinstance(value, str) else value
        if isinstance(text, str) and text and re.fullmatch(r"(\s*\d+\s*[a-z]+\s*,?)+", text):
            parts = DURATION_PART.findall(text)
            if all(unit in DURATION_UNITS for _, unit in parts):
                total = timedelta()
                for amount, unit in parts:
                    total += timedelta(**{DURATION_UNITS[unit]: int(amount)})
                return total
            raise ValidationError('Write a duration like "3 days", "2h 30m" or "45 minutes".')
        return super().to_python(value)

    def prepare_value(self, value):
        if not isinstance(value, timedelta):
            return value
        seconds = int(value.total_seconds())
        parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"),
                 (seconds % 3600 // 60, "m")]
        return " ".join(f"{amount}{unit}" for amount, unit in parts if amount) or "0m"


NEW_LINK = re.compile(r"new-(\d+)")  # a link to a row of the same formset, not saved yet
LINK_NAMES = ("next_step", "else_step")


class StepLinkField(forms.Field):
    """A link to a sibling step: a saved step's id, or "new-<row>" for a row of the same form
    (when ``allow_new``). Cleans to the saved Step or None; the form keeps the sibling's key
    (id or "new-<row>") in ``link_keys`` for validation and for linking after the save."""

    widget = forms.Select

    def __init__(self, *, steps=None, allow_new: bool = True, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.allow_new = allow_new
        self.new_rows: list[int] = []
        self.steps = steps if steps is not None else Step.objects.none()

    @property
    def steps(self):
        return self._steps

    @steps.setter
    def steps(self, queryset) -> None:
        self._steps = queryset
        self.widget.choices = CallableChoiceIterator(self._choices)

    def __deepcopy__(self, memo):
        copied = super().__deepcopy__(memo)
        copied.new_rows = list(self.new_rows)
        copied.steps = self._steps  # the copy's options are read from the copy
        return copied

    def _choices(self):
        yield "", "---------"
        for step in self._steps:
            yield str(step.pk), str(step)
        for row in self.new_rows:
            yield f"new-{row}", f"New step (row {row + 1})"

    def prepare_value(self, value):
        return str(value.pk) if isinstance(value, Step) else value

    def link_key(self, value):
        """The key the value names ("new-3", a saved id) or None; raises ValidationError."""
        text = str(value or "").strip()
        if not text:
            return None
        if (found := NEW_LINK.fullmatch(text)) and self.allow_new:
            return f"new-{int(found.group(1))}"
        if text.isdigit():
            step = self._steps.filter(pk=int(text)).first()
            if step is not None:
                return step
        raise ValidationError("Choose one of this campaign's steps.")

    def clean(self, value):
        found = self.link_key(value)
        return found if isinstance(found, Step) else None


class StepForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Wait until: allowed weekdays; none ticked means any day.",
    )
    duration = FriendlyDurationField(
        required=False,
        help_text="Wait: how long. Wait for an event: the timeout.",
    )

    position = forms.IntegerField(
        required=False, min_value=0, widget=forms.NumberInput(attrs={"style": "width: 4em"}),
        help_text="Order of the steps; empty: after the others.",
    )

    next_step = StepLinkField(help_text="Empty: the next step in order.")
    else_step = StepLinkField(help_text="Branches: where the other way leads; empty: exit.")

    class Meta:
        model = Step
        fields = STEP_FIELDS
        widgets = {
            "name": forms.TextInput(attrs={"size": 24, "placeholder": "optional label"}),
            "event_name": forms.TextInput(attrs={"list": "jh-event-names"}),
            "event_filter": forms.Textarea(attrs={"rows": 2, "cols": 30}),
            "attribute_value": forms.Textarea(attrs={"rows": 1, "cols": 30}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.link_keys: dict[str, object] = dict.fromkeys(LINK_NAMES)
        if self.instance.pk:  # until cleaned: where the saved step links to
            self.link_keys = {"next_step": self.instance.next_step_id,
                              "else_step": self.instance.else_step_id}

    def _clean_fields(self):
        super()._clean_fields()
        for name in LINK_NAMES:
            field = self.fields.get(name)
            if field is None or name in self.errors:
                continue
            found = field.link_key(self[name].data)
            self.link_keys[name] = found.pk if isinstance(found, Step) else found


class StepFormSet(forms.BaseInlineFormSet):
    """Links offer this campaign's steps and the new rows of the form; the steps are checked
    as a whole."""

    def add_fields(self, form, index):
        super().add_fields(form, index)
        choices = self._link_choices()
        new_rows = self._new_rows()
        for name in LINK_NAMES:
            if name in form.fields:
                form.fields[name].allow_new = True
                form.fields[name].new_rows = [row for row in new_rows if row != index]
                form.fields[name].steps = choices

    def _new_rows(self) -> list[int]:
        """Indexes of the rows without a saved step, as sent (a page shown again after an
        error keeps the links the marketer chose between new steps)."""
        if not self.is_bound:
            return []
        try:
            total = int(self.data.get(f"{self.prefix}-TOTAL_FORMS", 0))
        except (TypeError, ValueError):
            return []
        return list(range(self.initial_form_count(), min(total, self.absolute_max)))

    def _link_choices(self):
        if not hasattr(self, "_links"):
            campaign_id = self.instance.pk if self.instance else None
            self._links = Step.objects.filter(campaign_id=campaign_id) if campaign_id \
                else Step.objects.none()
        return self._links

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms):
            return  # field errors first: the drafts would be incomplete
        kept = self.kept_forms()
        _number_new_steps(list(kept.values()))
        if self._links_to_deleted(kept.values()) or self._links_to_missing_rows(kept):
            return
        weights = variant_weights([form.instance.pk for form in kept.values()])
        drafts = [form_draft(key, form, weights) for key, form in kept.items()]
        general = []
        for key, messages in steps_problems(drafts).items():
            for message in messages:
                if key in kept:
                    kept[key].add_error(None, message)
                else:
                    general.append(message)
        if general:
            raise ValidationError(general)

    def kept_forms(self) -> dict:
        """The rows that will be steps after saving, by key (id, or "new-<row>")."""
        return {step_key(form, index): form for index, form in enumerate(self.forms)
                if (form.has_changed() or form.instance.pk) and not self._should_delete_form(form)}

    def _links_to_missing_rows(self, kept: dict) -> bool:
        found = False
        for form in kept.values():
            for name in LINK_NAMES:
                key = form.link_keys.get(name)
                if isinstance(key, str) and key not in kept:
                    form.add_error(name, "That new step is empty or being removed; link "
                                         "somewhere else.")
                    found = True
        return found

    def link_new_steps(self) -> None:
        """After the save: point the links that named new rows at the steps they became."""
        for form in self.forms:
            changed = []
            for name in LINK_NAMES:
                key = form.link_keys.get(name)
                if isinstance(key, str) and form.instance.pk:
                    setattr(form.instance, name, self.forms[int(key[4:])].instance)
                    changed.append(name)
            if changed:
                form.instance.save(update_fields=changed)

    def _links_to_deleted(self, forms_) -> bool:
        """A link to a step being deleted in the same save is an error naming both: the
        marketer says where the link goes instead of having it silently re-pointed."""
        deleted = {form.instance.pk: form.instance for form in self.forms
                   if form.instance.pk and self._should_delete_form(form)}
        found = False
        for form in forms_:
            for name in ("next_step", "else_step"):
                target = form.cleaned_data.get(name)
                if target is not None and target.pk in deleted:
                    form.add_error(name, f"{target} is being deleted; link somewhere else.")
                    found = True
        return found


def _number_new_steps(forms_) -> None:
    """New steps without a position go after the others, in the order of their rows."""
    last = max((f.cleaned_data.get("position") or 0 for f in forms_), default=0)
    for form in forms_:
        if form.cleaned_data.get("position") is None:
            last += 1
            form.cleaned_data["position"] = form.instance.position = last


def step_key(form, index: int):
    """A saved step is known by its id (links point at ids), a new one by its form's index."""
    return form.instance.pk or f"new-{index}"


def form_draft(key, form, weights: dict[int, list[int]]) -> StepDraft:
    data = form.cleaned_data
    return draft_from_fields(
        key=key, position=data.get("position") or 0, fields=data,
        next_key=form.link_keys.get("next_step"), else_key=form.link_keys.get("else_step"),
        variant_weights=weights.get(form.instance.pk),
    )


def variant_weights(step_ids) -> dict[int, list[int]]:
    """Saved variants' weights per step: one query for the whole formset."""
    weights: dict[int, list[int]] = {}
    rows = Variant.objects.filter(step_id__in=[pk for pk in step_ids if pk]).order_by("pk")
    for step_id, weight in rows.values_list("step_id", "weight"):
        weights.setdefault(step_id, []).append(weight)
    return weights


class StepInline(admin.StackedInline):
    model = Step
    form = StepForm
    formset = StepFormSet
    extra = 0
    ordering = ("position", "pk")
    classes = ("jh-steps",)
    readonly_fields = ("variants_link",)
    autocomplete_fields = ("template", "segment")
    fieldsets = ((None, {"fields": (
        ("position", "kind", "name"), ("next_step", "else_step"),
        ("template", "variants_link"), "duration", ("local_time", "weekdays"),
        ("event_name", "event_filter"), "segment", "percent",
        ("attribute_key", "attribute_value"), "stage",
    )}),)

    def has_add_permission(self, request, obj=None):
        return _editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return _editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _editable(obj) and super().has_delete_permission(request, obj)

    @admin.display(description="A/B variants")
    def variants_link(self, step: Step) -> str:
        if not step.pk:
            return "Save, then add A/B variants on the step's page."
        count = step.variants.count()
        url = reverse("admin:campaigns_step_change", args=[step.pk])
        text = f"{count} variant{'s' if count != 1 else ''}" if count else "none"
        return format_html('{} · <a href="{}">edit variants</a>', text, url)


def _editable(campaign: Campaign | None) -> bool:
    """An archived campaign's steps are history: shown, not changed."""
    return campaign is None or campaign.status != Campaign.Status.ARCHIVED


class VariantFormSet(forms.BaseInlineFormSet):
    """On a step's page, the step (as edited in the form above) and its variants (as edited
    here) are checked with the campaign's other steps: a send may have variants instead of a
    template, so neither can be judged alone."""

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms) or not self.instance.pk:
            return
        weights = [form.cleaned_data.get("weight") or 0 for form in self.forms
                   if form.cleaned_data and not self._should_delete_form(form)]
        step = self.instance
        fields = {name: getattr(step, name) for name in DRAFT_FIELDS}
        mine = draft_from_fields(
            key=step.pk, position=step.position, next_key=step.next_step_id,
            else_key=step.else_step_id, variant_weights=weights or None,
            fields={**fields, "template": step.template_id, "segment": step.segment_id},
        )
        others = Step.objects.filter(campaign_id=step.campaign_id).exclude(pk=step.pk)
        problems = steps_problems([*drafts_from_steps(others), mine]).get(step.pk)
        if problems:
            raise ValidationError(problems)


class VariantInline(admin.TabularInline):
    model = Variant
    formset = VariantFormSet
    extra = 0
    autocomplete_fields = ("template",)


@admin.register(Step)
class StepAdmin(admin.ModelAdmin):
    """A step's page: its fields and its A/B variants. Reached from the campaign's page."""

    form = StepForm
    inlines = (VariantInline,)
    list_display = ("__str__", "campaign", "kind")
    list_select_related = ("campaign",)
    search_fields = ("name", "campaign__name")
    autocomplete_fields = ("template", "segment")
    readonly_fields = ("campaign",)
    fields = ("campaign", *STEP_FIELDS)

    def get_model_perms(self, request):
        return {}  # not on the admin index: steps are edited from their campaign

    def has_add_permission(self, request):
        return False

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        links = Step.objects.filter(campaign_id=obj.campaign_id).exclude(pk=obj.pk) if obj \
            else Step.objects.none()
        for name in LINK_NAMES:
            form.base_fields[name].allow_new = False  # no other rows on a step's own page
            form.base_fields[name].steps = links
        return form

    def response_change(self, request, obj):
        response = super().response_change(request, obj)
        if "_continue" in request.POST:
            return response
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change",
                                            args=[obj.campaign_id]))

    def has_change_permission(self, request, obj=None):
        campaign = obj.campaign if obj is not None else None
        return _editable(campaign) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # removing a step goes through the campaign, which moves its customers on
