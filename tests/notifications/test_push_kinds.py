"""Every kind of push, sent through the whole pipeline to each provider's loopback fake: FCM
over HTTP v1, Web Push decrypted by the push service, APNs at the aioapns client boundary (its
HTTP/2 gateway cannot be redirected). Payloads are asserted field by field."""

import itertools
import json

import aioapns
import pytest
from aioapns import PushType
from django.core.exceptions import ValidationError

from audiences.models import Event
from notifications.models import Delivery, Send
from notifications.sending.batch_send import batch_send
from notifications.services import (
    delivery_track,
    device_register,
    send_create,
    send_fan_out,
    template_save,
)
from notifications.tracking import tracking_token
from tests.fakes.fcm_server import FakeFcm
from tests.fakes.webpush_receiver import WebPushReceiver
from tests.notifications.sending_kit import quiet_hours_off, run
from tests.notifications.test_providers_apns import CONFIG as APNS_CONFIG
from tests.notifications.test_providers_apns import FakeApnsClient
from tests.notifications.test_providers_webpush import VAPID_PUBLIC, webpush_apps

pytestmark = pytest.mark.django_db
APNS_TOKEN = "a1b2" * 16
FCM_TOKEN = "fcm-token-of-ana-" + "x" * 40
LIMIT = 4096


@pytest.fixture(scope="module")
def fcm(tmp_path_factory):
    with FakeFcm() as server:
        server.credentials_file = server.write_service_account(
            tmp_path_factory.mktemp("fcm") / "service-account.json")
        yield server


@pytest.fixture(scope="module")
def receiver():
    with WebPushReceiver(vapid_public_key=VAPID_PUBLIC) as service:
        yield service


@pytest.fixture
def apns(monkeypatch):
    """The aioapns clients the APNs provider makes (one per environment)."""
    clients = []

    def client(**options):
        clients.append(FakeApnsClient(**options))
        return clients[-1]

    monkeypatch.setattr(aioapns, "APNs", client)
    return clients


@pytest.fixture(autouse=True)
def providers(fcm, receiver, apns, settings):
    fcm.reset()
    receiver.reset()
    settings.PUSH_BACKEND = "notifications.providers.real.ProviderBackend"
    settings.PUSH_APPS = {
        "fcm": {"default": {"credentials_file": str(fcm.credentials_file),
                            "project_id": fcm.project_id, "endpoint": fcm.url}},
        "apns": {"default": APNS_CONFIG}, **webpush_apps(),
    }
    quiet_hours_off()


@pytest.fixture
def ana(customer_factory, receiver):
    person = customer_factory("ana-1", first_name="Ana")
    device_register(customer=person, kind="apns", token=APNS_TOKEN, platform="ios")
    device_register(customer=person, kind="fcm", token=FCM_TOKEN, platform="android")
    subscription = receiver.subscribe()
    device_register(customer=person, kind="webpush", token=subscription["endpoint"],
                    platform="web", p256dh=subscription["p256dh"], auth=subscription["auth"])
    return person


def send_to(template, *customers) -> dict[str, Delivery]:
    """Send the template now; the delivery rows by provider."""
    send = run(send_create(template=template, customer_ids=[c.pk for c in customers]))
    return {row.kind: row for row in Delivery.objects.filter(send=send)}


def tracked(delivery: Delivery) -> dict:
    return {"delivery_id": str(delivery.pk), "jh_token": tracking_token(delivery.pk)}


def received(apns, fcm, receiver):
    [request] = [r for client in apns for r in client.requests]
    [fcm_message] = fcm.received
    [web] = receiver.received
    return request, fcm_message["message"], web


# --- Silent / data push --------------------------------------------------------------------


def test_a_silent_push_is_data_only_on_every_provider(ana, apns, fcm, receiver):
    silent = template_save(fields={
        "name": "Sync orders", "kind": "silent",
        "data": {"sync": "orders", "who": "{{ customer.external_id }}"},
    })

    rows = send_to(silent, ana)

    assert {row.status for row in rows.values()} == {"sent"}
    request, message, web = received(apns, fcm, receiver)
    data = {"sync": "orders", "who": "ana-1"}
    # APNs: a background push, at priority 5, with content-available and nothing to show.
    assert (request.push_type, request.priority) == (PushType.BACKGROUND, 5)
    assert request.message == {**data, **tracked(rows["apns"]),
                               "aps": {"content-available": 1}}
    # FCM: data only (no notification block), the right headers for iOS through FCM.
    assert "notification" not in message
    assert message["data"] == {**data, **tracked(rows["fcm"])}
    assert message["android"] == {"priority": "normal", "ttl": "86400s",
                                  "collapse_key": f"jh-{rows['fcm'].pk}"}
    assert message["apns"]["headers"]["apns-push-type"] == "background"
    assert message["apns"]["headers"]["apns-priority"] == "5"
    assert message["apns"]["payload"] == {"aps": {"content-available": 1}}
    assert "notification" not in message["webpush"]
    # Web Push: the service worker gets the data and the kind, no title to show.
    assert web["payload"] == {"kind": "silent", "tag": f"jh-{rows['webpush'].pk}",
                              "data": {**data, **tracked(rows["webpush"])}}
    assert web["headers"]["Urgency"] == "normal"


def test_a_high_priority_silent_push_wakes_android_but_stays_at_5_on_apns(ana, apns, fcm,
                                                                          receiver):
    silent = template_save(fields={"name": "Wake", "kind": "silent", "priority": "high",
                                   "data": {"refresh": "1"}})

    send_to(silent, ana)

    request, message, _ = received(apns, fcm, receiver)
    assert request.priority == 5
    assert message["android"]["priority"] == "high"
    assert message["apns"]["headers"]["apns-priority"] == "5"


def test_a_silent_send_neither_counts_against_nor_waits_for_the_cap(ana):
    silent = template_save(fields={"name": "Sync", "kind": "silent", "data": {"s": "1"}})
    assert send_create(template=silent, customer_ids=[ana.pk]).cap_exempt


# --- Badge, sound, grouping, interruption level --------------------------------------------


def test_badge_sound_thread_channel_interruption_and_relevance(ana, apns, fcm, receiver):
    order = template_save(fields={
        "name": "Order ready", "title": "Your order is ready", "body": "Table 4",
        "priority": "high", "badge_mode": "set", "badge": 3, "sound": "chime.caf",
        "thread_id": "orders", "android_channel_id": "orders",
        "interruption_level": "time-sensitive", "relevance_score": 0.8,
    })

    rows = send_to(order, ana)

    request, message, web = received(apns, fcm, receiver)
    assert (request.push_type, request.priority) == (PushType.ALERT, 10)
    assert request.message == {
        **tracked(rows["apns"]),
        "aps": {"alert": {"title": "Your order is ready", "body": "Table 4"}, "badge": 3,
                "sound": "chime.caf", "thread-id": "orders",
                "interruption-level": "time-sensitive", "relevance-score": 0.8},
    }
    assert message["notification"] == {"title": "Your order is ready", "body": "Table 4"}
    assert message["android"]["notification"] == {
        "tag": f"jh-{rows['fcm'].pk}", "channel_id": "orders", "sound": "chime.caf",
        "notification_count": 3}
    assert message["apns"]["payload"] == {"aps": {
        "badge": 3, "sound": "chime.caf", "thread-id": "orders",
        "interruption-level": "time-sensitive", "relevance-score": 0.8}}
    assert web["payload"] == {
        "title": "Your order is ready", "body": "Table 4", "image": "", "url": "",
        "tag": f"jh-{rows['webpush'].pk}", "data": tracked(rows["webpush"]),
        "badge_count": 3, "badge_increment": False, "require_interaction": True,
    }


def test_a_badge_increment_is_left_to_the_app(ana, apns, fcm, receiver):
    unread = template_save(fields={"name": "New message", "title": "Rui", "body": "Hi!",
                                   "badge_mode": "increment", "badge": 1, "sound": "default"})

    rows = send_to(unread, ana)

    request, message, web = received(apns, fcm, receiver)
    assert request.message == {
        **tracked(rows["apns"]), "jh_badge_increment": 1,
        "aps": {"alert": {"title": "Rui", "body": "Hi!"}, "mutable-content": 1,
                "sound": "default"},
    }
    assert message["data"] == {**tracked(rows["fcm"]), "jh_badge_increment": "1"}
    assert "notification_count" not in message["android"]["notification"]
    assert message["apns"]["payload"] == {"aps": {"sound": "default", "mutable-content": 1}}
    assert (web["payload"]["badge_count"], web["payload"]["badge_increment"]) == (1, True)


# --- Action buttons and images ---------------------------------------------------------------

ACTIONS = [{"id": "track", "title": "Track order", "url": "app://orders/981"},
           {"id": "call", "title": "Call the driver", "url": "tel:+351210000000"}]


def test_action_buttons_reach_every_provider(ana, apns, fcm, receiver):
    shipped = template_save(fields={"name": "Shipped", "title": "On its way",
                                    "body": "Arrives at 19:40", "actions": ACTIONS})

    rows = send_to(shipped, ana)

    request, message, web = received(apns, fcm, receiver)
    assert request.message == {
        **tracked(rows["apns"]), "jh_actions": ACTIONS,
        "aps": {"alert": {"title": "On its way", "body": "Arrives at 19:40"},
                "category": "jh.track.call"},
    }
    assert message["data"] == {**tracked(rows["fcm"]), "jh_actions": json.dumps(ACTIONS)}
    assert message["apns"]["payload"] == {"aps": {"category": "jh.track.call"}}
    assert web["payload"]["actions"] == [
        {"action": "track", "title": "Track order", "url": "app://orders/981"},
        {"action": "call", "title": "Call the driver", "url": "tel:+351210000000"}]


def test_a_tapped_action_is_an_open_with_its_id(ana, apns, fcm, receiver):
    shipped = template_save(fields={"name": "Shipped", "title": "On its way", "body": "Soon",
                                    "actions": ACTIONS, "apns_category": "ORDER_SHIPPED"})
    rows = send_to(shipped, ana)
    request, _, _ = received(apns, fcm, receiver)
    assert request.message["aps"]["category"] == "ORDER_SHIPPED"

    delivery = delivery_track(token=request.message["jh_token"], action="opened",
                              customer=ana, action_id="track")

    assert delivery.opened_action == "track" and delivery.opened_at is not None
    event = Event.objects.get(customer=ana, name="notification_opened")
    assert event.properties["action_id"] == "track"
    with pytest.raises(ValidationError, match="no button"):
        delivery_track(token=tracking_token(rows["fcm"].pk), action="opened", customer=ana,
                       action_id="dance")


def test_an_image_reaches_every_provider(ana, apns, fcm, receiver):
    dish = template_save(fields={"name": "Dish of the day", "title": "Today", "body": "Risotto",
                                 "image_url": "https://cdn.example.test/risotto.jpg"})

    rows = send_to(dish, ana)

    request, message, web = received(apns, fcm, receiver)
    assert request.message == {
        **tracked(rows["apns"]), "image_url": "https://cdn.example.test/risotto.jpg",
        "aps": {"alert": {"title": "Today", "body": "Risotto"}, "mutable-content": 1},
    }
    assert message["notification"]["image"] == "https://cdn.example.test/risotto.jpg"
    assert web["payload"]["image"] == "https://cdn.example.test/risotto.jpg"


# --- Validation at save ----------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "field", "problem"), [
    ({"kind": "silent", "title": "Hi", "data": {"a": "1"}}, "title", "shows nothing"),
    ({"kind": "silent"}, "data", "carries data"),
    ({"title": " ", "body": ""}, "body", "a title or a body"),
    ({"kind": "silent", "data": {"a": "1"}, "actions": ACTIONS}, "actions", "shows nothing"),
    ({"title": "Hi", "badge_mode": "set"}, "badge", "badge mode and a number"),
    ({"title": "Hi", "badge": 2}, "badge", "badge mode and a number"),
    ({"title": "Hi", "actions": ACTIONS * 2}, "actions", "at most 3"),
    ({"title": "Hi", "actions": [{"id": "a b", "title": "x"}]}, "actions", "id is 1 to 32"),
    ({"title": "Hi", "actions": [{"id": "a", "title": ""}]}, "actions", "title is text"),
    ({"title": "Hi", "actions": [{"id": "a", "title": "x"}, {"id": "a", "title": "y"}]},
     "actions", "its own id"),
    ({"title": "Hi", "relevance_score": 1.5}, "relevance_score", "less than or equal to 1"),
])
def test_each_kind_is_validated_at_save(fields, field, problem):
    with pytest.raises(ValidationError) as refused:
        template_save(fields={"name": "Bad", **fields})

    assert problem in " ".join(refused.value.message_dict[field])


# --- The exact payload size ----------------------------------------------------------------


def test_a_4015_character_body_is_refused_at_save_with_the_size_each_provider_gets():
    with pytest.raises(ValidationError) as refused:
        template_save(fields={"name": "Long", "title": "Hi", "body": "x" * 4015})

    problems = " ".join(refused.value.message_dict["template"])
    assert "the APNs payload is 4,1" in problems and "over its 4,096-byte limit" in problems
    assert "the FCM payload is" in problems and "the Web Push payload is" in problems


def test_the_save_check_is_exact_to_the_byte():
    """The longest body a template may have, and one character more (all ASCII: a byte)."""
    names = itertools.count()

    def refusal(length: int) -> str:
        try:
            template_save(fields={"name": f"Body {next(names)}", "title": "Hi",
                                  "body": "x" * length})
        except ValidationError as error:
            return " ".join(error.message_dict["template"])
        return ""

    low, high = 3000, 4096  # 3000 fits, 4096 cannot
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if not refusal(middle) else (low, middle)

    assert not refusal(low)
    assert "payload is 4,097 bytes" in refusal(high)


def apns_bytes(message: dict) -> int:
    """What aioapns sends for a payload: json.dumps with its default separators."""
    return len(json.dumps(message, ensure_ascii=False).encode())


def test_at_send_an_apns_payload_of_4096_bytes_goes_and_one_of_4097_is_skipped(
        customer_factory, apns):
    """The limit at send is measured on each message with the delivery's own id and token."""
    padded = template_save(fields={"name": "Padded", "title": "T",
                                   "body": "{{ customer.attributes.pad }}"})
    at, over = customer_factory("at-limit"), customer_factory("over-limit")
    device_register(customer=at, kind="apns", token="a1" * 32, platform="ios")
    device_register(customer=over, kind="apns", token="b1" * 32, platform="ios")
    send = send_create(template=padded, customer_ids=[at.pk, over.pk])
    send_fan_out(send_id=send.pk)
    for person, size in ((at, LIMIT), (over, LIMIT + 1)):
        row = Delivery.objects.get(send=send, customer=person)
        empty = apns_bytes({**tracked(row), "aps": {"alert": {"title": "T", "body": ""}}})
        person.attributes = {"pad": "p" * (size - empty)}
        person.save()

    for batch in send.batches.all():
        batch_send(batch_id=batch.pk)

    rows = {row.customer_id: row for row in Delivery.objects.filter(send=send)}
    [request] = [r for client in apns for r in client.requests]
    assert apns_bytes(request.message) == LIMIT
    assert rows[at.pk].status == "sent"
    assert (rows[over.pk].status, rows[over.pk].reason) == ("skipped", "render_error")
    assert rows[over.pk].error == "the APNs payload is 4,097 bytes, over its 4,096-byte limit"


def test_at_send_a_web_push_of_4096_encrypted_bytes_goes_and_one_byte_more_is_skipped(
        customer_factory, receiver):
    padded = template_save(fields={"name": "Padded", "title": "T",
                                   "body": "{{ customer.attributes.pad }}"})
    people = [customer_factory("at-limit"), customer_factory("over-limit")]
    for person in people:
        subscription = receiver.subscribe()
        device_register(customer=person, kind="webpush", token=subscription["endpoint"],
                        platform="web", p256dh=subscription["p256dh"], auth=subscription["auth"])
    send = send_create(template=padded, customer_ids=[p.pk for p in people])
    send_fan_out(send_id=send.pk)
    for person, size in zip(people, (LIMIT, LIMIT + 1), strict=True):
        row = Delivery.objects.get(send=send, customer=person)
        empty = json.dumps({"title": "T", "body": "", "image": "", "url": "",
                            "tag": f"jh-{row.pk}", "data": tracked(row)},
                           separators=(",", ":")).encode()
        # aes128gcm: salt 16, record size 4, key id length 1, key 65; delimiter 1, tag 16.
        person.attributes = {"pad": "p" * (size - len(empty) - 103)}
        person.save()

    for batch in send.batches.all():
        batch_send(batch_id=batch.pk)

    [web] = receiver.received
    assert web["body_bytes"] == LIMIT  # what the push service got, and accepted
    statuses = dict(Delivery.objects.filter(send=send).values_list("customer_id", "reason"))
    assert statuses == {people[0].pk: "", people[1].pk: "render_error"}
    assert Send.objects.get(pk=send.pk).status == "done"
