"""Identity endpoints for the brand backend: merge an anonymous customer into a known one at
login (optionally exchanging the app's token), erase a customer, export a customer's data.

A merge needs the backend's API key: the app cannot merge itself into an arbitrary customer.
It proves which anonymous customer it holds by its token (``anonymous_token``), the backend
vouches for who logged in, and hands the app the token it gets back."""

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.response import Response

from audiences.access import access_export
from audiences.api import serializers as s
from audiences.api.access import CustomerDataSerializer
from audiences.api.views import EXTERNAL_ID, BrandApiView, customer_or_404
from audiences.models import Customer
from audiences.services import customer_token_mint, customer_token_read
from audiences.services_identity import MergedElsewhere, MergeResult, customer_merge
from journeyhub.api_errors import ErrorSerializer, error_responses
from journeyhub.models import ApiKey

MERGE_DESCRIPTION = (
    "Moves the anonymous customer's devices, events, consent, segment memberships, "
    "enrollments and delivery history to the customer in the path (created if new), then "
    "deletes the anonymous customer. On conflicts the known customer wins (attributes, "
    "profile); opt-outs of either stand. Stage rules run on the moved events. Asked again, "
    "the same merge answers `already_merged` with the first result."
)


class MergedElsewhereError(APIException):
    status_code = 409
    default_code = "merged_elsewhere"


class CustomerMergeView(BrandApiView):
    required_scopes = {"POST": ApiKey.Scope.CUSTOMERS_WRITE}

    @extend_schema(
        tags=["customers"], summary="Merge an anonymous customer into this one (at login)",
        description=MERGE_DESCRIPTION, parameters=[EXTERNAL_ID],
        request=s.CustomerMergeSerializer,
        responses={
            200: s.CustomerMergeResultSerializer,
            **error_responses(400, 401, 403, 413, 415, 429),
            409: OpenApiResponse(ErrorSerializer, description="That anonymous customer was "
                                                              "merged into another customer."),
        },
    )
    def post(self, request, external_id):
        if errors := s.external_id_errors(external_id):
            raise ValidationError({"external_id": errors})
        body = s.CustomerMergeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data["issue_token"] and not request.auth.has_scope(ApiKey.Scope.TOKENS_WRITE):
            raise PermissionDenied("This API key lacks the scope 'tokens:write' (issue_token).")
        result = _merge(external_id, data)
        return Response(_merge_body(result, issue_token=data["issue_token"]))


def _merge(external_id: str, data: dict) -> MergeResult:
    field = "anonymous_id" if "anonymous_id" in data else "anonymous_token"
    target = {"anonymous_external_id": data["anonymous_id"]} if field == "anonymous_id" else {
        "anonymous_pk": _token_customer(data["anonymous_token"])}
    if data.get("anonymous_id") == external_id:
        raise ValidationError({field: ["A customer cannot be merged into itself."]})
    try:
        return customer_merge(external_id=external_id, **target)
    except DjangoValidationError as error:  # the token names the known customer itself
        raise ValidationError({field: error.messages})
    except Customer.DoesNotExist:
        raise ValidationError({field: ["No customer has this id, and none was merged under "
                                       "it."]})
    except MergedElsewhere as error:
        raise MergedElsewhereError(str(error))


def _token_customer(token: str) -> int:
    try:
        return customer_token_read(token, max_age=settings.CUSTOMER_TOKEN_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise ValidationError({"anonymous_token": ["This customer token has expired."]})
    except signing.BadSignature:
        raise ValidationError({"anonymous_token": ["This customer token is invalid."]})


def _merge_body(result: MergeResult, *, issue_token: bool) -> dict:
    merge = result.merge
    customer = Customer.objects.get(pk=merge.customer_id)  # as the stage rules left it
    body = {
        "status": "already_merged" if result.already_merged else "merged",
        "anonymous_id": merge.anonymous_external_id, "merged_at": merge.merged_at,
        "moved": merge.moved, "customer": customer,
    }
    if issue_token:
        body["token"] = customer_token_mint(customer=customer)
        body["expires_at"] = timezone.now() + timedelta(
            seconds=settings.CUSTOMER_TOKEN_MAX_AGE_SECONDS)
    return s.CustomerMergeResultSerializer(body).data


class CustomerExportView(BrandApiView):
    required_scopes = {"GET": ApiKey.Scope.CUSTOMERS_READ}

    @extend_schema(
        tags=["customers"], summary="Export a customer's data (right of access)",
        description="Everything JourneyHub keeps about the customer, as one JSON object of "
                    "sections, streamed with one row per line. Push tokens are masked.",
        parameters=[EXTERNAL_ID],
        responses={200: CustomerDataSerializer, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request, external_id):
        customer = customer_or_404(external_id)
        return StreamingHttpResponse(access_export(customer), content_type="application/json")
