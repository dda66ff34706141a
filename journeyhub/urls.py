from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from journeyhub.admin_site import admin_prefix_redirect
from journeyhub.api_errors import JSONErrorsMixin, api_not_found


class SchemaView(JSONErrorsMixin, SpectacularAPIView):
    pass


class DocsView(JSONErrorsMixin, SpectacularSwaggerView):
    pass


urlpatterns = [
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("onboarding.api.urls")),
    path("api/v1/", include("audiences.api.urls")),
    path("api/v1/", include("notifications.api.urls")),
    path("api/v1/", include("notifications.api.templates_urls")),
    path("api/v1/", include("notifications.api.sends_urls")),
    path("api/v1/", include("campaigns.api.urls")),
    path("api/v1/analytics/", include("analytics.api.urls")),
    re_path(r"^api(?:/|$)", api_not_found),
    path("", include("notifications.urls")),
    path("analytics/reports/", include("analytics.admin_reports")),
    # The admin lives at the root; /admin/… (a habit, and old bookmarks) leads there.
    re_path(r"^admin/(?P<rest>.*)$", admin_prefix_redirect),
    # Last: the admin at the root ends with a catch-all that would swallow /api/ paths.
    path("", admin.site.urls),
]
