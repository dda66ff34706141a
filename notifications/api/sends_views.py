"""Send endpoints for brand backends (an API key with the ``sends`` scope): send a message now
to customers by external id or to a segment, follow its progress and its deliveries, pause,
resume or cancel it."""

from urllib.parse import urlencode

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from journeyhub.api_auth import ApiKeyAuthentication, HasScope
from journeyhub.api_errors import ErrorSerializer, StrictJSONParser, error_responses, refuse_body
from journeyhub.models import ApiKey
from notifications.api import sends_serializers as s
from notifications.models import Send
from notifications.selectors import send_deliveries_page, send_progress
from notifications.send_requests import (
    IdempotencyConflict,
    api_send_create,
    request_digest,
    unknown_external_ids,
)
from notifications.services import send_cancel, send_pause, send_resume

MAX_ID = 2**31 - 1
IDEMPOTENCY_KEY_MAX = 255
TAGS = ["sends"]
SEND_ID = OpenApiParameter("send_id", int, OpenApiParameter.PATH)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", {"type": "string", "maxLength": 255, "pattern": "^[ -~]*$"},
    OpenApiParameter.HEADER, required=False,
    description="Any text up to 255 printable ASCII characters, unique per send (a UUID). The "
                "same request again with the same key creates nothing and answers the send the "
                "first one made (200); the key with another body is a 409.",
)
CONFLICT = OpenApiResponse(ErrorSerializer, description="The Idempotency-Key was used with "
                                                        "another request body.")
STATE_CONFLICT = OpenApiResponse(ErrorSerializer,
                                 description="The send's status does not allow this.")


class IdempotencyKeyReused(exceptions.APIException):
    status_code = 409
    default_code = "idempotency_key_reused"


class SendStateConflict(exceptions.APIException):
    status_code = 409
    default_code = "invalid_state"


class SendApiView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [permissions.IsAuthenticated, HasScope]
    parser_classes = [StrictJSONParser]
    required_scopes = {"GET": ApiKey.Scope.SENDS, "POST": ApiKey.Scope.SENDS}


def _send_or_404(send_id: str) -> Send:
    pk = int(send_id) if send_id.isascii() and send_id.isdigit() else 0
    send = (Send.objects.select_related("template", "segment").filter(pk=pk).first()
            if 0 < pk <= MAX_ID else None)
    if send is None:
        raise exceptions.NotFound("No such send.")
    return send


def _document(send: Send, serializer=s.SendSerializer, **extra) -> dict:
    send.progress = send_progress(send)
    for name, value in extra.items():
        setattr(send, name, value)
    return serializer(send).data


def _idempotency_key(request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if len(key) > IDEMPOTENCY_KEY_MAX or not all(" " <= c <= "~" for c in key):
        raise exceptions.ValidationError({"Idempotency-Key": [
            f"At most {IDEMPOTENCY_KEY_MAX} printable ASCII characters."]})
    return key


class SendListView(SendApiView):
    @extend_schema(
        tags=TAGS, summary="Send a message now", parameters=[IDEMPOTENCY_KEY],
        request=s.SendCreateSerializer,
        description="A template by name or a message inline, to external ids or a segment, "
                    "with data the message reads as `{{ data.<key> }}`. 201 with the new send; "
                    "200 with the earlier one when the Idempotency-Key was used for the same "
                    "body. An unknown template or segment, or data that makes the message "
                    "unsendable (over the payload limit), is a 400 and creates nothing.",
        responses={201: s.SendCreatedSerializer, 200: s.SendCreatedSerializer, 409: CONFLICT,
                   **error_responses(400, 401, 403, 413, 415, 429)},
    )
    def post(self, request):
        key = _idempotency_key(request)
        serializer = s.SendCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        arguments = dict(serializer.validated_data)
        try:
            send, created = api_send_create(
                api_key=request.auth, idempotency_key=key, digest=request_digest(request.data),
                **arguments,
            )
        except IdempotencyConflict as conflict:
            raise IdempotencyKeyReused(str(conflict)) from conflict
        unknown = unknown_external_ids(arguments.get("external_ids") or [])
        return Response(_document(send, s.SendCreatedSerializer, unknown_external_ids=unknown),
                        status=201 if created else 200)


class SendDetailView(SendApiView):
    @extend_schema(
        tags=TAGS, summary="A send's progress", parameters=[SEND_ID],
        description="Status, rows by status and skipped or failed rows by reason.",
        responses={200: s.SendSerializer, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request, send_id):
        return Response(_document(_send_or_404(send_id)))


class SendDeliveriesView(SendApiView):
    @extend_schema(
        tags=TAGS, summary="A send's deliveries (keyset pages)",
        parameters=[SEND_ID, s.DeliveriesQuerySerializer],
        description="One row per (customer, device), or per customer skipped before a device "
                    "was chosen, oldest first. Follow `next` for the following page.",
        responses={200: s.SendDeliveryPageSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request, send_id):
        send = _send_or_404(send_id)
        query = s.DeliveriesQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        page = send_deliveries_page(send, **query.validated_data)
        next_url = None
        if len(page) == query.validated_data["limit"]:
            params = {**request.query_params.dict(), "after": page[-1]["id"]}
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode(params)}")
        return Response(s.SendDeliveryPageSerializer({"results": page, "next": next_url}).data)


def _action(name: str, service, summary: str, description: str):
    """A view class per action, each with its own documented ``post``."""

    @extend_schema(
        tags=TAGS, summary=summary, description=description, request=None,
        parameters=[SEND_ID], operation_id=f"sends_{name}",
        responses={200: s.SendSerializer, 409: STATE_CONFLICT,
                   **error_responses(400, 401, 403, 404, 429)},
    )
    def post(self, request, send_id):
        refuse_body(request)
        send = _send_or_404(send_id)
        try:
            service(send=send)
        except DjangoValidationError as error:
            raise SendStateConflict(error.messages[0]) from error
        send.refresh_from_db()
        return Response(_document(send))

    return type(f"Send{name.title()}View", (SendApiView,), {"post": post})


SendPauseView = _action("pause", send_pause, "Pause a send",
                        "Batches not yet sent wait until it is resumed.")
SendResumeView = _action("resume", send_resume, "Resume a paused send", "Sending goes on.")
SendCancelView = _action("cancel", send_cancel, "Cancel a send",
                         "Rows not yet sent are skipped with the reason send_cancelled.")
