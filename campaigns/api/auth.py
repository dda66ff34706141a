"""Who may manage campaigns over the API: an API key holding the ``campaigns`` scope (journeys
managed as code), or a logged-in staff member with the campaign model's Django permissions."""

from rest_framework import permissions
from rest_framework.views import APIView

from journeyhub.api_auth import STAFF_AUTHENTICATION, StaffOrScope
from journeyhub.api_errors import StrictJSONParser
from journeyhub.models import ApiKey

CAMPAIGNS_SCOPES = {method: ApiKey.Scope.CAMPAIGNS
                    for method in ("GET", "POST", "PUT", "PATCH", "DELETE")}


class ManageApiView(APIView):
    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = [permissions.IsAuthenticated, StaffOrScope]
    parser_classes = [StrictJSONParser]
    required_scopes = CAMPAIGNS_SCOPES
    perm_model = ""  # "app.model" whose Django permissions a staff session needs
