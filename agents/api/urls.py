from django.urls import path

from agents.api import dashboard, interruptions, replicas, views
from spotbackend.hotroutes import hot_route

# Literal routes before <agent_id> routes; no trailing slashes (docs/API.md §0).
urlpatterns = [
    path("agents/register", views.RegisterApi.as_view(), name="agent-register"),
    # The frequent calls: the ordinary call skips DRF's dispatch (spotbackend/hotroutes.py).
    path("agents/<str:agent_id>/heartbeat", hot_route(views.HeartbeatApi, views.heartbeat_hot, method="POST",
                                                      with_body=True), name="agent-heartbeat"),
    path("agents/<str:agent_id>/config", hot_route(views.ConfigApi, views.config_answer, method="GET"),
         name="agent-config"),
    path("agents/<str:agent_id>/pending-commands",
         hot_route(views.PendingCommandsApi, views.pending_commands_answer, method="GET"),
         name="agent-pending-commands"),
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
    path("agents/<str:agent_id>/pricing-report",
         hot_route(views.PricingReportApi, views.pricing_hot, method="POST", with_body=True),
         name="agent-pricing-report"),
    path("agents/<str:agent_id>/switch-report", views.SwitchReportApi.as_view(), name="agent-switch-report"),
    path(
        "agents/<str:agent_id>/issue-switch-command",
        dashboard.IssueSwitchCommandApi.as_view(),
        name="agent-issue-switch-command",
    ),
    path(
        "agents/<str:agent_id>/termination-imminent",
        hot_route(interruptions.TerminationImminentApi, interruptions.termination_hot, method="POST", with_body=True),
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
