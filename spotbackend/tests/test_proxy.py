"""The proxy's configuration (deploy/nginx/) is valid for nginx (`nginx -t`, the Debian package that
`make test` installs), and docker-compose.yml puts it in front of gunicorn."""
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from deploy.nginx import local

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "nginx"


def test_the_production_config_passes_nginx_t(tmp_path):
    """deploy/nginx/nginx.conf as shipped (paths moved into tmp_path, compose names on loopback)."""
    out = local.check_production(tmp_path)
    assert out.returncode == 0, out.stderr
    assert "syntax is ok" in out.stderr and "test is successful" in out.stderr


def test_the_generated_private_config_passes_nginx_t(tmp_path):
    (tmp_path / "temp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(local.render(prefix=tmp_path, port=local.free_port(), web=["127.0.0.1:1", "127.0.0.1:2"],
                                 urgent=["127.0.0.1:3"]))
    out = local.check(conf, tmp_path)
    assert out.returncode == 0, out.stderr


def test_a_broken_config_fails_nginx_t(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(local.render(prefix=tmp_path, port=local.free_port(), web=["127.0.0.1:1"],
                                 extra_server="        proxy_next_upstream sometimes;"))
    (tmp_path / "temp").mkdir()
    assert local.check(conf, tmp_path).returncode != 0


def test_the_proxy_settings_match_the_app():
    proxy = (DEPLOY / "proxy.conf").read_text()
    from django.conf import settings

    size = int(re.search(r"client_max_body_size (\d+)m;", proxy).group(1)) * 1024 * 1024
    assert size == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    http = (DEPLOY / "http.conf").read_text()
    # The same request id rule as spotbackend/logs.py.
    from spotbackend import logs

    assert logs.REQUEST_ID_RE.pattern.strip("^$") in http
    for code in (400, 408, 413, 414, 502, 503, 504):
        assert f"error_page {code} " in proxy and f"return {code} '{{\"success\": false" in proxy, code
    assert "proxy_request_buffering on;" in proxy and "proxy_buffering on;" in proxy
    assert 'proxy_set_header Connection "";' in proxy and "proxy_http_version 1.1;" in http
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert nginx.count("keepalive ") >= 2 and "max_fails=" in nginx


def test_compose_publishes_only_the_proxy():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"proxy"}
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:") and "./deploy/nginx:/etc/nginx/spotbackend:ro" in proxy["volumes"]
    assert "/etc/nginx/spotbackend/nginx.conf" in proxy["command"]
    for name in ("web", "web-urgent", "worker", "beat"):
        assert services[name]["environment"]["NUM_PROXIES"] == "1", name
    for name in ("web", "web-urgent"):
        assert "gthread" in services[name]["command"], name
    assert "spotbackend.beat:LockedDatabaseScheduler" in services["beat"]["command"]


def test_nginx_is_installed_for_the_tests():
    """`make test` (scripts/test) installs nginx: the live proxy tests never skip for want of it."""
    assert shutil.which("nginx") or Path("/usr/sbin/nginx").exists()
    assert "nginx" in (ROOT / "scripts" / "test").read_text()
    version = subprocess.run([local.nginx_binary(), "-v"], capture_output=True, text=True)
    assert version.returncode == 0 and "nginx/" in version.stderr
