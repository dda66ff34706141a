from django.urls import path

from notifications.api import views

# device_id is matched as any segment, not <int:>, so that a malformed id gets the API's JSON
# 404 rather than the site's HTML one.
urlpatterns = [
    path("me/devices/", views.DeviceListView.as_view(), name="api-me-devices"),
    path("me/devices/<str:device_id>/", views.DeviceDetailView.as_view(),
         name="api-me-device"),
    path("me/deliveries/received/", views.DeliveryReceivedView.as_view(),
         name="api-me-delivery-received"),
    path("me/deliveries/opened/", views.DeliveryOpenedView.as_view(),
         name="api-me-delivery-opened"),
]
