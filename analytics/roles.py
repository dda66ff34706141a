"""Staff roles as groups: the one definition of what Marketers, Analysts and Admins may do.

Applied by the data migration that creates the groups, and again after every ``migrate`` (a
post_migrate handler in AnalyticsConfig), so models added later reach the roles too. Applying
is idempotent and sets each group's permissions to exactly the definition: a permission added
by hand to one of these groups is taken away at the next migrate (make a group of your own for
a custom set). Members also need "staff status" to use the admin."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions

EXPORT_PERMISSION = "analytics.export_data"
DASHBOARD_PERMISSION = "analytics.view_dashboard"
ACTIONS = ("add", "change", "delete", "view")

MARKETER = "Marketer"
ANALYST = "Analyst"
ADMIN = "Admin"

# Marketers build campaigns and their messages and audiences, and bring customers in from
# files (import jobs).
MARKETER_EDITS = (
    "campaigns.campaign", "campaigns.step", "campaigns.variant",
    "notifications.template", "notifications.templatetranslation",
    "audiences.segment", "audiences.segmentmember", "onboarding.importjob",
)
MARKETER_VIEWS = (
    "audiences.customer", "audiences.topic", "campaigns.enrollment", "campaigns.stepsend",
    "campaigns.conversion",
)
MARKETER_EXTRA = (DASHBOARD_PERMISSION,)
# Analysts read everything but the API keys (a key's holder could write through the API).
ANALYST_HIDDEN = ("journeyhub.apikey",)
ANALYST_EXTRA = (EXPORT_PERMISSION, DASHBOARD_PERMISSION)


def _split(dotted: str) -> tuple[str, str]:
    app_label, name = dotted.split(".")
    return app_label, name


def _by_names(Permission, names: list[str]):
    """Permissions named "app_label.codename" that exist (a model not installed is skipped)."""
    query = None
    for dotted in names:
        app_label, codename = _split(dotted)
        clause = Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        query = clause if query is None else query | clause
    return query if query is not None else Permission.objects.none()


def role_permissions(Permission) -> dict[str, object]:
    """Each role's permissions as a queryset of ``Permission`` (real or historical model)."""
    marketer = [f"{app}.{action}_{model}" for app, model in map(_split, MARKETER_EDITS)
                for action in ACTIONS]
    marketer += [f"{app}.view_{model}" for app, model in map(_split, MARKETER_VIEWS)]
    analyst = Permission.objects.filter(codename__startswith="view_")
    for app_label, model in map(_split, ANALYST_HIDDEN):
        analyst = analyst.exclude(content_type__app_label=app_label, content_type__model=model)
    return {
        MARKETER: _by_names(Permission, [*marketer, *MARKETER_EXTRA]),
        ANALYST: analyst | _by_names(Permission, list(ANALYST_EXTRA)),
        ADMIN: Permission.objects.all(),
    }


def roles_apply(*, apps=global_apps, using: str = "default") -> None:
    """Create the groups if missing and set their permissions to the definition."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, permissions in role_permissions(Permission).items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        group.permissions.set(list(permissions.using(using).values_list("pk", flat=True)))


def permissions_create_all(*, apps, using: str) -> None:
    """Every installed model's permissions, now: inside a migration they would otherwise only
    be created after all migrations ran (post_migrate), too late to give them to groups."""
    for app_config in apps.get_app_configs():
        # Historical app configs have no models module, which create_permissions requires.
        app_config.models_module = True
        try:
            create_permissions(app_config, apps=apps, verbosity=0, using=using)
        finally:
            app_config.models_module = None


def roles_sync(sender, *, using: str = "default", apps=global_apps, **kwargs) -> None:
    """post_migrate: keep the roles in step with models added by later migrations."""
    roles_apply(apps=apps, using=using)
