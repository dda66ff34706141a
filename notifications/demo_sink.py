"""The demo Web Push sink: in `make run`, demo web devices subscribe to an endpoint on this very
server, so a send goes through the real Web Push code (pywebpush, aes128gcm, VAPID) and staff can
read what arrived, decrypted, in the admin. No outside network is involved."""

import json
import secrets

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from push_notifications.models import WebPushDevice
from py_vapid import Vapid

from notifications.models import DemoInbox, DemoReceivedPush, Device
from notifications.providers.webpush import vapid_public_key
from notifications.webpush_crypto import webpush_decrypt, webpush_subscription_keys

MAX_PUSH_BYTES = 4096 + 256  # a push service refuses bigger bodies; so do we


def demo_vapid_ensure() -> dict:
    """The demo's VAPID key pair, made once and kept in settings.DEMO_VAPID_FILE."""
    path = settings.DEMO_VAPID_FILE
    if path.exists():
        return json.loads(path.read_text())
    vapid = Vapid()
    vapid.generate_keys()
    config = {
        "vapid_private_key": vapid.private_pem().decode(),
        "vapid_public_key": vapid_public_key(vapid),
        "vapid_subject": "mailto:demo@journeyhub.invalid",
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return config


def demo_endpoint(key: str) -> str:
    path = reverse("demo-webpush-sink", args=[key])
    return f"{settings.DEMO_BASE_URL.rstrip('/')}{path}"


@transaction.atomic
def demo_inboxes_attach(*, devices) -> int:
    """Give these Web Push devices a demo inbox: fresh real keys, endpoint on this server."""
    attached = 0
    for device in devices.filter(kind=Device.Kind.WEBPUSH, demo_inbox__isnull=True):
        private_key, p256dh, auth = webpush_subscription_keys()
        inbox = DemoInbox.objects.create(device=device, key=secrets.token_hex(16),
                                         private_key=private_key, auth_secret=auth)
        WebPushDevice.objects.filter(pk=device.webpush_id).update(
            registration_id=demo_endpoint(inbox.key), p256dh=p256dh, auth=auth
        )
        attached += 1
    return attached


@csrf_exempt
@require_POST
def demo_webpush_receive(request: HttpRequest, key: str) -> HttpResponse:
    inbox = DemoInbox.objects.filter(key=key).first()
    if inbox is None:
        return JsonResponse({"error": "unknown subscription"}, status=410)
    if not request.headers.get("Authorization", "").lower().startswith("vapid "):
        return JsonResponse({"error": "missing VAPID authorization"}, status=401)
    if len(request.body) > MAX_PUSH_BYTES:
        return JsonResponse({"error": "payload too large"}, status=413)
    try:
        plain = webpush_decrypt(request.body, inbox.private_key, inbox.auth_secret)
        payload = json.loads(plain)
    except Exception as error:  # noqa: BLE001 - any decryption or JSON failure is the sender's
        return JsonResponse({"error": f"cannot decrypt: {type(error).__name__}"}, status=400)
    if not isinstance(payload, dict):
        payload = {"body": str(payload)}
    _show(inbox, payload, ttl=request.headers.get("TTL", "")[:20],
          urgency=request.headers.get("Urgency", "")[:20])
    return HttpResponse(status=201)


def _show(inbox: DemoInbox, payload: dict, **headers) -> None:
    """What static/notifications/service-worker.js does in a browser: a notification with the
    tag of one already shown replaces it, so a message sent twice is seen once."""
    tag = str(payload.get("tag") or "")[:64]
    fields = {"title": str(payload.get("title", ""))[:500], "body": str(payload.get("body", "")),
              "payload": payload, "received_at": timezone.now(), **headers}
    if tag:
        DemoReceivedPush.objects.update_or_create(inbox=inbox, tag=tag, defaults=fields)
    else:
        DemoReceivedPush.objects.create(inbox=inbox, **fields)
