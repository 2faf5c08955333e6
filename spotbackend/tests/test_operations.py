"""Operations promises (docs/OPERATIONS.md): deploys fail safe, /health names what is down, the demo token
survives restarts, every publisher creates the filesystem broker's folders, the Docker files hold."""
import os
import re
import runpy
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from clients.models import Client, token_hash
from clients.services import client_token_rotate

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "spotbackend" / "settings.py"
DEV_KEY = "dev-insecure-spotbackend-key-change-me"
DEPLOY_VARIABLES = ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "CSRF_TRUSTED_ORIGINS",
                    "SECURE_PROXY_SSL_HEADER", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
                    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_COOKIES")


def _clean_env(tmp_path, **extra) -> dict:
    """The environment of a fresh process: nothing from this test run's own configuration."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "TEST_DATABASE_NAME"}}
    env["SPOTBACKEND_VAR_DIR"] = str(tmp_path)
    env.update(extra)
    return env


def _load_settings(monkeypatch, tmp_path, **env) -> dict:
    """Execute settings.py afresh with exactly these deploy variables."""
    for name in DEPLOY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPOTBACKEND_VAR_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS))


# --- deploy safety -------------------------------------------------------------------------------

@pytest.mark.parametrize("key", [None, DEV_KEY])
def test_production_refuses_to_start_without_a_real_secret_key(monkeypatch, tmp_path, key):
    env = {"DEBUG": "false"} | ({"SECRET_KEY": key} if key else {})
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        _load_settings(monkeypatch, tmp_path, **env)


def test_debug_allows_the_development_key(monkeypatch, tmp_path):
    assert _load_settings(monkeypatch, tmp_path, DEBUG="true")["SECRET_KEY"] == DEV_KEY


def test_key_generated_by_make_run_is_used(monkeypatch, tmp_path):
    (tmp_path / "secret_key").write_text("a-random-key-from-make-run\n")
    assert _load_settings(monkeypatch, tmp_path)["SECRET_KEY"] == "a-random-key-from-make-run"


def test_allowed_hosts_has_no_wildcard_default_in_production(monkeypatch, tmp_path):
    s = _load_settings(monkeypatch, tmp_path, SECRET_KEY="k" * 60)
    assert s["ALLOWED_HOSTS"] == []
    s = _load_settings(monkeypatch, tmp_path, SECRET_KEY="k" * 60, ALLOWED_HOSTS="spot.example.com,api.example.com")
    assert s["ALLOWED_HOSTS"] == ["spot.example.com", "api.example.com"]


def test_security_settings_follow_the_environment(monkeypatch, tmp_path):
    s = _load_settings(monkeypatch, tmp_path, SECRET_KEY="k" * 60, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
                       SECURE_HSTS_SECONDS="3600", SECURE_COOKIES="true", SECURE_SSL_REDIRECT="true")
    assert s["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert s["SECURE_HSTS_SECONDS"] == 3600 and s["SECURE_SSL_REDIRECT"] is True
    assert s["SESSION_COOKIE_SECURE"] is True and s["CSRF_COOKIE_SECURE"] is True
    s = _load_settings(monkeypatch, tmp_path, SECRET_KEY="k" * 60)
    assert "SECURE_PROXY_SSL_HEADER" not in s and s["SECURE_HSTS_SECONDS"] == 0 and s["SESSION_COOKIE_SECURE"] is False


def _documented_production_env() -> dict:
    """The `export NAME=value` lines of the production block in docs/OPERATIONS.md."""
    text = (ROOT / "docs" / "OPERATIONS.md").read_text()
    block = re.search(r"<!-- production-settings -->\s*```sh\n(.*?)```", text, re.S)
    assert block, "docs/OPERATIONS.md lost its production-settings block"
    return dict(re.findall(r"^export (\w+)=(\S+)", block.group(1), re.M))


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    env = _documented_production_env()
    assert {"SECRET_KEY", "ALLOWED_HOSTS", "SECURE_HSTS_SECONDS", "SECURE_COOKIES", "SECURE_PROXY_SSL_HEADER"} <= set(env)
    env["SECRET_KEY"] = "x9" * 30 + "Qz-_"  # the doc shows how to generate one; any long random string
    env.pop("DATABASE_URL", None)  # the check needs no database server
    env.pop("REDIS_URL", None)
    r = subprocess.run([sys.executable, "manage.py", "check", "--deploy"],
                       cwd=ROOT, env=_clean_env(tmp_path, **env), capture_output=True, text=True, timeout=120)
    output = r.stdout + r.stderr
    assert r.returncode == 0, output
    # Every deployment check (security.*) passes; other apps' warnings (the API schema's) are not ours here.
    assert "(security." not in output and "(django.security" not in output, output


def test_https_redirect_spares_health(settings, client, db):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/health").status_code == 200
    assert client.get("/api/client/validate").status_code == 301


# /health and its probes: spotbackend/tests/test_health.py


# --- demo client ---------------------------------------------------------------------------------

def _demo_token(capsys) -> str:
    call_command("bootstrap_demo")
    return re.search(r"^Demo client token: (\S+)$", capsys.readouterr().out, re.M).group(1)


@pytest.mark.django_db
def test_demo_token_is_kept_across_restarts(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    first = _demo_token(capsys)
    assert _demo_token(capsys) == first
    path = tmp_path / "demo_token"
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    client = Client.objects.get(email="demo@example.com")
    assert client.token_hash == token_hash(first) and Client.objects.filter(email="demo@example.com").count() == 1
    # Staff rotated it in the admin: the next start issues and keeps a new one.
    client_token_rotate(client=client)
    second = _demo_token(capsys)
    assert second != first and Client.objects.get(pk=client.pk).token_hash == token_hash(second)
    assert _demo_token(capsys) == second


# --- embedded broker -----------------------------------------------------------------------------

def test_a_publisher_outside_make_run_creates_the_broker_folders(tmp_path):
    """A task published from a `manage.py` process on a fresh var directory (no worker ever ran)."""
    code = "from spotbackend.celery import app; app.send_task('agents.periodic.stale_agents_sweep')"
    r = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT,
                       env=_clean_env(tmp_path, DEBUG="true"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    messages = list((tmp_path / "broker" / "out").iterdir())
    assert len(messages) == 1 and messages[0].name.endswith(".msg")
    assert (tmp_path / "broker" / "processed").is_dir() and (tmp_path / "broker" / "control").is_dir()


# --- Docker --------------------------------------------------------------------------------------

def test_docker_compose_structure():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"migrate", "web", "worker", "beat", "db", "redis"} <= set(services)

    def cmd(name):
        c = services[name]["command"]
        return " ".join(c) if isinstance(c, list) else c

    assert "manage.py migrate" in cmd("migrate") and services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "gunicorn" in cmd("web") and "migrate" not in cmd("web")
    assert "celery" in cmd("worker") and " worker" in cmd("worker")
    assert "celery" in cmd("beat") and " beat" in cmd("beat") and "DatabaseScheduler" in cmd("beat")
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("mysql://") and "@db:" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?"), "no default key in production"
        assert "*" not in env["ALLOWED_HOSTS"]
    assert services["db"]["image"].startswith("mariadb:")
    for name in ("db", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name


def test_docker_image_is_lean_and_unprivileged():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in {"root", "0"}
    assert "requirements-dev" not in dockerfile
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "var", ".git", ".env"} <= ignored and any("__pycache__" in i for i in ignored)
    production = (ROOT / "requirements.txt").read_text().lower()
    assert "pytest" not in production and "factory" not in production and "whitenoise==" in production
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()


def test_operations_settings_are_documented():
    env_example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    operations = (ROOT / "docs" / "OPERATIONS.md").read_text()
    for name in ["PORT", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SECURE_PROXY_SSL_HEADER",
                 "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
                 "SECURE_COOKIES", "WEB_CONCURRENCY", "TEST_DATABASE_URL", "TEST_REDIS_URL",
                 "SPOTBACKEND_VAR_DIR"]:
        assert name in env_example and name in readme and name in operations, name
    assert "../shared" not in readme
