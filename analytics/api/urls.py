from django.urls import path

from analytics.api import views

urlpatterns = [
    path("campaigns/<int:campaign_id>/report/", views.CampaignReportView.as_view(),
         name="api-analytics-campaign-report"),
    path("campaigns/<int:campaign_id>/report/days/", views.CampaignReportDaysView.as_view(),
         name="api-analytics-campaign-report-days"),
    path("campaigns/<int:campaign_id>/lift/", views.CampaignLiftView.as_view(),
         name="api-analytics-campaign-lift"),
    path("journey-map/", views.JourneyMapView.as_view(), name="api-analytics-journey-map"),
    path("top-campaigns/", views.TopCampaignsView.as_view(), name="api-analytics-top-campaigns"),
    path("referrals/", views.ReferralReportView.as_view(), name="api-analytics-referrals"),
    path("delivery-health/", views.DeliveryHealthView.as_view(),
         name="api-analytics-delivery-health"),
]
