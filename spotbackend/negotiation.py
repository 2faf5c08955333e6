"""Content negotiation of the API: a view that renders only JSON answers JSON without parsing the
Accept header when the caller accepts anything or JSON (the agents send `*/*`). Parsing it and
matching media types cost about a tenth of an agent call's CPU (docs/PERFORMANCE.md). Any other
Accept header, and every view with several renderers (the schema, the docs pages), goes through
DRF's own negotiation, which answers 406 for a media type nobody renders."""
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer

_ANY = {"", "*/*", "application/json", "application/json, */*", "*/*; q=0.8"}


def accepts_json(request) -> bool:
    """The caller accepts anything or JSON, with no `?format=`: JSON needs no negotiation."""
    return request.META.get("HTTP_ACCEPT", "") in _ANY and "format" not in request.GET


class JsonFirstNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if (len(renderers) == 1 and type(renderers[0]) is JSONRenderer and format_suffix is None
                and accepts_json(request)):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
