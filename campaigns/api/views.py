"""Campaign endpoints: validate the document, call one service, answer with the campaign."""

from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from campaigns import services
from campaigns.api.auth import ManageApiView
from campaigns.api.serializers import (
    MAX_ID,
    CampaignListSerializer,
    CampaignSerializer,
    errors_flat,
)
from campaigns.models import Campaign
from journeyhub.api_errors import StrictLimitOffsetPagination, error_responses, refuse_body

CAMPAIGN_ID = OpenApiParameter("campaign_id", int, OpenApiParameter.PATH)
LIST_FILTERS = [
    OpenApiParameter("status", str, enum=Campaign.Status.values, required=False),
    OpenApiParameter("kind", str, enum=Campaign.Kind.values, required=False),
]
WRITE_ERRORS = error_responses(400, 401, 403, 413, 415, 429)
ONE_ERRORS = error_responses(401, 403, 404, 429)
JOURNEY_DESCRIPTION = (
    "The campaign with its steps in one document. Steps link by number (1-based place in "
    "`steps`): `next_step` null = the following step, `else_step` null = exit. Problems that "
    "would stop the journey running (an unreachable step, a loop with no wait, a send without "
    "a template, a wait for an event without a timeout, ...) are 400s naming the step."
)


class CampaignPagination(StrictLimitOffsetPagination):
    default_limit = 50
    max_limit = 200


def _campaign_or_404(campaign_id: str) -> Campaign:
    pk = int(campaign_id) if campaign_id.isascii() and campaign_id.isdigit() else 0
    campaign = Campaign.objects.filter(pk=pk).first() if 0 < pk <= MAX_ID else None
    if campaign is None:
        raise NotFound("No such campaign.")
    return campaign


def _author(request) -> User | None:
    return request.user if isinstance(request.user, User) else None


def _validated(request, campaign: Campaign | None = None, partial: bool = False):
    serializer = CampaignSerializer(instance=campaign, data=request.data, partial=partial)
    if not serializer.is_valid():
        raise ValidationError(errors_flat(serializer.errors))
    return serializer.service_arguments()


class CampaignListView(ManageApiView, GenericAPIView):
    perm_model = "campaigns.campaign"
    pagination_class = CampaignPagination
    serializer_class = CampaignListSerializer

    @extend_schema(
        tags=["campaigns"], summary="List campaigns", parameters=LIST_FILTERS,
        responses={200: CampaignListSerializer(many=True), **error_responses(400, 401, 403, 429)},
    )
    def get(self, request):
        campaigns = Campaign.objects.order_by("-pk")
        for name, allowed in (("status", Campaign.Status.values), ("kind", Campaign.Kind.values)):
            value = request.query_params.get(name)
            if value is not None:
                if value not in allowed:
                    raise ValidationError({name: [f"One of: {', '.join(allowed)}."]})
                campaigns = campaigns.filter(**{name: value})
        page = self.paginate_queryset(campaigns)
        return self.get_paginated_response(CampaignListSerializer(page, many=True).data)

    @extend_schema(
        tags=["campaigns"], summary="Create a campaign (with its journey)",
        description=JOURNEY_DESCRIPTION, request=CampaignSerializer,
        responses={201: CampaignSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        fields, steps = _validated(request)
        campaign = services.campaign_save(fields=fields, steps=steps, user=_author(request))
        return Response(CampaignSerializer(campaign).data, status=201)


class CampaignDetailView(ManageApiView):
    perm_model = "campaigns.campaign"

    @extend_schema(
        tags=["campaigns"], summary="Read a campaign with its journey", parameters=[CAMPAIGN_ID],
        responses={200: CampaignSerializer, **ONE_ERRORS},
    )
    def get(self, request, campaign_id):
        return Response(CampaignSerializer(_campaign_or_404(campaign_id)).data)

    @extend_schema(
        tags=["campaigns"], summary="Replace a campaign (and its journey, when steps are sent)",
        description=JOURNEY_DESCRIPTION + " On a running journey, steps sent with their `id` "
                    "keep their waiting customers; customers on a removed step move on to where "
                    "it led.",
        parameters=[CAMPAIGN_ID], request=CampaignSerializer,
        responses={200: CampaignSerializer, **WRITE_ERRORS, **error_responses(404)},
    )
    def put(self, request, campaign_id):
        return self._update(request, campaign_id, partial=False)

    @extend_schema(
        tags=["campaigns"], summary="Change some of a campaign's fields",
        parameters=[CAMPAIGN_ID], request=CampaignSerializer,
        responses={200: CampaignSerializer, **WRITE_ERRORS, **error_responses(404)},
    )
    def patch(self, request, campaign_id):
        return self._update(request, campaign_id, partial=True)

    def _update(self, request, campaign_id, partial: bool):
        campaign = _campaign_or_404(campaign_id)
        fields, steps = _validated(request, campaign, partial=partial)
        campaign = services.campaign_save(campaign=campaign, fields=fields, steps=steps,
                                          user=_author(request))
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(
        tags=["campaigns"], summary="Delete a draft, completed or archived campaign",
        parameters=[CAMPAIGN_ID],
        responses={204: None, **error_responses(400, 401, 403, 404, 429)},
    )
    def delete(self, request, campaign_id):
        refuse_body(request)
        services.campaign_delete(campaign=_campaign_or_404(campaign_id), user=_author(request))
        return Response(status=204)


class CampaignActionView(ManageApiView):
    """POST /campaigns/{id}/<action>/: one status service, answered with the campaign."""

    perm_model = "campaigns.campaign"
    action_permission = "change"
    service = None
    created = False

    def act(self, request, campaign_id):
        refuse_body(request)
        campaign = _campaign_or_404(campaign_id)
        result = self.service(campaign=campaign, user=_author(request))
        return Response(CampaignSerializer(result).data, status=201 if self.created else 200)


def _action(name: str, service, summary: str, description: str, created: bool = False):
    """A view class per action, each with its own documented ``post``."""
    status = 201 if created else 200

    @extend_schema(
        tags=["campaigns"], summary=summary, description=description, request=None,
        parameters=[CAMPAIGN_ID], operation_id=f"campaigns_{name}",
        responses={status: OpenApiResponse(CampaignSerializer),
                   **error_responses(400, 401, 403, 404, 429)},
    )
    def post(self, request, campaign_id):
        return self.act(request, campaign_id)

    return type(f"Campaign{name.title()}View", (CampaignActionView,), {
        "service": staticmethod(service), "created": created, "post": post,
        "action_permission": "add" if created else "change",
    })


CampaignLaunchView = _action(
    "launch", services.campaign_launch, "Launch or schedule a draft",
    "Checks the campaign and its steps (400 naming each problem). A broadcast with a future "
    "send_at becomes scheduled; anything else starts running.",
)
CampaignPauseView = _action(
    "pause", services.campaign_pause, "Pause a scheduled or running campaign",
    "No one enters or moves on, and its sends in progress pause.",
)
CampaignResumeView = _action(
    "resume", services.campaign_resume, "Resume a paused campaign",
    "A broadcast paused before its time is scheduled again; the rest runs on.",
)
CampaignArchiveView = _action(
    "archive", services.campaign_archive, "Archive a campaign",
    "Ends it for good: enrolled customers exit, undelivered messages are cancelled.",
)
CampaignDuplicateView = _action(
    "duplicate", services.campaign_duplicate, "Duplicate a campaign as a draft",
    "A draft copy named \"Copy of ...\" with the same steps, links and A/B variants.",
    created=True,
)
