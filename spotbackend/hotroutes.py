"""The agents' frequent calls (heartbeat, config, pending commands, pricing report) and the one that
must be fast when it comes (a termination notice) answered without DRF's request dispatch when the
call is the ordinary one (docs/PERFORMANCE.md, "Hot routes").

`hot_route(View, answer)` is the URL's view. When the call carries an active client's Bearer token
and, for a body, an ordinary JSON object, it calls `answer(request, client, body, **kwargs)`, the same
function the DRF view's handler calls, and renders its dict with DRF's JSON renderer. Anything else
(no, malformed or unknown token, an inactive client, another client's agent, a body that needs the
serializer to name its problem, another method) goes to the DRF view unchanged, which gives the
canonical answer (401, 403, 404, 400, 413, 405...): no rule is written twice. `answer` raises or
returns None before it changes anything, so a call handed to the DRF view is handled exactly once.

What this skips is DRF's per-request machinery (wrapping the request, the authentication and
permission loops, content negotiation, the template response): about a third of the CPU of a call
that itself does no SQL and no network round trip."""
import io

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer

from spotbackend.authentication import ClientTokenAuthentication
from spotbackend.exceptions import ApplicationError
from spotbackend.negotiation import accepts_json
from spotbackend.parsers import SafeJSONParser

_authentication = ClientTokenAuthentication()
_renderer = JSONRenderer()
_parser = SafeJSONParser()


def _client(request):
    """The active client of the call's Bearer token, by the API's own authentication, else None (the
    DRF view then answers and counts a failed token)."""
    try:
        found = _authentication.authenticate(request)
    except APIException:
        return None
    return found[0] if found else None


def _body(request):
    """The JSON object of an ordinary body (parsed by the API's own parser), else None."""
    if request.META.get("CONTENT_TYPE", "").split(";")[0].strip() != "application/json":
        return None
    try:
        raw = request.body  # kept by Django: the DRF view can still read it
        data = _parser.parse(io.BytesIO(raw), "application/json", {"encoding": request.encoding or "utf-8"})
    except (APIException, RequestDataTooBig, ValueError):
        return None
    return data if isinstance(data, dict) else None


def hot_route(view_class, answer, *, method: str, with_body: bool = False):
    drf_view = view_class.as_view()

    def view(request, **kwargs):
        if request.method == method and accepts_json(request):
            client = _client(request)
            if client is not None:
                body = _body(request) if with_body else None
                if body is not None or not with_body:
                    try:
                        data = answer(request, client, body, **kwargs)
                    except (APIException, ApplicationError):
                        data = None  # the DRF view gives the canonical answer
                    if data is not None:
                        return HttpResponse(_renderer.render(data), content_type="application/json")
        return drf_view(request, **kwargs)

    # What Django, DRF and the schema generator read off a class-based view.
    view.cls = view.view_class = view_class
    view.initkwargs = drf_view.initkwargs
    view.csrf_exempt = True
    view.__doc__ = view_class.__doc__
    return view
