"""The Marketer, Analyst and Admin groups: made by a migration, kept in step after migrate, and
what they let their members do in the admin."""

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from analytics.roles import ADMIN, ANALYST, MARKETER, roles_apply
from campaigns.models import Campaign
from journeyhub.models import ApiKey
from tests.campaigns.admin_kit import campaign_form

pytestmark = pytest.mark.django_db


def member(name: str, group: str) -> User:
    user = User.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def codes(group: str) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in
            Group.objects.get(name=group).permissions.select_related("content_type")}


@pytest.fixture
def campaign():
    return Campaign.objects.create(name="Welcome journey", kind="journey", trigger="event",
                                   trigger_event_name="signed_up")




# --- The groups -------------------------------------------------------------------------------


def test_the_three_groups_exist_with_their_permissions():
    marketer, analyst, admin = codes(MARKETER), codes(ANALYST), codes(ADMIN)

    assert {"campaigns.add_campaign", "campaigns.change_campaign", "campaigns.delete_campaign",
            "campaigns.change_step", "campaigns.change_variant",
            "notifications.change_template", "audiences.change_segment",
            "audiences.view_customer"} <= marketer
    assert "audiences.change_customer" not in marketer
    assert {"campaigns.view_campaign", "notifications.view_delivery", "audiences.view_event",
            "analytics.export_data", "analytics.view_dashboard"} <= analyst
    assert not {p for p in analyst if p.split(".")[1].startswith(("add_", "change_", "delete_"))}
    assert admin == {f"{p.content_type.app_label}.{p.codename}"
                     for p in Permission.objects.select_related("content_type")}


def test_only_the_admin_group_holds_api_key_permissions():
    api_keys = {"journeyhub.view_apikey", "journeyhub.add_apikey", "journeyhub.change_apikey"}

    assert not api_keys & codes(MARKETER)
    assert not api_keys & codes(ANALYST)
    assert api_keys <= codes(ADMIN)


def test_the_migration_creates_the_permissions_it_hands_out():
    """Inside the migration, permissions do not exist yet on a new database."""
    Permission.objects.all().delete()
    Group.objects.all().delete()
    executor = MigrationExecutor(connection)
    state = executor.loader.project_state(("analytics", "0004_roles"), at_end=True)
    migration = executor.loader.get_migration("analytics", "0004_roles")

    # The function uses only the editor's connection; entering the editor would change the
    # schema's transaction state, which SQLite refuses inside the test's transaction.
    migration.operations[0].code(state.apps, connection.schema_editor(atomic=False))

    assert "campaigns.change_campaign" in codes(MARKETER)
    assert "analytics.export_data" in codes(ANALYST)


def test_migrate_puts_a_group_back_to_its_definition():
    analyst = Group.objects.get(name=ANALYST)
    analyst.permissions.add(Permission.objects.get(codename="change_campaign"))
    analyst.permissions.remove(Permission.objects.get(codename="export_data"))

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")

    assert "campaigns.change_campaign" not in codes(ANALYST)
    assert "analytics.export_data" in codes(ANALYST)


def test_a_models_new_permission_reaches_the_roles_when_they_are_applied_again():
    model = Permission.objects.get(codename="view_campaign").content_type
    Permission.objects.create(content_type=model, codename="view_later", name="Later")

    roles_apply()
    roles_apply()  # idempotent

    assert "campaigns.view_later" in codes(ANALYST)
    assert "campaigns.view_later" in codes(ADMIN)
    assert Group.objects.filter(name__in=[MARKETER, ANALYST, ADMIN]).count() == 3


# --- In the admin -----------------------------------------------------------------------------


def test_an_analyst_sees_a_campaign_but_cannot_change_it(client, campaign):
    client.force_login(member("ann", ANALYST))
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])

    page = client.get(url)
    posted = client.post(url, campaign_form(name="Renamed"))

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert posted.status_code == 403
    campaign.refresh_from_db()
    assert campaign.name == "Welcome journey"
    assert not member("al", ANALYST).has_perm("campaigns.change_campaign")


def test_an_analyst_has_no_add_button_on_campaigns(client, campaign):
    client.force_login(member("ann", ANALYST))

    page = client.get(reverse("admin:campaigns_campaign_changelist"))

    assert page.status_code == 200
    assert reverse("admin:campaigns_campaign_add") not in page.content.decode()


@pytest.mark.parametrize("group", [ANALYST, MARKETER])
def test_api_keys_are_hidden_from_analysts_and_marketers(client, group):
    ApiKey.objects.create(name="backend", prefix="abcd1234", hashed_secret="x")
    client.force_login(member("pat", group))

    listing = client.get(reverse("admin:journeyhub_apikey_changelist"))
    index = client.get(reverse("admin:index"))

    assert listing.status_code == 403
    assert index.status_code == 200
    assert reverse("admin:journeyhub_apikey_changelist") not in index.content.decode()
    assert "API keys" not in index.content.decode()


def test_an_analyst_may_export():
    analyst = member("ann", ANALYST)

    assert analyst.has_perm("analytics.export_data")


def test_a_marketer_edits_a_campaign(client, campaign):
    client.force_login(member("mo", MARKETER))
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])

    assert 'name="_save"' in client.get(url).content.decode()
    response = client.post(url, campaign_form(name="Renamed"))

    assert response.status_code == 302, response.content.decode()[:2000]
    campaign.refresh_from_db()
    assert campaign.name == "Renamed"


def test_a_marketer_may_not_export(client):
    client.force_login(member("mo", MARKETER))

    assert client.get(reverse("admin:analytics_export")).status_code == 403


def test_the_admin_group_sees_api_keys(client):
    client.force_login(member("root", ADMIN))

    assert client.get(reverse("admin:journeyhub_apikey_changelist")).status_code == 200
