"""Read-only analyst endpoints: validate the query, call one selector, render its result.

Every endpoint needs an API key holding the ``analytics:read`` scope."""

from datetime import timedelta
from urllib.parse import urlencode

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import reports
from analytics.api import serializers as s
from analytics.referrals import referral_report
from campaigns.models import Campaign
from journeyhub.api_auth import ApiKeyAuthentication, HasScope
from journeyhub.api_errors import error_responses
from journeyhub.models import ApiKey

CAMPAIGN_ID = OpenApiParameter("campaign_id", int, OpenApiParameter.PATH,
                               description="The campaign's id.")
ERRORS = error_responses(400, 401, 403, 429)
TAGS = ["analytics"]


class AnalyticsApiView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [permissions.IsAuthenticated, HasScope]
    required_scopes = {"GET": ApiKey.Scope.ANALYTICS_READ}
    query_serializer: type = s.RangeQuerySerializer

    def finalize_response(self, request, response, *args, **kwargs):
        # Every answer says when the rollups behind it were computed (lists too, by header).
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code == 200:
            moment = reports.computed_at()
            response["X-Computed-At"] = moment.isoformat() if moment else ""
        return response

    def query(self, request) -> dict:
        # A plain dict: from a QueryDict, DRF reads "?until=" as if until were not given.
        serializer = self.query_serializer(data=request.query_params.dict(),
                                           context={"today": timezone.now().date()})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def _campaign_or_404(campaign_id: int) -> Campaign:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(f"No campaign with id {campaign_id}.")
    return campaign


class CampaignReportView(AnalyticsApiView):
    @extend_schema(
        tags=TAGS, summary="Campaign report", parameters=[CAMPAIGN_ID, s.RangeQuerySerializer],
        description="Totals, per step, per A/B variant (with a significance test; a winner only "
                    "when p < 0.05) and per platform, over UTC days since..until.",
        responses={200: s.CampaignReportSerializer, **ERRORS, **error_responses(404)},
    )
    def get(self, request, campaign_id: int):
        query = self.query(request)
        report = reports.campaign_report(campaign=_campaign_or_404(campaign_id), **query)
        return Response(s.CampaignReportSerializer(report).data)


class CampaignReportDaysView(AnalyticsApiView):
    query_serializer = s.DaysQuerySerializer

    @extend_schema(
        tags=TAGS, summary="Campaign report per day (keyset pages)",
        parameters=[CAMPAIGN_ID, s.DaysQuerySerializer],
        description="One row per UTC day, oldest first. Follow `next` for the following page.",
        responses={200: s.ReportDayPageSerializer, **ERRORS, **error_responses(404)},
    )
    def get(self, request, campaign_id: int):
        query = self.query(request)
        days = reports.campaign_report_days(campaign=_campaign_or_404(campaign_id), **query)
        next_url = None
        if len(days) == query["limit"]:
            params = {k: v for k, v in request.query_params.items() if k != "after"}
            params["after"] = days[-1].day.isoformat()
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode(params)}")
        page = {"results": days, "next": next_url, "computed_at": reports.computed_at()}
        return Response(s.ReportDayPageSerializer(page).data)


class CampaignLiftView(AnalyticsApiView):
    @extend_schema(
        tags=TAGS, summary="Campaign lift", parameters=[CAMPAIGN_ID],
        description="Conversion rate of the treatment group against the campaign holdout and "
                    "the global control group, over the campaign's life: absolute and relative "
                    "lift, 95% confidence interval, p-value.",
        responses={200: s.LiftSerializer, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request, campaign_id: int):
        lift = reports.campaign_lift(campaign=_campaign_or_404(campaign_id))
        return Response(s.LiftSerializer(lift).data)


class JourneyMapView(AnalyticsApiView):
    query_serializer = s.JourneyMapQuerySerializer

    @extend_schema(
        tags=TAGS, summary="Journey map", parameters=[s.JourneyMapQuerySerializer],
        description="Per lifecycle stage: customers now, entries and exits per day, median "
                    "time in stage; the transition matrix; campaigns preceding forward moves. "
                    f"At most {s.MAX_RANGE_DAYS} days; by default the last 30.",
        responses={200: s.JourneyMapSerializer, **ERRORS},
    )
    def get(self, request):
        query = self.query(request)
        window = timedelta(hours=query["attribution_window_hours"])
        jmap = reports.journey_map(since=query["since"], until=query["until"],
                                   attribution_window=window)
        return Response(s.JourneyMapSerializer(jmap).data)


class TopCampaignsView(AnalyticsApiView):
    query_serializer = s.TopCampaignsQuerySerializer

    @extend_schema(
        tags=TAGS, summary="Top campaigns", parameters=[s.TopCampaignsQuerySerializer],
        description="By treatment conversions, then revenue, then opens.",
        responses={200: s.CampaignRankSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        top = reports.top_campaigns(**self.query(request))
        return Response(s.CampaignRankSerializer(top, many=True).data)


class DeliveryHealthView(AnalyticsApiView):
    query_serializer = s.BoundedRangeQuerySerializer

    @extend_schema(
        tags=TAGS, summary="Delivery health", parameters=[s.BoundedRangeQuerySerializer],
        description="Every send's failures and skips by reason, per day with dead tokens, and "
                    f"inactive devices now. At most {s.MAX_RANGE_DAYS} days; by default the "
                    "last 30.",
        responses={200: s.DeliveryHealthSerializer, **ERRORS},
    )
    def get(self, request):
        query = self.query(request)
        health = reports.delivery_health(since=query["since"], until=query["until"])
        return Response(s.DeliveryHealthSerializer(health).data)


class ReferralReportView(AnalyticsApiView):
    query_serializer = s.BoundedRangeQuerySerializer

    @extend_schema(
        tags=TAGS, summary="Referral report", parameters=[s.BoundedRangeQuerySerializer],
        description="Referral asks sent and opened, link opens, sign-ups, referred customers' "
                    "conversions and revenue, the share of new customers who came by "
                    "referral, the viral coefficient per week, top referrers and the campaigns "
                    f"that asked. At most {s.MAX_RANGE_DAYS} days; by default the last 30.",
        responses={200: s.ReferralReportSerializer, **ERRORS},
    )
    def get(self, request):
        query = self.query(request)
        report = referral_report(since=query["since"], until=query["until"])
        return Response(s.ReferralReportSerializer(report).data)
