"""Customer, consent, topic and event endpoints: validate the input, call one service, answer.

Brand endpoints (API key) name customers by external id; app endpoints (customer token) act on
``request.auth``, the token's customer, and accept no customer id at all."""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Exists, OuterRef
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from audiences.api import serializers as s
from audiences.api.auth import AppApiView, CustomerTokenAuthentication
from audiences.api.event_items import BATCH_MAX, parse_event_items
from audiences.models import Customer, Topic, TopicOptOut
from audiences.services import (
    EventInput,
    consent_set,
    customer_token_mint,
    customer_upsert,
    events_track,
    referral_link_opened_record,
)
from audiences.services_identity import customer_erase, customer_erasure_find
from journeyhub.api_auth import ApiKeyAuthentication, HasScope
from journeyhub.api_errors import StrictJSONParser, error_responses, refuse_body
from journeyhub.models import ApiKey

TRACK_ATTEMPTS = 2  # a lost race on the event id index: the second try sees a duplicate
EXTERNAL_ID = OpenApiParameter(
    "external_id", str, OpenApiParameter.PATH,
    description="The customer's id in your systems, percent-encoded: any text, `/` as `%2F`, "
                "`%` as `%25`, a space as `%20`. It may not end in /token, /merge or /export.",
)
ERASE_DESCRIPTION = (
    "Deletes the customer's profile, consent, segment memberships, devices and events, and "
    "removes them from their deliveries, enrollments, conversions and stage transitions, "
    "which stay (without anyone) so reports keep their counts. Records the erasure: when, by "
    "which key, how many rows of each kind, and a keyed hash of the external id. Asked again "
    "for the same id, answers `already_erased` with the first record."
)


class BrandApiView(APIView):
    """Base of the endpoints a brand backend calls with an API key. Subclasses declare
    ``required_scopes`` per method (see HasScope)."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [permissions.IsAuthenticated, HasScope]
    parser_classes = [StrictJSONParser]
    required_scopes: dict[str, str] = {}


def customer_or_404(external_id: str) -> Customer:
    customer = None
    if not s.external_id_errors(external_id):  # an id we could never store is simply unknown
        customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        raise NotFound(f"No customer with external id {external_id!r}.")
    return customer


class CustomerView(BrandApiView):
    required_scopes = {"GET": ApiKey.Scope.CUSTOMERS_READ, "PUT": ApiKey.Scope.CUSTOMERS_WRITE,
                       "DELETE": ApiKey.Scope.CUSTOMERS_WRITE}

    @extend_schema(
        tags=["customers"], summary="Read a customer", parameters=[EXTERNAL_ID],
        responses={200: s.CustomerSerializer, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request, external_id):
        return Response(s.CustomerSerializer(customer_or_404(external_id)).data)

    @extend_schema(
        tags=["customers"], summary="Create or update a customer", parameters=[EXTERNAL_ID],
        description="Only the fields sent change. Answers 201 when the customer was created.",
        request=s.CustomerUpsertSerializer,
        responses={
            200: OpenApiResponse(s.CustomerSerializer, description="Updated."),
            201: OpenApiResponse(s.CustomerSerializer, description="Created."),
            **error_responses(400, 401, 403, 413, 415, 429),
        },
    )
    def put(self, request, external_id):
        if errors := s.external_id_errors(external_id):
            raise ValidationError({"external_id": errors})
        serializer = s.CustomerUpsertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer, created = customer_upsert(external_id=external_id, **serializer.validated_data)
        return Response(s.CustomerSerializer(customer).data, status=201 if created else 200)

    @extend_schema(
        tags=["customers"], summary="Erase a customer (right to erasure)",
        parameters=[EXTERNAL_ID], description=ERASE_DESCRIPTION,
        responses={200: s.CustomerErasureSerializer, **error_responses(401, 403, 404, 429)},
    )
    def delete(self, request, external_id):
        refuse_body(request)
        customer = None
        if not s.external_id_errors(external_id):
            customer = Customer.objects.filter(external_id=external_id).first()
        if customer is None:
            return Response(_erasure_body(_earlier_erasure(external_id), already=True))
        api_key = request.auth
        erasure = customer_erase(customer=customer,
                                 erased_by=f"API key {api_key.name} ({api_key.prefix})")
        return Response(_erasure_body(erasure, already=False))


def _earlier_erasure(external_id: str):
    erasure = None if s.external_id_errors(external_id) else customer_erasure_find(external_id)
    if erasure is None:
        raise NotFound(f"No customer with external id {external_id!r}.")
    return erasure


def _erasure_body(erasure, *, already: bool) -> dict:
    return s.CustomerErasureSerializer({
        "status": "already_erased" if already else "erased",
        "erased_at": erasure.erased_at, "removed": erasure.removed,
    }).data


class CustomerTokenView(BrandApiView):
    required_scopes = {"POST": ApiKey.Scope.TOKENS_WRITE}

    @extend_schema(
        tags=["customers"], summary="Mint a customer token for the app", parameters=[EXTERNAL_ID],
        request=None,
        responses={201: s.CustomerTokenSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def post(self, request, external_id):
        refuse_body(request)
        customer = customer_or_404(external_id)
        token = customer_token_mint(customer=customer)
        # The token's own timestamp is taken a moment earlier: it expires no later than this.
        expires_at = timezone.now() + timedelta(seconds=settings.CUSTOMER_TOKEN_MAX_AGE_SECONDS)
        body = s.CustomerTokenSerializer({"token": token, "expires_at": expires_at}).data
        return Response(body, status=201)


def _events_track(items: list[EventInput]):
    """events_track, once more if a concurrent request stored the same event id first (a client
    retrying a request that timed out): the unique index refuses the insert, and the second
    try finds the stored event and reports a duplicate."""
    for attempt in range(TRACK_ATTEMPTS):
        try:
            return events_track(items=items)
        except IntegrityError:
            if attempt == TRACK_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _track_one(request, serializer_class, customer: Customer | None = None) -> Response:
    now = timezone.now()
    serializer = serializer_class(data=request.data, context={"now": now})
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    item = EventInput(
        name=data["name"], properties=data["properties"],
        occurred_at=data.get("occurred_at", now), client_event_id=data.get("event_id"),
        customer_external_id=data.get("customer_id"), customer=customer,
    )
    result = _events_track([item])[0]
    return Response({"status": result.status, "id": result.event.pk},
                    status=201 if result.status == "created" else 200)


def _track_batch(request, customer: Customer | None = None) -> Response:
    items = _batch_items(request.data)
    valid, invalid = parse_event_items(items, now=timezone.now(), customer=customer)
    tracked = _events_track([item for _, item in valid]) if valid else []
    results: list[dict | None] = [None] * len(items)  # every index is filled below
    for (index, _), result in zip(valid, tracked, strict=True):
        results[index] = {"index": index, "status": result.status, "id": result.event.pk}
    for index, errors in invalid.items():
        results[index] = {"index": index, "status": "invalid", "errors": errors}
    return Response({"results": results})


def _batch_items(data) -> list:
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": [
            f"Expected an object with a list of 1 to {BATCH_MAX} events."]})
    errors = {name: ["Unknown field."] for name in data.keys() - {"events"}}
    events = data.get("events")
    if not isinstance(events, list) or not 1 <= len(events) <= BATCH_MAX:
        errors["events"] = [f"Send a list of 1 to {BATCH_MAX} events."]
    if errors:
        raise ValidationError(errors)
    return events


BATCH_DESCRIPTION = (
    f"1 to {BATCH_MAX} events. Each item is reported by index: created, duplicate (its "
    "event_id was seen before) or invalid (with field errors; it is skipped, the rest are "
    "stored)."
)
EVENT_RESPONSES = {
    201: OpenApiResponse(s.EventCreatedSerializer, description="Stored."),
    200: OpenApiResponse(s.EventCreatedSerializer, description="Duplicate event_id: not stored "
                                                               "again."),
}


class EventView(BrandApiView):
    required_scopes = {"POST": ApiKey.Scope.EVENTS_WRITE}

    @extend_schema(
        tags=["events"], summary="Track an event", request=s.EventSerializer,
        responses={**EVENT_RESPONSES, **error_responses(400, 401, 403, 413, 415, 429)},
    )
    def post(self, request):
        return _track_one(request, s.EventSerializer)


class EventBatchView(BrandApiView):
    required_scopes = {"POST": ApiKey.Scope.EVENTS_WRITE}

    @extend_schema(
        tags=["events"], summary="Track a batch of events", description=BATCH_DESCRIPTION,
        request=s.EventBatchSerializer,
        responses={200: s.EventBatchResultSerializer,
                   **error_responses(400, 401, 403, 413, 415, 429)},
    )
    def post(self, request):
        return _track_batch(request)


class TopicListView(APIView):
    authentication_classes = [ApiKeyAuthentication, CustomerTokenAuthentication]
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [StrictJSONParser]

    @extend_schema(
        tags=["consent"], summary="List the notification topics",
        responses={200: s.TopicSerializer(many=True), **error_responses(401, 429)},
    )
    def get(self, request):
        return Response(s.TopicSerializer(Topic.objects.order_by("key"), many=True).data)


class MeView(AppApiView):
    @extend_schema(
        tags=["app"], summary="Read my profile",
        responses={200: s.MyProfileSerializer, **error_responses(401, 429)},
    )
    def get(self, request):
        return Response(s.MyProfileSerializer(request.auth).data)

    @extend_schema(
        tags=["app"], summary="Update my profile", request=s.CustomerProfileUpdateSerializer,
        responses={200: s.MyProfileSerializer, **error_responses(400, 401, 413, 415, 429)},
    )
    def patch(self, request):
        serializer = s.CustomerProfileUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer, _ = customer_upsert(
            external_id=request.auth.external_id, **serializer.validated_data
        )
        return Response(s.MyProfileSerializer(customer).data)


def _consent_of(customer: Customer) -> dict:
    opted_out = TopicOptOut.objects.filter(customer=customer, topic=OuterRef("pk"))
    topics = Topic.objects.annotate(opted_out=Exists(opted_out)).order_by("key")
    return s.ConsentSerializer({
        "push_opt_out": customer.push_opt_out,
        "topics": [{"key": t.key, "name": t.name, "opted_in": not t.opted_out} for t in topics],
    }).data


class MeConsentView(AppApiView):
    @extend_schema(
        tags=["app"], summary="Read my notification consent",
        responses={200: s.ConsentSerializer, **error_responses(401, 429)},
    )
    def get(self, request):
        return Response(_consent_of(request.auth))

    @extend_schema(
        tags=["app"], summary="Replace my notification consent",
        request=s.ConsentUpdateSerializer,
        responses={200: s.ConsentSerializer, **error_responses(400, 401, 413, 415, 429)},
    )
    def put(self, request):
        serializer = s.ConsentUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        consent_set(customer=request.auth, **serializer.validated_data)
        return Response(_consent_of(request.auth))


class MyEventView(AppApiView):
    @extend_schema(
        tags=["app"], summary="Track one of my events", request=s.MyEventSerializer,
        responses={**EVENT_RESPONSES, **error_responses(400, 401, 413, 415, 429)},
    )
    def post(self, request):
        return _track_one(request, s.MyEventSerializer, customer=request.auth)


class MyEventBatchView(AppApiView):
    @extend_schema(
        tags=["app"], summary="Track a batch of my events", description=BATCH_DESCRIPTION,
        request=s.MyEventBatchSerializer,
        responses={200: s.EventBatchResultSerializer, **error_responses(400, 401, 413, 415, 429)},
    )
    def post(self, request):
        return _track_batch(request, customer=request.auth)


class MyReferralOpenedView(AppApiView):
    @extend_schema(
        tags=["app"], summary="Report that I opened a referral link",
        description="The app (the customer's own token, anonymous or known) reports the code "
                    "of the referral link it was opened with: a referral_link_opened event on "
                    "the link's owner, once per opener. An unknown code, or the customer's own, "
                    "is a 400 on code.",
        request=s.ReferralOpenedSerializer,
        responses={201: s.ReferralOpenedResultSerializer,
                   200: OpenApiResponse(s.ReferralOpenedResultSerializer,
                                        description="Reported before: not recorded again."),
                   **error_responses(400, 401, 413, 415, 429)},
    )
    def post(self, request):
        serializer = s.ReferralOpenedSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = referral_link_opened_record(customer=request.auth,
                                             referral_code=serializer.validated_data["code"])
        body = {"status": result.status, "referrer": result.event.customer.external_id}
        return Response(body, status=201 if result.status == "created" else 200)
