"""API key authentication for brand backends, scope permissions and per-principal throttling."""

from rest_framework.throttling import SimpleRateThrottle


class PrincipalRateThrottle(SimpleRateThrottle):
    """Placeholder; replaced by the API work."""

    def allow_request(self, request, view):
        return True
