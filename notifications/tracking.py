"""Signed delivery tokens: every payload carries one, and the app reports receipt and opens
with it. Signed, so nobody can report on a delivery they did not get."""

from django.core import signing

TRACKING_SALT = "journeyhub.delivery"


def tracking_token(delivery_id: int) -> str:
    return signing.Signer(salt=TRACKING_SALT).sign(str(delivery_id))


def tracking_token_read(token: str) -> int:
    """The delivery id inside a token; raises signing.BadSignature if forged."""
    return int(signing.Signer(salt=TRACKING_SALT).unsign(token))
