"""The template page's preview: the message as an iPhone, an Android phone and a browser show
it, rendered on the server with the page's own CSS (nothing fetched from elsewhere)."""

import re

import pytest
from django.urls import reverse

from notifications.previews import template_preview
from notifications.services import template_save

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipped():
    return template_save(fields={
        "name": "Shipped", "title": "{{ customer.first_name }}, it is on its way",
        "body": "Arrives at 19:40. " + "Lots of detail. " * 20,
        "image_url": "https://cdn.example.test/van.jpg", "badge_mode": "set", "badge": 2,
        "android_channel_id": "orders",
        "actions": [{"id": "track", "title": "Track order"}, {"id": "call", "title": "Call"}],
    })


def test_the_page_shows_the_message_on_three_platforms(admin_client, shipped):
    html = admin_client.get(reverse("admin:notifications_template_change",
                                    args=[shipped.pk])).content.decode()

    for text in ("iPhone", "Android", "Browser", "Alexandra, it is on its way", "Track order",
                 "van.jpg", "channel orders", 'class="jh-badge">2<'):
        assert text in html, text
    assert html.count('class="jh-button">Track order<') == 3
    # Offline: the only stylesheet the preview adds is this server's.
    assert "/static/notifications/previews.css" in html
    assert not re.search(r'(href|src)="https?://', html)


def test_each_platform_cuts_the_body_where_it_would(shipped):
    preview = template_preview(shipped)

    by_platform = {p.platform: p for p in preview.platforms}
    assert len(by_platform["android"].body) == 90 and by_platform["android"].body.endswith("…")
    assert len(by_platform["ios"].body) == 178
    assert [size for _, size, _ in preview.sizes] and all(
        0 < size <= limit for _, size, limit in preview.sizes)


def test_a_preview_for_a_named_customer_and_an_unknown_one(admin_client, shipped,
                                                            customer_factory):
    customer_factory("rui-7", first_name="Rui")
    url = reverse("admin:notifications_template_change", args=[shipped.pk])

    assert "Rui, it is on its way" in admin_client.get(url, {"preview_customer": "rui-7"})\
        .content.decode()
    assert "No customer with external id" in admin_client.get(
        url, {"preview_customer": "nobody"}).content.decode()


def test_a_silent_template_previews_its_data(admin_client):
    silent = template_save(fields={"name": "Sync", "kind": "silent",
                                   "data": {"sync": "{{ customer.external_id }}"}})
    html = admin_client.get(reverse("admin:notifications_template_change",
                                    args=[silent.pk])).content.decode()
    assert "A silent push shows nothing" in html and "sync: sample" in html
