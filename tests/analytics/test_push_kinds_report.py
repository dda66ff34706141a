"""The campaign report's section on kinds of push: sent by kind, opens per action button."""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from analytics.push_kinds import campaign_push_kinds
from notifications.models import Delivery, Send
from notifications.services import template_save
from tests.analytics.rollup_data import campaign_world

pytestmark = pytest.mark.django_db


def sent_rows(send: Send, customers, opened_actions):
    now = timezone.now()
    Delivery.objects.bulk_create([
        Delivery(send=send, customer=customer, kind="fcm", status=Delivery.Status.SENT,
                 sent_at=now, opened_at=now if action is not None else None,
                 opened_action=action or "")
        for customer, action in zip(customers, opened_actions, strict=True)])


def test_sent_by_kind_and_opens_per_button(customer_factory, client):
    campaign = campaign_world().campaign
    people = [customer_factory(f"kinds-{i}") for i in range(4)]
    buttons = template_save(fields={"name": "Buttons", "title": "Hi", "body": "x", "actions": [
        {"id": "track", "title": "Track"}, {"id": "later", "title": "Later"}]})
    silent = template_save(fields={"name": "Sync", "kind": "silent", "data": {"s": "1"}})
    alert_send = Send.objects.create(template=buttons, source=f"campaign:{campaign.pk}/step:1")
    silent_send = Send.objects.create(template=silent, source=f"campaign:{campaign.pk}/step:2")
    other = Send.objects.create(template=buttons, source="api")
    sent_rows(alert_send, people, ["track", "track", "", None])
    sent_rows(silent_send, people[:2], [None, None])
    sent_rows(other, people[:1], ["later"])

    kinds = campaign_push_kinds(campaign=campaign)

    assert kinds.sent_by_kind["alert"] >= 4 and kinds.sent_by_kind["silent"] == 2
    assert kinds.opened_by_kind["silent"] == 0
    assert kinds.opens_by_action == {"track": 2}

    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(user)
    html = client.get(reverse("analytics_reports:campaign", args=[campaign.pk])).content.decode()
    assert "Kinds of push and buttons" in html
    assert "<td>track</td><td>2</td>" in html and "<td>silent</td><td>2</td>" in html
