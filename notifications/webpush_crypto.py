"""The receiving side of Web Push encryption (RFC 8291, aes128gcm): what a browser does.

Used where JourneyHub itself plays the browser: the local demo sink and the tests. Keys travel
as unpadded base64url, as browsers hand them out in ``PushSubscription.toJSON()``."""

import base64
import os

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

AUTH_SECRET_BYTES = 16  # RFC 8291 section 3.2


def webpush_subscription_keys() -> tuple[str, str, str]:
    """A fresh subscription's (private_key, p256dh, auth); the first stays with the receiver."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    private_raw = private_key.private_numbers().private_value.to_bytes(32, "big")
    public_raw = private_key.public_key().public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint
    )
    return _b64(private_raw), _b64(public_raw), _b64(os.urandom(AUTH_SECRET_BYTES))


def webpush_decrypt(body: bytes, private_key: str, auth_secret: str) -> bytes:
    """Decrypt an aes128gcm push message body with the subscription's private key and auth
    secret (base64url, as returned by webpush_subscription_keys)."""
    key = ec.derive_private_key(int.from_bytes(_unb64(private_key), "big"), ec.SECP256R1())
    return http_ece.decrypt(body, private_key=key, auth_secret=_unb64(auth_secret),
                            version="aes128gcm")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
