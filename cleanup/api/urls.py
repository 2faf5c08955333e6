from django.urls import path

from cleanup.api import views

# `agents/<str:agent_id>` (the agents app's catch-all) cannot match this: `str` stops at a slash.
urlpatterns = [
    path("agents/<str:agent_id>/cleanup-report", views.CleanupReportApi.as_view(), name="agent-cleanup-report"),
]
