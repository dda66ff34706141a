from django.urls import path

from notifications.api import templates_views as views

urlpatterns = [
    path("templates/", views.TemplateListView.as_view(), name="api-templates"),
    path("templates/<str:template_id>/", views.TemplateDetailView.as_view(),
         name="api-template"),
]
