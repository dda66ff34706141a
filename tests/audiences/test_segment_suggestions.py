"""What the visual rules editor offers: known event names, attribute keys and their common
values, topics, segment keys and stages; served with the segment page and per attribute."""

import json

import pytest
from django.urls import reverse

from audiences.models import Segment, Topic
from audiences.services import customer_upsert, event_track
from audiences.suggestions import attribute_keys, attribute_values, event_names, rule_suggestions

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    for name, attributes in (("ana", {"city": "Lisbon", "plan": "gold", "age": 31}),
                             ("ben", {"city": "Lisbon", "vip": True}),
                             ("cy", {"city": "Porto", "tags": ["a", "b"]})):
        customer, _ = customer_upsert(external_id=name, attributes=attributes)
        event_track(customer=customer, name="purchase")
    event_track(customer=customer, name="app_open")


def test_event_names_are_the_known_ones(people):
    assert event_names() == ["app_open", "purchase"]


def test_attribute_keys_commonest_first_and_their_values(people):
    assert attribute_keys()[0] == "city"
    assert set(attribute_keys()) == {"city", "plan", "age", "vip", "tags"}
    assert attribute_values("city") == ["Lisbon", "Porto"]
    assert attribute_values("tags") == []  # lists are not offered as values
    assert attribute_values("age") == [31]


def test_everything_at_once(people):
    Topic.objects.get_or_create(key="offers", defaults={"name": "Offers"})
    Segment.objects.create(name="Everyone", key="everyone", rules={"all": []})

    offered = rule_suggestions()

    assert "offers" in offered["topics"] and offered["segments"] == ["everyone"]
    assert offered["stages"][0] == {"value": "awareness", "label": "Awareness"}
    assert "purchase" in offered["events"]


def test_the_segment_page_carries_the_editor_config(admin_client, people):
    page = admin_client.get(reverse("admin:audiences_segment_add")).content.decode()

    config = json.loads(page.split('id="jh-rules-config" type="application/json">')[1]
                        .split("</script>")[0])
    assert config["attribute_ops"][0] == "eq" and "locale" in config["profile_fields"]
    assert config["suggestions"]["events"] == ["app_open", "purchase"]
    assert "audiences/segment_builder.js" in page


def test_values_of_one_attribute_on_demand(admin_client, people):
    url = reverse("admin:audiences_segment_suggest")
    assert admin_client.get(url, {"attribute": "city"}).json() == {"values": ["Lisbon", "Porto"]}
    assert admin_client.get(url).status_code == 400


def test_suggestions_need_the_view_permission(client, django_user_model):
    client.force_login(django_user_model.objects.create(username="vic", is_staff=True))
    response = client.get(reverse("admin:audiences_segment_suggest"), {"attribute": "city"})
    assert response.status_code == 403
