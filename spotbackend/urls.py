from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

import spotbackend.schema  # noqa: F401  (registers the schema extensions)
from spotbackend.throttling import admin_login
from spotbackend.health import health, health_live, health_ready
from spotbackend.metrics import metrics_view

# The schema and its two viewers are public; the viewers load only this server's static files.
PUBLIC = {"authentication_classes": [], "permission_classes": []}

urlpatterns = [
    path("health", health, name="health"),
    path("health/live", health_live, name="health-live"),
    path("health/ready", health_ready, name="health-ready"),
    path("metrics", metrics_view, name="metrics"),  # Bearer METRICS_TOKEN only
    # The agents' routes first: they carry ~97 % of the traffic, and resolving walks the list in order.
    path("api/", include("agents.api.urls")),
    path("admin/login/", admin_login),  # admin.site.login with failed-login throttling
    path("admin/", admin.site.urls),
    path("api/schema", SpectacularAPIView.as_view(**PUBLIC), name="schema"),
    path("api/docs", SpectacularSwaggerSplitView.as_view(url_name="schema", **PUBLIC), name="docs"),
    path(
        "api/redoc",
        SpectacularRedocView.as_view(url_name="schema", template_name="spotbackend/redoc.html", **PUBLIC),
        name="redoc",
    ),
    path("api/", include("clients.api.urls")),
    path("api/", include("notifications.api.urls")),
    path("api/", include("savings.api.urls")),
    path("api/", include("cleanup.api.urls")),
]

handler400 = "spotbackend.exceptions.handler400"
handler403 = "spotbackend.exceptions.handler403"
handler404 = "spotbackend.exceptions.handler404"
handler500 = "spotbackend.exceptions.handler500"
