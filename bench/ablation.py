"""The server with some of its speed mechanisms switched off, for the ablation table of
docs/PERFORMANCE.md: `python bench/load.py --ablate token_cache,heartbeat_buffer`. Each name undoes
one mechanism the way a newcomer deleting it would; nothing here is used outside the benchmark.

  token_cache       every call reads its client by token (clients/services.py keeps none)
  heartbeat_buffer  every heartbeat is written before it is answered (HEARTBEAT_BUFFER_SECONDS = 0)
  heartbeat_hint    no per-process signature hint: every heartbeat reads its row (agents/cache.py)
  gc_freeze         the start-up objects stay in the collector's reach (spotbackend/wsgi.py)
  switch_interval   Python's default 5 ms interpreter-lock hand-over (spotbackend/wsgi.py)
  bound_serializers a body's input serializer and an answer's output serializer are built for
                    each call (spotbackend/api.py)
  json_first        DRF's default content negotiation (spotbackend/negotiation.py)
  pages_only        the admin's session, user and message middleware run for the API
                    too (spotbackend/middleware.py)
"""
import gc
import os
import sys

ABLATE = {name.strip() for name in os.environ.get("ABLATE", "").split(",") if name.strip()}
KNOWN = {"token_cache", "heartbeat_buffer", "heartbeat_hint", "gc_freeze", "switch_interval", "bound_serializers",
         "json_first", "pages_only"}
if ABLATE - KNOWN:
    raise SystemExit(f"unknown mechanisms: {sorted(ABLATE - KNOWN)}")

if "pages_only" in ABLATE:  # before the handler loads its middleware
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotbackend.settings")
    from django.conf import settings as _settings

    _django = {"SessionMiddleware": "django.contrib.sessions.middleware.SessionMiddleware",
               "AuthenticationMiddleware": "django.contrib.auth.middleware.AuthenticationMiddleware",
               "MessageMiddleware": "django.contrib.messages.middleware.MessageMiddleware"}
    _settings.MIDDLEWARE = [_django.get(m.rsplit(".", 1)[1], m) if m.startswith("spotbackend.middleware.") else m
                            for m in _settings.MIDDLEWARE]

from spotbackend.wsgi import application  # noqa: E402,F401  (sets the interval and freezes the heap)

if "gc_freeze" in ABLATE:
    gc.unfreeze()
if "switch_interval" in ABLATE:
    sys.setswitchinterval(0.005)
if "token_cache" in ABLATE:
    from cachetools import TTLCache

    from clients import services

    services._tokens = TTLCache(maxsize=1, ttl=0)
if "heartbeat_buffer" in ABLATE:
    from django.conf import settings

    settings.HEARTBEAT_BUFFER_SECONDS = 0
if "heartbeat_hint" in ABLATE:
    from agents import cache

    cache.heartbeat_hint_get = lambda agent_pk: None
if "bound_serializers" in ABLATE:
    from spotbackend import api

    def _unbound(serializer_class):
        serializer = serializer_class()
        serializer.fields  # noqa: B018
        return serializer

    api._bound = _unbound
if "json_first" in ABLATE:
    from rest_framework.negotiation import DefaultContentNegotiation

    from spotbackend.negotiation import JsonFirstNegotiation

    JsonFirstNegotiation.select_renderer = DefaultContentNegotiation.select_renderer
print(f"ablation: switched off {sorted(ABLATE) or 'nothing'}", file=sys.stderr, flush=True)
