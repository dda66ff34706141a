"""The admin site: a home page for each role and a menu grouped by task.

The menu puts models under the tasks people come for (campaigns, messages, customers,
settings); the plumbing (beat schedules, delivery batches, step sends, the raw
push_notifications device tables, provider outages) sits in an Operations section that only
superusers see. A model no group names lands in "Other", so nothing registered is lost.

The home page is the admin's index: apps above this one add their panels with
``home_panel_add`` (a function of the request returning a template name and its context, or
None to show nothing), so this module imports nothing from them."""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


@dataclass(frozen=True)
class MenuGroup:
    slug: str
    name: str
    models: tuple[str, ...]  # "app_label.model_name", in the order shown
    superusers_only: bool = False


MENU = (
    MenuGroup("campaigns", "Campaigns", (
        "campaigns.campaign", "campaigns.enrollment", "campaigns.conversion")),
    MenuGroup("messages", "Messages", (
        "notifications.template", "notifications.send", "notifications.delivery",
        "notifications.deliverysettings", "notifications.frequencycap",
        "notifications.demoreceivedpush")),
    MenuGroup("customers", "Customers", (
        "audiences.customer", "audiences.segment", "audiences.event", "audiences.topic",
        "audiences.stagerule", "audiences.stagetransition", "notifications.device",
        "onboarding.importjob", "audiences.customermerge", "audiences.customererasure")),
    MenuGroup("settings", "Access", ("journeyhub.apikey", "auth.user", "auth.group")),
    MenuGroup("operations", "Operations", (
        "django_celery_beat.periodictask", "django_celery_beat.crontabschedule",
        "django_celery_beat.intervalschedule", "django_celery_beat.clockedschedule",
        "django_celery_beat.solarschedule", "notifications.deliverybatch",
        "campaigns.stepsend", "notifications.provideroutage",
        "push_notifications.apnsdevice", "push_notifications.gcmdevice",
        "push_notifications.wnsdevice", "push_notifications.webpushdevice"),
        superusers_only=True),
)
OPERATIONS_APPS = ("django_celery_beat", "push_notifications")  # wholly plumbing

HomePanel = Callable[[HttpRequest], tuple[str, dict] | None]


class JourneyHubAdminSite(admin.AdminSite):
    site_header = "JourneyHub"
    site_title = "JourneyHub"
    index_title = "Home"
    index_template = "admin/home.html"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.home_panels: list[HomePanel] = []

    def home_panel_add(self, panel: HomePanel) -> None:
        if panel not in self.home_panels:
            self.home_panels.append(panel)

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        if app_label is not None:  # an app's own page keeps Django's grouping
            if not request.user.is_superuser and app_label in OPERATIONS_APPS:
                return []
            return apps
        return menu_groups(request, apps)

    def index(self, request, extra_context=None):
        panels = []
        for panel in self.home_panels:
            shown = panel(request)
            if shown is not None:
                template, context = shown
                panels.append({"template": template, **context})
        return super().index(request, {**(extra_context or {}), "home_panels": panels})


def menu_groups(request, apps: list[dict]) -> list[dict]:
    """Django's app list (each app with the models the user may see) regrouped by task."""
    models = {f"{app['app_label']}.{model['object_name'].lower()}": model
              for app in apps for model in app["models"]}
    placed, groups = set(), []
    for group in MENU:
        names = [name for name in group.models if name in models]
        placed.update(group.models)
        if not names or (group.superusers_only and not request.user.is_superuser):
            continue
        groups.append(_group(group.slug, group.name, [models[name] for name in names]))
    rest = [models[name] for name in models
            if name not in placed and name.split(".")[0] not in OPERATIONS_APPS]
    if rest:
        groups.append(_group("other", "Other", sorted(rest, key=lambda m: m["name"])))
    return groups


def _group(slug: str, name: str, models: list[dict]) -> dict:
    return {"name": name, "app_label": slug, "app_url": f"{reverse('admin:index')}#menu-{slug}",
            "has_module_perms": True, "models": models}


def admin_prefix_redirect(request: HttpRequest, rest: str) -> HttpResponseRedirect:
    """/admin/<rest> leads to /<rest>: the admin is at the root. Only ever to a path on this
    site ("/admin//evil.example" must not become "//evil.example")."""
    target = "/" + rest.lstrip("/\\")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    query = request.META.get("QUERY_STRING", "")
    return HttpResponseRedirect(f"{target}?{query}" if query else target)
