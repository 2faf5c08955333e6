"""MySQL/MariaDB backend with a per-process circuit breaker (spotbackend/db/base.py)."""
