"""GET /api/client/{client_id}/savings: the caller's own client only (another id is 404)."""
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from clients.selectors import client_get_for_caller
from savings.api.serializers import ClientSavingsOutput
from savings.selectors import client_savings
from spotbackend.api import answers, render
from clients.authentication import DashboardScope


class ClientSavingsApi(APIView):
    """Savings: totals, per month and the average percent (API.md §2)."""

    permission_classes = [DashboardScope]

    @extend_schema(responses=answers(ClientSavingsOutput, 404))
    def get(self, request, client_id):
        client = client_get_for_caller(caller=request.user, client_id=client_id)
        return Response(render(ClientSavingsOutput, client_savings(client=client)))
