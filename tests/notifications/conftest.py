import json

import pytest

from tests.fakes.fcm_server import FakeFcm

FCM_LATENCY_SECONDS = 0.05  # FCM's round trip, roughly


@pytest.fixture
def workers_fcm(tmp_path):
    """A loopback FCM for worker processes: they read its credentials from
    tmp_path/push-apps.json (PUSH_APPS_FILE)."""
    with FakeFcm(latency=FCM_LATENCY_SECONDS) as fake:
        credentials = fake.write_service_account(tmp_path / "service-account.json")
        apps = {"fcm": {"default": {"credentials_file": str(credentials), "endpoint": fake.url}}}
        (tmp_path / "push-apps.json").write_text(json.dumps(apps))
        yield fake
