"""Template endpoints for staff and brand backends managing messages as code (an API key with
the campaigns scope, or a staff session). Title and body are Django templates; one that would
not render is refused with the reason."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import APIException, NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from journeyhub.api_auth import STAFF_AUTHENTICATION, StaffOrScope
from journeyhub.api_errors import (
    ErrorSerializer,
    StrictJSONParser,
    StrictLimitOffsetPagination,
    error_responses,
    refuse_body,
)
from journeyhub.models import ApiKey
from notifications.api.templates_serializers import TemplateSerializer
from notifications.models import Template
from notifications.services import template_delete, template_save

MAX_ID = 2**31 - 1
TEMPLATE_ID = OpenApiParameter("template_id", int, OpenApiParameter.PATH)
WRITE_ERRORS = error_responses(400, 401, 403, 413, 415, 429)


class TemplatePagination(StrictLimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class TemplateInUse(APIException):
    status_code = 409
    default_code = "in_use"


class TemplateApiView(APIView):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [permissions.IsAuthenticated, StaffOrScope]
    parser_classes = [StrictJSONParser]
    required_scopes = {method: ApiKey.Scope.CAMPAIGNS
                       for method in ("GET", "POST", "PUT", "PATCH", "DELETE")}
    perm_model = "notifications.template"


def _template_or_404(template_id: str) -> Template:
    pk = int(template_id) if template_id.isascii() and template_id.isdigit() else 0
    template = Template.objects.filter(pk=pk).first() if 0 < pk <= MAX_ID else None
    if template is None:
        raise NotFound("No such template.")
    return template


class TemplateListView(TemplateApiView, GenericAPIView):
    pagination_class = TemplatePagination
    serializer_class = TemplateSerializer

    @extend_schema(
        tags=["templates"], summary="List templates",
        responses={200: TemplateSerializer(many=True), **error_responses(400, 401, 403, 429)},
    )
    def get(self, request):
        templates = (Template.objects.filter(inline=False).select_related("topic")
                     .prefetch_related("translations"))
        page = self.paginate_queryset(templates.order_by("name"))
        return self.get_paginated_response(TemplateSerializer(page, many=True).data)

    @extend_schema(
        tags=["templates"], summary="Create a template", request=TemplateSerializer,
        responses={201: TemplateSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        serializer = TemplateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields, translations = serializer.service_arguments()
        template = template_save(fields=fields, translations=translations)
        return Response(TemplateSerializer(template).data, status=201)


class TemplateDetailView(TemplateApiView):
    @extend_schema(
        tags=["templates"], summary="Read a template", parameters=[TEMPLATE_ID],
        responses={200: TemplateSerializer, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request, template_id):
        return Response(TemplateSerializer(_template_or_404(template_id)).data)

    @extend_schema(
        tags=["templates"], summary="Replace a template",
        description="Translations, when sent, replace the template's translations.",
        parameters=[TEMPLATE_ID], request=TemplateSerializer,
        responses={200: TemplateSerializer, **WRITE_ERRORS, **error_responses(404)},
    )
    def put(self, request, template_id):
        return self._update(request, template_id, partial=False)

    @extend_schema(
        tags=["templates"], summary="Change some of a template's fields",
        parameters=[TEMPLATE_ID], request=TemplateSerializer,
        responses={200: TemplateSerializer, **WRITE_ERRORS, **error_responses(404)},
    )
    def patch(self, request, template_id):
        return self._update(request, template_id, partial=True)

    def _update(self, request, template_id, partial: bool):
        template = _template_or_404(template_id)
        serializer = TemplateSerializer(template, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        fields, translations = serializer.service_arguments()
        template = template_save(template=template, fields=fields, translations=translations)
        return Response(TemplateSerializer(template).data)

    @extend_schema(
        tags=["templates"], summary="Delete a template no campaign or send uses",
        parameters=[TEMPLATE_ID],
        responses={
            204: None, **error_responses(401, 403, 404, 429),
            409: OpenApiResponse(ErrorSerializer, description="Campaign steps or sends use it."),
        },
    )
    def delete(self, request, template_id):
        refuse_body(request)
        try:
            template_delete(template=_template_or_404(template_id))
        except DjangoValidationError as error:
            raise TemplateInUse(error.messages[0]) from error
        return Response(status=204)
