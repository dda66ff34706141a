"""Referral codes for many new customers at once, in the alphabet of audiences' own codes."""

import base64
import os

from audiences.models import REFERRAL_CODE_ALPHABET

CODE_LENGTH = 10  # 50 random bits: two million customers collide about once in 500 imports
# base32 draws from A-Z2-7; the same 32 positions in our alphabet (no 0/O, 1/I).
_BASE32 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_OURS = bytes.maketrans(_BASE32, REFERRAL_CODE_ALPHABET.encode())


def referral_codes(count: int) -> list[str]:
    """``count`` random codes, about a microsecond each (secrets.choice takes ten)."""
    raw = base64.b32encode(os.urandom(count * CODE_LENGTH * 5 // 8 + 5)).translate(_TO_OURS)
    return [raw[i * CODE_LENGTH:(i + 1) * CODE_LENGTH].decode() for i in range(count)]


def referral_code() -> str:
    return referral_codes(1)[0]
