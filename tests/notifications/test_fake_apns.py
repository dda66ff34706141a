"""The loopback APNs gateway of the benchmarks speaks what aioapns speaks: our provider, with a
real aioapns client routed to it, gets Apple's answers over HTTP/2."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifications.providers import Outcome, ProviderAuthError, PushMessage
from notifications.providers.apns import ApnsProvider
from tests.fakes.apns_server import FakeApns, route_aioapns_to


@pytest.fixture
def gateway(tmp_path):
    with FakeApns(key_id="KEY1", team_id="TEAM1") as fake:
        undo = route_aioapns_to(fake.port)
        yield fake, fake.write_key(tmp_path / "AuthKey_KEY1.p8")
        undo()


def provider(key_file, key_id="KEY1") -> ApnsProvider:
    return ApnsProvider("default", {"key_file": str(key_file), "key_id": key_id,
                                    "team_id": "TEAM1", "topic": "com.example.shop"})


def push(token: str, delivery_id: int) -> PushMessage:
    return PushMessage(delivery_id=delivery_id, kind="apns", token=token, title="Hello",
                       body="Your cart misses you", collapse_key=f"jh-{delivery_id}")


def test_the_gateway_accepts_sound_requests_and_answers_dead_tokens(gateway):
    fake, key_file = gateway

    results = provider(key_file).send_batch([push("a1b2", 1), push("unregistered-9", 2)])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.DEAD_TOKEN]
    assert results[1].error_code == "Unregistered"
    assert (fake.summary()["total"], fake.summary()["refused"]) == (1, 1)


def test_the_gateway_refuses_a_provider_token_of_another_key(gateway):
    fake, key_file = gateway
    stranger = key_file.with_name("AuthKey_other.p8")
    stranger.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))

    with pytest.raises(ProviderAuthError, match="InvalidProviderToken"):
        provider(stranger).send_batch([push("a1b2", 1)])
    assert fake.summary()["total"] == 0
