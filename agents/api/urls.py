from django.urls import path

from agents.api import dashboard, interruptions, replicas, views

# Literal routes before <agent_id> routes; no trailing slashes (docs/API.md §0).
urlpatterns = [
    path("agents/register", views.RegisterApi.as_view(), name="agent-register"),
    path("agents/<str:agent_id>/heartbeat", views.HeartbeatApi.as_view(), name="agent-heartbeat"),
    path("agents/<str:agent_id>/config", views.ConfigApi.as_view(), name="agent-config"),
    path("agents/<str:agent_id>/pending-commands", views.PendingCommandsApi.as_view(), name="agent-pending-commands"),
    path(
        "agents/<str:agent_id>/commands/<str:command_id>/executed",
        views.CommandExecutedApi.as_view(),
        name="agent-command-executed",
    ),
    path(
        "agents/<str:agent_id>/mark-command-executed",
        views.MarkCommandExecutedApi.as_view(),
        name="agent-mark-command-executed",
    ),
    path("agents/<str:agent_id>/pricing-report", views.PricingReportApi.as_view(), name="agent-pricing-report"),
    path("agents/<str:agent_id>/switch-report", views.SwitchReportApi.as_view(), name="agent-switch-report"),
    path(
        "agents/<str:agent_id>/issue-switch-command",
        dashboard.IssueSwitchCommandApi.as_view(),
        name="agent-issue-switch-command",
    ),
    path(
        "agents/<str:agent_id>/termination-imminent",
        interruptions.TerminationImminentApi.as_view(),
        name="agent-termination-imminent",
    ),
    path(
        "agents/<str:agent_id>/rebalance-recommendation",
        interruptions.RebalanceRecommendationApi.as_view(),
        name="agent-rebalance-recommendation",
    ),
    path("agents/<str:agent_id>/replicas", replicas.ReplicasApi.as_view(), name="agent-replicas"),
    path(
        "agents/<str:agent_id>/create-emergency-replica",
        replicas.CreateEmergencyReplicaApi.as_view(),
        name="agent-create-emergency-replica",
    ),
    path("agents/<str:agent_id>/replica-config", replicas.ReplicaConfigApi.as_view(), name="agent-replica-config"),
    path(
        "agents/<str:agent_id>/replicas/<str:replica_id>/promote",
        replicas.ReplicaPromoteApi.as_view(),
        name="agent-replica-promote",
    ),
    path(
        "agents/<str:agent_id>/replicas/<str:replica_id>/status",
        replicas.ReplicaStatusApi.as_view(),
        name="agent-replica-status",
    ),
    path("agents/<str:agent_id>/replicas/<str:replica_id>", replicas.ReplicaDetailApi.as_view(), name="agent-replica"),
    path("agents/<str:agent_id>", views.AgentDetailApi.as_view(), name="agent-detail"),
]
