from rest_framework.response import Response
from rest_framework.views import APIView


class CeilingApi(APIView):
    """Parses the body like a real endpoint, then answers the cheapest valid answer."""

    def handle(self, request, *args, **kwargs):
        request.data  # noqa: B018 -- parse the JSON body, as every server endpoint does
        return Response({"success": True})

    get = post = put = patch = delete = handle
