from django.urls import path

from notifications.api import sends_views as views

# send_id is matched as any segment, not <int:>, so that a malformed id gets the API's JSON 404
# rather than the site's HTML one.
urlpatterns = [
    path("sends/", views.SendListView.as_view(), name="api-sends"),
    path("sends/<str:send_id>/", views.SendDetailView.as_view(), name="api-send"),
    path("sends/<str:send_id>/deliveries/", views.SendDeliveriesView.as_view(),
         name="api-send-deliveries"),
    path("sends/<str:send_id>/pause/", views.SendPauseView.as_view(), name="api-send-pause"),
    path("sends/<str:send_id>/resume/", views.SendResumeView.as_view(), name="api-send-resume"),
    path("sends/<str:send_id>/cancel/", views.SendCancelView.as_view(), name="api-send-cancel"),
]
