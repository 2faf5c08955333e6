from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from spotbackend.throttling import admin_login
from spotbackend.views import health

urlpatterns = [
    path("health", health, name="health"),
    # The agents' routes first: they carry ~97 % of the traffic, and resolving walks the list in order.
    path("api/", include("agents.api.urls")),
    path("admin/login/", admin_login),  # admin.site.login with failed-login throttling
    path("admin/", admin.site.urls),
    path("api/schema", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "api/docs",
        SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="docs",
    ),
    path("api/", include("clients.api.urls")),
    path("api/", include("savings.api.urls")),
    path("api/", include("cleanup.api.urls")),
]

handler400 = "spotbackend.exceptions.handler400"
handler403 = "spotbackend.exceptions.handler403"
handler404 = "spotbackend.exceptions.handler404"
handler500 = "spotbackend.exceptions.handler500"
