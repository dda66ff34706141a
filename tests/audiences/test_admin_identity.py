"""The customer admin's data rights: the erase action (after a confirmation page), the data
export link, the erasure records, and segment keys."""

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from audiences.admin.identity import ERASE_AT_ONCE
from audiences.models import Customer, CustomerErasure, Segment
from audiences.services import segment_create
from tests.audiences.identity_kit import person, track

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:audiences_customer_changelist")


def erase_post(client, customers, *, follow: bool = False, **extra):
    return client.post(CHANGELIST, {"action": "erase_selected",
                                    "_selected_action": [c.pk for c in customers], **extra},
                       follow=follow)


def test_the_action_asks_first_and_erases_once_confirmed(admin_client, admin_user):
    ana, ben = person("ana-1", first_name="Ana"), person("ben-2")
    track(ana, "app_open")

    asked = erase_post(admin_client, [ana])
    assert asked.status_code == 200
    assert "cannot be undone" in asked.content.decode() and "ana-1" in asked.content.decode()
    assert Customer.objects.filter(pk=ana.pk).exists()

    done = erase_post(admin_client, [ana], confirmed="yes", follow=True)

    assert "Erased 1 customer" in done.content.decode()
    assert list(Customer.objects.values_list("external_id", flat=True)) == [ben.external_id]
    erasure = CustomerErasure.objects.get()
    assert erasure.erased_by == f"admin user {admin_user.username}"
    assert erasure.removed["events"] == 1


def test_too_many_at_once_is_refused(admin_client):
    customers = [person(f"c-{n}") for n in range(ERASE_AT_ONCE + 1)]

    response = erase_post(admin_client, customers, confirmed="yes", follow=True)

    assert f"at most {ERASE_AT_ONCE}" in response.content.decode()
    assert Customer.objects.count() == ERASE_AT_ONCE + 1


def test_staff_without_delete_permission_cannot_erase(client):
    ana = person("ana-1")
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(viewer)

    erase_post(client, [ana], confirmed="yes")

    assert Customer.objects.filter(pk=ana.pk).exists()


def test_the_customer_page_links_the_data_export_which_downloads_json(admin_client):
    ana = person("ana-1", first_name="Ana")
    track(ana, "app_open")
    url = reverse("admin:audiences_customer_data_export", args=[ana.pk])

    page = admin_client.get(reverse("admin:audiences_customer_change", args=[ana.pk]))
    download = admin_client.get(url)

    assert url in page.content.decode()
    assert download["Content-Disposition"] == f'attachment; filename="customer-{ana.pk}.json"'
    data = json.loads(b"".join(download.streaming_content))
    assert data["customer"]["first_name"] == "Ana"
    assert [event["name"] for event in data["events"]] == ["app_open"]


def test_the_export_needs_the_change_permission(client):
    ana = person("ana-1")
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(viewer)

    response = client.get(reverse("admin:audiences_customer_data_export", args=[ana.pk]))

    assert response.status_code == 403


def test_an_erasure_is_found_by_the_external_id_it_hashes(admin_client):
    customer_erase_url = reverse("admin:audiences_customererasure_changelist")
    erase_post(admin_client, [person("ana-1")], confirmed="yes")
    erase_post(admin_client, [person("ben-2")], confirmed="yes")

    found = admin_client.get(customer_erase_url, {"q": "ana-1"})

    assert found.context["cl"].result_count == 1


def test_a_segments_key_is_edited_and_made_from_the_name_when_empty(admin_client):
    add = reverse("admin:audiences_segment_add")
    body = {"name": "Lisbon foodies", "key": "", "description": "", "kind": "dynamic",
            "rules": '{"all": []}'}

    admin_client.post(add, body)
    admin_client.post(add, {**body, "name": "Porto", "key": "porto-people"})

    assert dict(Segment.objects.values_list("name", "key")) == {
        "Lisbon foodies": "lisbon-foodies", "Porto": "porto-people"}


def test_a_segments_key_that_rules_use_cannot_change_in_the_admin(admin_client):
    inner = segment_create(name="Inner", key="inner", rules={"all": []})
    segment_create(name="Outer", key="outer", rules={"segment": "inner"})

    response = admin_client.post(
        reverse("admin:audiences_segment_change", args=[inner.pk]),
        {"name": "Inner", "key": "renamed", "description": "", "kind": "dynamic",
         "rules": '{"all": []}'})

    assert response.status_code == 200
    assert "name this segment by its key" in response.content.decode()
    assert Segment.objects.get(pk=inner.pk).key == "inner"
