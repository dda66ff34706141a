from datetime import time

import pytest

from audiences.models import Event
from audiences.services import customer_token_mint, customer_upsert
from notifications.models import DeliveryBatch, DeliverySettings, Template
from notifications.providers import locmem
from notifications.sending.batch_send import batch_send
from notifications.services import device_register, send_create, send_fan_out

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(settings):
    """Ana got a push; returns her API client and the token in its payload."""
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    locmem.outbox.clear()
    DeliverySettings.objects.update_or_create(
        pk=1, defaults={"quiet_hours_start": time(0), "quiet_hours_end": time(0)})
    ana, _ = customer_upsert(external_id="ana")
    device_register(customer=ana, kind="fcm", token="fcm-token-of-ana-0123456789abcdef",
                    platform="android")
    send = send_create(template=Template.objects.create(name="Hi", title="Hi", body="There"),
                       customer_ids=[ana.pk])
    send_fan_out(send_id=send.pk)
    batch_send(batch_id=DeliveryBatch.objects.get(send=send).pk)
    yield ana, locmem.outbox[0].data["jh_token"]
    locmem.outbox.clear()


def report(client, customer, action, token):
    return client.post(f"/api/v1/me/deliveries/{action}/", {"token": token},
                       content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {customer_token_mint(customer=customer)}")


def test_an_open_is_recorded_once_with_an_event(client, delivered):
    ana, token = delivered

    first = report(client, ana, "opened", token)
    again = report(client, ana, "opened", token)

    assert first.status_code == 200 and first.json()["opened"] is True
    assert again.status_code == 409 and "Already reported" in again.json()["detail"]
    assert Event.objects.filter(customer=ana, name="notification_opened").count() == 1


def test_received_then_opened(client, delivered):
    ana, token = delivered

    assert report(client, ana, "received", token).status_code == 200
    assert report(client, ana, "opened", token).status_code == 200
    assert report(client, ana, "received", token).status_code == 409


def test_a_forged_token_is_refused(client, delivered):
    ana, token = delivered
    delivery_id = token.split(":")[0]

    response = report(client, ana, "opened", f"{delivery_id}:forgedsignature")

    assert response.status_code == 400
    assert "not valid" in str(response.json()["errors"]["token"])


def test_another_customers_token_is_refused(client, delivered):
    _ana, token = delivered
    ben, _ = customer_upsert(external_id="ben")

    response = report(client, ben, "opened", token)

    assert response.status_code == 400
    assert not Event.objects.filter(name="notification_opened").exists()


def test_unknown_fields_and_missing_auth(client, delivered):
    ana, token = delivered
    bearer = f"Bearer {customer_token_mint(customer=ana)}"

    extra = client.post("/api/v1/me/deliveries/opened/", {"token": token, "x": 1},
                        content_type="application/json", HTTP_AUTHORIZATION=bearer)
    anonymous = client.post("/api/v1/me/deliveries/opened/", {"token": token},
                            content_type="application/json")

    assert extra.status_code == 400 and "x" in extra.json()["errors"]
    assert anonymous.status_code == 401
