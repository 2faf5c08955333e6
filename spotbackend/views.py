"""`/health` and its probes live in spotbackend/health.py; kept importable here."""
from spotbackend.health import CHECK, health, health_live, health_ready  # noqa: F401
