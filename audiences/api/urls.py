from django.urls import path

from audiences.api import views

urlpatterns = [
    path("customers/<str:external_id>/", views.CustomerView.as_view(), name="api-customer"),
    path("customers/<str:external_id>/token/", views.CustomerTokenView.as_view(),
         name="api-customer-token"),
    path("events/", views.EventView.as_view(), name="api-events"),
    path("events/batch/", views.EventBatchView.as_view(), name="api-events-batch"),
    path("topics/", views.TopicListView.as_view(), name="api-topics"),
    path("me/", views.MeView.as_view(), name="api-me"),
    path("me/consent/", views.MeConsentView.as_view(), name="api-me-consent"),
    path("me/events/", views.MyEventView.as_view(), name="api-me-events"),
    path("me/events/batch/", views.MyEventBatchView.as_view(), name="api-me-events-batch"),
]
