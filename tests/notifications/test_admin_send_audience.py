"""A send's page names its audience: the segment, or the count and the first external ids,
never a wall of internal ids."""

import pytest
from django.urls import reverse

from audiences.models import Customer, Segment
from notifications.models import Send, Template

pytestmark = pytest.mark.django_db


@pytest.fixture
def template():
    return Template.objects.create(name="Hello", title="Hi", body="Hello")


def test_an_explicit_audience_shows_a_count_and_the_first_external_ids(admin_client, template):
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"user-{n:03d}", bucket=n) for n in range(597))
    send = Send.objects.create(template=template, customer_ids=[c.pk for c in customers])

    page = admin_client.get(reverse("admin:notifications_send_change", args=[send.pk]))

    text = page.content.decode()
    assert "597 customers: user-000, user-001," in text
    assert "user-009, and 587 more" in text and "user-010" not in text
    assert str(customers[300].pk) not in text.split("597 customers")[1].split("</div>")[0]


def test_a_segment_audience_links_to_the_segment(admin_client, template):
    segment = Segment.objects.create(name="Lisbon", key="lisbon", rules={"all": []})
    send = Send.objects.create(template=template, segment=segment)

    text = admin_client.get(reverse("admin:notifications_send_change", args=[send.pk])) \
        .content.decode()

    url = reverse("admin:audiences_segment_change", args=[segment.pk])
    assert f'Segment <a href="{url}">Lisbon</a>' in text
