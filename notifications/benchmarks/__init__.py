"""Benchmarks of the delivery engine (python manage.py bench NAME --size N): fanout, send (per
platform) and broadcast. Other apps' benchmarks build on data_set_ensure."""

from .broadcast import broadcast
from .fanout import data_set_ensure, fanout
from .send import send

__all__ = ["broadcast", "data_set_ensure", "fanout", "send"]
