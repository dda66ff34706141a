from django.conf import settings
from django.urls import path

from notifications.demo_sink import demo_webpush_receive

urlpatterns = []
if settings.DEMO_WEBPUSH_SINK:
    urlpatterns.append(
        path("demo/webpush/<str:key>/", demo_webpush_receive, name="demo-webpush-sink")
    )
