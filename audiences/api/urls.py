from django.urls import path, register_converter

from audiences.api import identity_views, segments_views, views


class ExternalIdConverter:
    """Any text, "/" and line breaks included (Django's <path:> stops at a line break, so an
    id holding one, which events may create, could not be addressed)."""

    regex = "(?s:.+)"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ExternalIdConverter, "external_id")

# An external id is any text, "/" included: clients percent-encode it ("a%2Fb") and the server
# decodes it before routing, so <external_id:> takes it whole. The routes with a suffix come first,
# so that ".../token/" is the token endpoint; an id may not itself end in "/token", "/merge"
# or "/export" (audiences.models.EXTERNAL_ID_RESERVED_ENDINGS), so none is ever ambiguous.
urlpatterns = [
    path("customers/<external_id:external_id>/token/", views.CustomerTokenView.as_view(),
         name="api-customer-token"),
    path("customers/<external_id:external_id>/merge/", identity_views.CustomerMergeView.as_view(),
         name="api-customer-merge"),
    path("customers/<external_id:external_id>/export/", identity_views.CustomerExportView.as_view(),
         name="api-customer-export"),
    path("customers/<external_id:external_id>/", views.CustomerView.as_view(), name="api-customer"),
    path("events/", views.EventView.as_view(), name="api-events"),
    path("events/batch/", views.EventBatchView.as_view(), name="api-events-batch"),
    path("topics/", views.TopicListView.as_view(), name="api-topics"),
    path("me/", views.MeView.as_view(), name="api-me"),
    path("me/consent/", views.MeConsentView.as_view(), name="api-me-consent"),
    path("me/events/", views.MyEventView.as_view(), name="api-me-events"),
    path("me/referrals/opened/", views.MyReferralOpenedView.as_view(),
         name="api-me-referral-opened"),
    path("me/events/batch/", views.MyEventBatchView.as_view(), name="api-me-events-batch"),
    path("segments/", segments_views.SegmentListView.as_view(), name="api-segments"),
    path("segments/<str:key>/", segments_views.SegmentDetailView.as_view(), name="api-segment"),
    path("segments/<str:key>/count/", segments_views.SegmentCountView.as_view(),
         name="api-segment-count"),
    path("segments/<str:key>/members/", segments_views.SegmentMembersView.as_view(),
         name="api-segment-members"),
]
