"""The customers batch endpoint: a brand backend brings up to BATCH_MAX customers with their
devices in one request."""

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from audiences.api.views import BrandApiView
from journeyhub.api_errors import error_responses
from journeyhub.models import ApiKey
from onboarding.api import serializers as s
from onboarding.services import customers_batch_upsert

BATCH_DESCRIPTION = (
    f"1 to {s.BATCH_MAX} customers, each created or updated as `PUT /customers/{{id}}/` would "
    "(only the fields sent change; attributes merge key by key, null deletes a key), with "
    "their devices registered as the app would. Each item is reported by index: created, "
    "updated, unchanged or invalid (with field errors; it is skipped, the rest are saved). "
    "Sending the same batch again changes nothing and reports every item unchanged."
)


class CustomerBatchView(BrandApiView):
    """Up to BATCH_MAX customers with their devices (no customer is called "batch": see
    audiences.models.EXTERNAL_ID_RESERVED)."""

    required_scopes = {"POST": ApiKey.Scope.CUSTOMERS_WRITE}

    @extend_schema(
        tags=["customers"], summary="Create or update a batch of customers and their devices",
        description=BATCH_DESCRIPTION, request=s.CustomerBatchSerializer,
        responses={200: s.CustomerBatchResultSerializer,
                   **error_responses(400, 401, 403, 413, 415, 429)},
    )
    def post(self, request):
        return Response({"results": customers_batch_upsert(items=_batch_items(request.data))})


def _batch_items(data) -> list:
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": [
            f"Expected an object with a list of 1 to {s.BATCH_MAX} customers."]})
    errors = {name: ["Unknown field."] for name in data.keys() - {"customers"}}
    customers = data.get("customers")
    if not isinstance(customers, list) or not 1 <= len(customers) <= s.BATCH_MAX:
        errors["customers"] = [f"Send a list of 1 to {s.BATCH_MAX} customers."]
    if errors:
        raise ValidationError(errors)
    return customers
