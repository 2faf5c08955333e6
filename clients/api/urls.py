from django.urls import path

from clients.api import views

# Literal routes before <client_id> routes; no trailing slashes (docs/API.md §0).
urlpatterns = [
    path("client/validate", views.ValidateApi.as_view(), name="client-validate"),
    path("client/agents/<str:agent_id>/toggle-enabled", views.ToggleEnabledApi.as_view(), name="client-agent-toggle-enabled"),
    path("client/agents/<str:agent_id>/settings", views.AgentSettingsApi.as_view(), name="client-agent-settings"),
    path("client/instances/<str:instance_id>/pricing", views.InstancePricingApi.as_view(), name="client-instance-pricing"),
    path("client/<str:client_id>/agents", views.ClientAgentsApi.as_view(), name="client-agents"),
    path("client/<str:client_id>/instances", views.ClientInstancesApi.as_view(), name="client-instances"),
    path("client/<str:client_id>/switches", views.ClientSwitchesApi.as_view(), name="client-switches"),
    path("client/<str:client_id>/decisions", views.ClientDecisionsApi.as_view(), name="client-decisions"),
    path("client/<str:client_id>/replicas", views.ClientReplicasApi.as_view(), name="client-replicas"),
    path("client/<str:client_id>/tokens", views.ClientTokensApi.as_view(), name="client-tokens"),
    path("client/<str:client_id>/tokens/<str:token_id>/rotate", views.ClientTokenRotateApi.as_view(),
         name="client-token-rotate"),
    path("client/<str:client_id>/tokens/<str:token_id>", views.ClientTokenApi.as_view(), name="client-token"),
    path("client/<str:client_id>/audit", views.ClientAuditApi.as_view(), name="client-audit"),
    path("client/<str:client_id>/events", views.ClientEventsApi.as_view(), name="client-events"),
    path("client/<str:client_id>", views.ClientStatsApi.as_view(), name="client-stats"),
]
