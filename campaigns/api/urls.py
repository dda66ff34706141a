from django.urls import path

from campaigns.api import views

# campaign_id is matched as any segment, not <int:>, so that a malformed id gets the API's JSON
# 404 rather than the site's HTML one.
urlpatterns = [
    path("campaigns/", views.CampaignListView.as_view(), name="api-campaigns"),
    path("campaigns/<str:campaign_id>/", views.CampaignDetailView.as_view(),
         name="api-campaign"),
    path("campaigns/<str:campaign_id>/launch/", views.CampaignLaunchView.as_view(),
         name="api-campaign-launch"),
    path("campaigns/<str:campaign_id>/pause/", views.CampaignPauseView.as_view(),
         name="api-campaign-pause"),
    path("campaigns/<str:campaign_id>/resume/", views.CampaignResumeView.as_view(),
         name="api-campaign-resume"),
    path("campaigns/<str:campaign_id>/archive/", views.CampaignArchiveView.as_view(),
         name="api-campaign-archive"),
    path("campaigns/<str:campaign_id>/duplicate/", views.CampaignDuplicateView.as_view(),
         name="api-campaign-duplicate"),
]
