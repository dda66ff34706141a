"""How the API writes JSON: DRF's renderer, with the deep-safe fallback of journeyhub.json_deep
for a stored value nested deeper than the C encoder's recursion allows."""

from rest_framework import renderers
from rest_framework.utils import encoders

from journeyhub.json_deep import DeepSafeEncoderMixin


class ApiJSONEncoder(DeepSafeEncoderMixin, encoders.JSONEncoder):
    pass


class JSONRenderer(renderers.JSONRenderer):
    encoder_class = ApiJSONEncoder
