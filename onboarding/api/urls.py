from django.urls import path

from onboarding.api import views

# Before audiences' customers/<path:external_id>/, which would take "batch" for an id (no
# customer may have it: audiences.models.EXTERNAL_ID_RESERVED).
urlpatterns = [
    path("customers/batch/", views.CustomerBatchView.as_view(), name="api-customers-batch"),
]
