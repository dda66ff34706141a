"""API key authentication for brand backends, scope permissions and per-principal throttling.

A request is made by a *principal*: an API key (a brand backend) or a customer token (an app).
Authentication classes set ``request.user`` to a Principal and ``request.auth`` to the ApiKey or
Customer row, so throttling and permissions need not know which kind it is."""

import hmac
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from journeyhub.models import API_KEY_PREFIX_LENGTH, ApiKey

API_KEY_KEYWORD = "Api-Key"
# last_used_at is a hint for people auditing keys, not a log: one write a minute per key at most,
# so a busy backend does not turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling. ``kind`` names the throttle rate in DEFAULT_THROTTLE_RATES."""

    kind: str  # "api_key" or "customer_token"
    pk: int
    is_authenticated: bool = True  # what DRF's IsAuthenticated asks of request.user


def authorization_credentials(request, keyword: str) -> str | None:
    """The credentials after ``keyword`` in the Authorization header; None when the header names
    another scheme (so another authentication class may try)."""
    header = authentication.get_authorization_header(request)
    scheme, _, credentials = header.partition(b" ")
    if scheme.lower() != keyword.lower().encode():
        return None
    try:
        credentials = credentials.decode("ascii").strip()
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed("Credentials must be ASCII.", code="malformed")
    if not credentials or " " in credentials:
        raise exceptions.AuthenticationFailed(
            f"Send 'Authorization: {keyword} <credentials>'.", code="malformed"
        )
    return credentials


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Api-Key jh_<prefix>_<secret>``: one indexed query by prefix, then a
    constant-time comparison of SHA-256 hashes."""

    def authenticate(self, request):
        key = authorization_credentials(request, API_KEY_KEYWORD)
        if key is None:
            return None
        api_key = self._find(key)
        now = timezone.now()
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key was revoked.", code="key_revoked")
        if not api_key.is_usable(now):
            raise exceptions.AuthenticationFailed("This API key has expired.", code="key_expired")
        self._touch(api_key, now)
        return Principal("api_key", api_key.pk), api_key

    def authenticate_header(self, request):
        return API_KEY_KEYWORD

    @staticmethod
    def _find(key: str) -> ApiKey:
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != "jh" or len(parts[1]) != API_KEY_PREFIX_LENGTH:
            raise exceptions.AuthenticationFailed("Malformed API key.", code="malformed")
        api_key = ApiKey.objects.filter(prefix=parts[1]).first()
        if api_key is None or not hmac.compare_digest(
            api_key.hashed_secret, ApiKey.hash_secret(key)
        ):
            raise exceptions.AuthenticationFailed("Unknown API key.", code="key_unknown")
        return api_key

    @staticmethod
    def _touch(api_key: ApiKey, now) -> None:
        if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now


class HasScope(permissions.BasePermission):
    """The API key holds the scope the view requires for this method.

    Views declare ``required_scopes = {"GET": "customers:read", "PUT": "customers:write"}``; a
    tuple of scopes means any one of them will do (``("segments:read", "campaigns")``). A
    method the view handles but does not list is refused, so a forgotten entry fails closed."""

    message = "This API key lacks the required scope."

    def has_permission(self, request, view) -> bool:
        method = "GET" if request.method == "HEAD" else request.method
        if method == "OPTIONS" or not hasattr(view, method.lower()):
            return True  # metadata, or a 405 from the view
        scopes = view.required_scopes.get(method)
        if not isinstance(request.auth, ApiKey) or scopes is None:
            self.message = "This endpoint needs an API key."
            return False
        scopes = (scopes,) if isinstance(scopes, str) else tuple(scopes)
        if not any(request.auth.has_scope(scope) for scope in scopes):
            alternatives = "".join(f" (or '{scope}')" for scope in scopes[1:])
            self.message = f"This API key lacks the scope '{scopes[0]}'{alternatives}."
            return False
        return True


class PrincipalRateThrottle(SimpleRateThrottle):
    """One request budget per principal: per API key or per customer, whichever IP it comes
    from. The rate is looked up per request under the principal's kind, so tests can override
    REST_FRAMEWORK settings. Unauthenticated requests are refused before throttling."""

    def __init__(self):
        pass  # the rate depends on the request; see allow_request

    def allow_request(self, request, view):
        principal = request.user
        if not isinstance(principal, Principal):
            return True
        self.scope = principal.kind
        self.rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "A brand backend's key: `Authorization: Api-Key jh_<prefix>_<secret>`.",
        }


# Django permission codename prefix per HTTP method, as DjangoModelPermissions maps them.
METHOD_PERMISSIONS = {"GET": "view", "POST": "add", "PUT": "change", "PATCH": "change",
                      "DELETE": "delete"}


class StaffOrScope(permissions.BasePermission):
    """An API key: the view's scope for the method (HasScope). A session: an active staff
    user with ``<app>.<perm>_<model>`` for the view's ``perm_model`` ("campaigns.campaign");
    a view's ``action_permission`` (e.g. "change" for launch) overrides the method's."""

    message = "Staff only: log in to the admin, or use an API key with the required scope."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            scope_check = HasScope()
            allowed = scope_check.has_permission(request, view)
            self.message = scope_check.message
            return allowed
        user = request.user
        if not (user and user.is_active and user.is_staff):
            return False
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        perm = getattr(view, "action_permission", None) or METHOD_PERMISSIONS.get(method)
        app_label, model = view.perm_model.split(".")
        if perm is None or not user.has_perm(f"{app_label}.{perm}_{model}"):
            self.message = f"You lack the permission to {perm or 'do this to'} {model}s."
            return False
        return True


# What a view managing things for staff declares (APIView cannot be imported here: DRF's
# settings import this module for the throttle):
#     authentication_classes = STAFF_AUTHENTICATION
#     permission_classes = [permissions.IsAuthenticated, StaffOrScope]
# The key comes first, so the schema lists it first and a request carrying both is judged by
# its key; sessions are the admin's, CSRF-checked.
STAFF_AUTHENTICATION = [ApiKeyAuthentication, authentication.SessionAuthentication]
