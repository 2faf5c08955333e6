"""GET /api/client/{client_id}/savings: the caller's own client only (another id is 404)."""
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.selectors import parse_uuid
from savings.selectors import client_savings


class ClientSavingsApi(APIView):
    def get(self, request, client_id):
        if parse_uuid(client_id) != request.user.pk:
            raise NotFound("Client not found.")
        return Response(client_savings(client=request.user))
