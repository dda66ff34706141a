"""The app's own devices (customer token). A device of another customer answers 404 exactly as a
device that does not exist, so ids reveal nothing."""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from audiences.api.auth import AppApiView
from audiences.models import Customer
from journeyhub.api_errors import StrictLimitOffsetPagination, error_responses, refuse_body
from notifications.api.serializers import (
    DeliveryOpenedSerializer,
    DeliveryReportSerializer,
    DeviceRegisterSerializer,
    DeviceSerializer,
    DeviceUpdateSerializer,
)
from notifications.models import Device
from notifications.services import (
    delivery_track,
    device_delete,
    device_register,
    device_update,
)

MAX_ID = 2**63 - 1  # a bigger number cannot be a primary key; the database would refuse it
DEVICE_ID = OpenApiParameter("device_id", int, OpenApiParameter.PATH)


class DevicePagination(StrictLimitOffsetPagination):
    default_limit = 50
    max_limit = 100


def _devices_of(customer: Customer):
    return (Device.objects.filter(customer=customer).select_related("apns", "fcm", "webpush")
            .order_by("-last_seen_at", "-pk"))


def _device_of(customer: Customer, device_id: str) -> Device:
    pk = int(device_id) if device_id.isascii() and device_id.isdigit() else 0
    device = _devices_of(customer).filter(pk=pk).first() if 0 < pk <= MAX_ID else None
    if device is None:
        raise NotFound("No such device.")
    return device


class DeviceListView(AppApiView, GenericAPIView):
    serializer_class = DeviceSerializer
    pagination_class = DevicePagination

    def get_queryset(self):
        return _devices_of(self.request.auth)

    @extend_schema(
        tags=["devices"], summary="List my devices", responses={
            200: DeviceSerializer(many=True), **error_responses(400, 401, 429)},
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(DeviceSerializer(page, many=True).data)

    @extend_schema(
        tags=["devices"], summary="Register a device",
        description="Registering a token again updates its device (200); a token registered by "
                    "another customer moves to this one (200).",
        request=DeviceRegisterSerializer,
        responses={
            201: OpenApiResponse(DeviceSerializer, description="A new device."),
            200: OpenApiResponse(DeviceSerializer, description="A known token, updated."),
            **error_responses(400, 401, 413, 415, 429),
        },
    )
    def post(self, request):
        serializer = DeviceRegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device, created = device_register(customer=request.auth, **serializer.validated_data)
        return Response(DeviceSerializer(device).data, status=201 if created else 200)


class DeviceDetailView(AppApiView):
    @extend_schema(
        tags=["devices"], summary="Read one of my devices", parameters=[DEVICE_ID],
        responses={200: DeviceSerializer, **error_responses(401, 404, 429)},
    )
    def get(self, request, device_id):
        return Response(DeviceSerializer(_device_of(request.auth, device_id)).data)

    @extend_schema(
        tags=["devices"], summary="Update one of my devices", parameters=[DEVICE_ID],
        request=DeviceUpdateSerializer,
        responses={200: DeviceSerializer, **error_responses(400, 401, 404, 413, 415, 429)},
    )
    def patch(self, request, device_id):
        device = _device_of(request.auth, device_id)
        serializer = DeviceUpdateSerializer(data=request.data, context={"device": device})
        serializer.is_valid(raise_exception=True)
        device = device_update(device=device, **serializer.validated_data)
        return Response(DeviceSerializer(device).data)

    @extend_schema(
        tags=["devices"], summary="Forget one of my devices", parameters=[DEVICE_ID],
        responses={204: None, **error_responses(401, 404, 429)},
    )
    def delete(self, request, device_id):
        refuse_body(request)
        device_delete(device=_device_of(request.auth, device_id))
        return Response(status=204)


class DeliveryReportView(AppApiView):
    """The app reports that a notification arrived or was opened, with the signed token the
    payload carried (data.jh_token)."""

    action = ""
    serializer_class = DeliveryReportSerializer

    def post(self, request):
        serializer = self.serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            delivery = delivery_track(token=serializer.validated_data["token"],
                                      action=self.action, customer=request.auth,
                                      action_id=serializer.validated_data.get("action_id", ""))
        except ValidationError as error:
            codes = {e.code for errors in error.error_dict.values() for e in errors}
            if "already_reported" in codes:
                raise Conflict(error.message_dict["token"][0]) from error
            raise
        return Response({"delivery_id": delivery.pk, self.action: True})


class Conflict(APIException):
    status_code = 409
    default_code = "already_reported"


_REPORT_RESPONSES = {
    200: inline_serializer("DeliveryReported", {"delivery_id": serializers.IntegerField()}),
    **error_responses(400, 401, 409, 413, 415, 429),
}


class DeliveryReceivedView(DeliveryReportView):
    action = "received"

    @extend_schema(tags=["tracking"], summary="Report that a notification arrived",
                   request=DeliveryReportSerializer, responses=_REPORT_RESPONSES)
    def post(self, request):
        return super().post(request)


class DeliveryOpenedView(DeliveryReportView):
    action = "opened"
    serializer_class = DeliveryOpenedSerializer

    @extend_schema(tags=["tracking"], summary="Report that a notification was opened",
                   description="Sets the delivery's opened_at (and opened_action: the button "
                               "tapped, if any) and records a notification_opened event for "
                               "the customer.",
                   request=DeliveryOpenedSerializer, responses=_REPORT_RESPONSES)
    def post(self, request):
        return super().post(request)
