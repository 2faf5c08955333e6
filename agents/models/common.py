"""Shared building blocks of the agents app's models."""
from django.db import models
from django.db.models import Q

PRICE = {"max_digits": 12, "decimal_places": 6}
# The most replicas of one kind an agent may have: the dashboard's replica_count range and the ceiling
# on live replicas of one type (agents/services/replicas.py).
REPLICA_LIMIT = 5


def _in(field: str, choices) -> Q:
    return Q(**{f"{field}__in": [c for c, _ in choices.choices]})


class Mode(models.TextChoices):
    SPOT = "spot", "Spot"
    ONDEMAND = "ondemand", "On-demand"
    UNKNOWN = "unknown", "Unknown"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


