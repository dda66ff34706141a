from django.urls import path

from onboarding.api import views

# Before audiences' customers/<path:external_id>/, which would take "batch" as an id.
urlpatterns = [
    path("customers/batch/", views.CustomerBatchView.as_view(), {"external_id": "batch"},
         name="api-customers-batch"),
]
