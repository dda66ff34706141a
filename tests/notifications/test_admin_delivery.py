from datetime import time

import pytest
from django.urls import reverse

from audiences.services import customer_upsert
from notifications.models import Delivery, DeliverySettings, Send, Template
from notifications.services import device_register
from tests.notifications.sending_kit import template_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def template():
    return Template.objects.create(name="Hello", title="Hi {{ customer.first_name }}",
                                   body="Welcome")




def test_a_template_that_cannot_render_is_refused_with_the_reason(admin_client):
    response = admin_client.post(reverse("admin:notifications_template_add"),
                                 template_form(body="{% if %}"))

    assert response.status_code == 200
    assert "This template cannot be sent" in response.content.decode()
    assert not Template.objects.exists()


def test_a_template_over_the_payload_limit_is_refused(admin_client):
    response = admin_client.post(reverse("admin:notifications_template_add"),
                                 template_form(body="x" * 5000))

    assert "payload is" in response.content.decode()
    assert "over its 4,096-byte limit" in response.content.decode()
    assert not Template.objects.exists()


def test_a_broken_translation_is_a_form_error_on_that_row(admin_client):
    response = admin_client.post(reverse("admin:notifications_template_add"), template_form(**{
        "translations-TOTAL_FORMS": "1", "translations-0-locale": "pt",
        "translations-0-title": "Olá", "translations-0-body": "{{ customer.first_name|nosuch }}",
    }))

    assert "[pt]" in response.content.decode()
    assert not Template.objects.exists()


def test_a_good_template_is_saved(admin_client):
    response = admin_client.post(reverse("admin:notifications_template_add"), template_form(
        title="Hi {{ customer.first_name|default:'there' }}"))

    assert response.status_code == 302
    assert Template.objects.get().name == "Offer"


def test_send_test_to_a_customer_queues_a_cap_exempt_send(admin_client, template):
    ana, _ = customer_upsert(external_id="ana")
    url = reverse("admin:notifications_template_send_test", args=[template.pk])

    assert admin_client.get(url).status_code == 200
    unknown = admin_client.post(url, {"customer": "nobody"})
    assert "No customer with external id" in unknown.content.decode()
    response = admin_client.post(url, {"customer": "ana"})

    send = Send.objects.get()
    assert response.status_code == 302
    assert send.customer_ids == [ana.pk] and send.cap_exempt and not send.respect_quiet_hours


def test_a_send_created_in_the_admin_runs_through_the_service(admin_client, template):
    customer_upsert(external_id="ana")
    url = reverse("admin:notifications_send_add")

    both = admin_client.post(url, {"template": template.pk, "customer_external_ids": ""})
    assert "Choose a segment or list customers" in both.content.decode()
    bad = admin_client.post(url, {"template": template.pk, "customer_external_ids": "ana, ghost"})
    assert "Unknown customers: ghost" in bad.content.decode()
    good = admin_client.post(url, {"template": template.pk, "customer_external_ids": "ana",
                                   "respect_quiet_hours": "on", "source": "admin"})

    assert good.status_code == 302
    assert Send.objects.get().source == "admin"


def test_an_admin_send_takes_its_own_quiet_window_and_a_local_time(admin_client, template):
    customer_upsert(external_id="ana")
    url = reverse("admin:notifications_send_add")
    form = {"template": template.pk, "customer_external_ids": "ana", "respect_quiet_hours": "on"}

    half = admin_client.post(url, {**form, "quiet_hours_start": "22:00"})
    assert "needs both its start and its end" in half.content.decode()
    good = admin_client.post(url, {**form, "quiet_hours_start": "22:00",
                                   "quiet_hours_end": "07:30", "local_time": "09:00",
                                   "local_time_passed": "skip"})

    assert good.status_code == 302
    send = Send.objects.get()
    assert (send.quiet_hours_start, send.quiet_hours_end, send.local_time,
            send.local_time_passed) == (time(22), time(7, 30), time(9), "skip")


def test_send_page_shows_progress_and_a_paused_sends_error(admin_client, template, settings):
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    DeliverySettings.objects.update_or_create(
        pk=1, defaults={"quiet_hours_start": time(0), "quiet_hours_end": time(0)})
    ana, _ = customer_upsert(external_id="ana")
    device_register(customer=ana, kind="fcm", token="t", platform="android")
    send = Send.objects.create(template=template, customer_ids=[ana.pk], status="paused",
                               error="Paused: the fcm provider refused our credentials")
    Delivery.objects.create(send=send, customer=ana, status="skipped", reason="opted_out")

    page = admin_client.get(reverse("admin:notifications_send_change", args=[send.pk]))

    html = page.content.decode()
    assert "refused our credentials" in html
    assert "opted_out: 1" in html


def test_delivery_settings_open_as_a_single_page(admin_client):
    response = admin_client.get(reverse("admin:notifications_deliverysettings_changelist"))

    assert response.status_code == 302
    assert response.url == reverse("admin:notifications_deliverysettings_change", args=[1])
