"""The admin's menu grouped by task, with the plumbing in an Operations section for superusers
only; /admin/ leads to the admin at the root."""

import re

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from analytics.roles import ANALYST, MARKETER

pytestmark = pytest.mark.django_db
PLUMBING = ("Clocked", "Crontabs", "Intervals", "Solar events", "Delivery batches",
            "Step sends", "APNS devices", "FCM devices", "WNS devices", "WebPush devices")


def member(name: str, *groups: str) -> User:
    user = User.objects.create_user(name, is_staff=True)
    user.groups.set(Group.objects.filter(name__in=groups))
    return user


def sections(page: str) -> list[str]:
    return re.findall(r'class="section"[^>]*>([^<]+)</a>', page)


def test_the_menu_is_grouped_by_task(client):
    client.force_login(User.objects.create_superuser("root"))
    page = client.get(reverse("admin:index")).content.decode()

    assert sections(page)[:5] == ["Campaigns", "Messages", "Customers", "Access", "Operations"]
    operations = page.split('class="app-operations')[1].split("</table>")[0]
    for name in PLUMBING:
        assert f">{name}</a>" in operations


@pytest.mark.parametrize("group", [MARKETER, ANALYST])
def test_the_plumbing_is_hidden_from_marketers_and_analysts(client, group):
    client.force_login(member("staff", group))
    page = client.get(reverse("admin:index")).content.decode()

    assert "Operations" not in sections(page)
    for name in PLUMBING:
        assert f">{name}</a>" not in page
    assert ">Campaigns</a>" in page


def test_the_sidebar_uses_the_same_groups(client):
    client.force_login(member("mia", MARKETER))
    page = client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    sidebar = page.split('id="nav-sidebar"')[1].split("</nav>")[0]
    assert ">Campaigns</a>" in sidebar and ">Customers</a>" in sidebar
    assert "Step sends" not in sidebar


def test_an_operations_app_page_is_empty_for_others(client):
    client.force_login(member("ann", ANALYST))
    response = client.get(reverse("admin:app_list", args=["django_celery_beat"]))
    assert response.status_code == 404


@pytest.mark.parametrize(("path", "target"), [
    ("/admin/", "/"), ("/admin/campaigns/campaign/?q=x", "/campaigns/campaign/?q=x"),
    ("/admin//evil.example/", "/evil.example/"), ("/admin/\\\\evil.example", "/evil.example"),
])
def test_admin_paths_lead_to_the_admin_at_the_root(client, path, target):
    client.force_login(User.objects.create_superuser("root"))
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == target


def test_admin_leads_to_the_home_page_once_logged_in(client):
    client.force_login(User.objects.create_superuser("root"))
    response = client.get("/admin/", follow=True)
    assert response.status_code == 200
    assert 'id="jh-home"' in response.content.decode()
