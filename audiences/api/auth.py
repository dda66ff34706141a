"""Customer tokens: how an app authenticates as one customer (``Authorization: Bearer <token>``).

The brand backend mints the token (POST /api/v1/customers/{id}/token/) and hands it to its app.
The token is signed, not stored: it names the customer and expires after
CUSTOMER_TOKEN_MAX_AGE_SECONDS; deleting the customer ends it at once."""

from django.conf import settings
from django.core import signing
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.views import APIView

from audiences.models import Customer, CustomerMerge
from audiences.services import customer_token_read
from journeyhub.api_auth import Principal, authorization_credentials
from journeyhub.api_errors import StrictJSONParser

BEARER_KEYWORD = "Bearer"


class CustomerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        token = authorization_credentials(request, BEARER_KEYWORD)
        if token is None:
            return None
        customer_pk = self._customer_pk(token)
        customer = Customer.objects.filter(pk=customer_pk).first()
        if customer is None and CustomerMerge.objects.filter(
                anonymous_customer_id=customer_pk).exists():
            raise exceptions.AuthenticationFailed(
                "This customer was merged into another one at login: use the token the "
                "backend got for that one.", code="customer_merged"
            )
        if customer is None:
            raise exceptions.AuthenticationFailed(
                "The customer of this token no longer exists.", code="customer_deleted"
            )
        return Principal("customer_token", customer.pk), customer

    def authenticate_header(self, request):
        return BEARER_KEYWORD

    @staticmethod
    def _customer_pk(token: str) -> int:
        try:
            return customer_token_read(token, max_age=settings.CUSTOMER_TOKEN_MAX_AGE_SECONDS)
        except signing.SignatureExpired:
            raise exceptions.AuthenticationFailed(
                "This customer token has expired.", code="token_expired"
            )
        except signing.BadSignature:
            raise exceptions.AuthenticationFailed(
                "This customer token is invalid.", code="token_invalid"
            )


class CustomerTokenScheme(OpenApiAuthenticationExtension):
    target_class = CustomerTokenAuthentication
    name = "CustomerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http", "scheme": "bearer",
            "description": "A customer token minted by the brand backend: "
                           "`Authorization: Bearer <token>`.",
        }


class AppApiView(APIView):
    """Base of the endpoints an app calls with a customer token; ``request.auth`` is the
    customer, and every object these views touch must belong to them."""

    authentication_classes = [CustomerTokenAuthentication]
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [StrictJSONParser]
