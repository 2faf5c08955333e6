"""Render deploy/grafana/spotbackend.json with real values into docs/images/grafana-dashboard.png.

A local run, all on loopback and private: a throwaway MariaDB database (dashboard_shot on 127.0.0.1:3306),
gunicorn (2 workers, METRICS_TOKEN set), a Celery worker and beat (embedded filesystem broker), and a
private Prometheus (Debian's `prometheus`) that scrapes /metrics every 5 s with alerts.yml loaded. Agents
are registered and replayed for a few minutes (heartbeats, termination notices and rebalance
recommendations, bad tokens, unknown agents; a third of them go silent; the webhook is a closed port so
the outbox fills up). Then every panel's PromQL (exactly as in the dashboard, $__rate_interval = 1m) is
evaluated by that Prometheus and drawn by a small HTML/SVG page in Grafana's dark-theme layout (24-column
grid, the panels' gridPos), which headless Chromium turns into a PNG. Grafana itself is not used (no
package of it here); the numbers are Prometheus's answers to the dashboard's queries.

Usage: python deploy/grafana/screenshot.py [--minutes 5] [--out docs/images/grafana-dashboard.png]
Needs: prometheus and chromium (apt install prometheus chromium), MariaDB on 127.0.0.1:3306.
"""
import argparse
import html
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import MySQLdb
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from agents.tests.payloads import heartbeat, register_v4  # noqa: E402

DB = "dashboard_shot"
DASHBOARD = ROOT / "deploy" / "grafana" / "spotbackend.json"
PALETTE = ["#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2", "#B877D9", "#FADE2A",
           "#56A64B", "#E0B400", "#3274D9", "#FA6400"]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(url, headers=None, deadline=90):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if requests.get(url, headers=headers, timeout=5).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)  # polling interval while the server starts
    raise SystemExit(f"{url} did not come up")


class Stack:
    def __init__(self, minutes: float):
        self.minutes = minutes
        self.var = ROOT / "var" / "dashboard-shot"
        self.procs: list[subprocess.Popen] = []
        self.web_port, self.prom_port = free_port(), free_port()
        self.metrics_token = secrets.token_urlsafe(24)
        self.stop_load = threading.Event()

    def start(self):
        shutil.rmtree(self.var, ignore_errors=True)
        (self.var / "prometheus").mkdir(parents=True)
        admin = MySQLdb.connect(host="127.0.0.1", user="root")
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
        admin.cursor().execute(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4")
        self.env = {**os.environ, "DATABASE_URL": f"mysql://root@127.0.0.1:3306/{DB}", "REDIS_URL": "",
                    "SPOTBACKEND_VAR_DIR": str(self.var), "ALLOWED_HOSTS": "127.0.0.1",
                    "SECRET_KEY": "dashboard-shot-" + "k" * 40, "METRICS_TOKEN": self.metrics_token,
                    "PROMETHEUS_MULTIPROC_DIR": str(self.var / "prometheus"), "WEB_CONCURRENCY": "2",
                    "TERMINATION_NOTIFICATION_WEBHOOK": f"http://127.0.0.1:{free_port()}/hook",
                    "AGENT_HEARTBEAT_TIMEOUT": "60", "PORT": str(self.web_port)}
        self.env.pop("TEST_DATABASE_NAME", None)
        py = sys.executable
        subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env, check=True)
        out = subprocess.run([py, "manage.py", "create_client", "--name", "Dashboard", "--email",
                              "dash@example.com"], cwd=ROOT, env=self.env, check=True, capture_output=True,
                             text=True)
        self.token = out.stdout.strip().splitlines()[-1].strip()
        log = open(self.var / "stack.log", "w")
        for cmd in (
            [py, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.web_port}",
             "--access-logfile", "/dev/null", "spotbackend.wsgi:application"],
            [py, "-m", "celery", "-A", "spotbackend", "worker", "--pool", "threads", "--concurrency", "4",
             "--loglevel", "WARNING"],
            [py, "-m", "celery", "-A", "spotbackend", "beat", "--loglevel", "WARNING", "--schedule",
             str(self.var / "celerybeat-schedule")],
        ):
            self.procs.append(subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))
        wait_http(f"http://127.0.0.1:{self.web_port}/health/live")
        token_file = self.var / "metrics_token"
        token_file.write_text(self.metrics_token)
        (self.var / "prometheus.yml").write_text(json.dumps({
            "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
            "rule_files": [str(ROOT / "deploy" / "prometheus" / "alerts.yml")],
            "scrape_configs": [{"job_name": "spotbackend", "metrics_path": "/metrics",
                                "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                                "static_configs": [{"targets": [f"127.0.0.1:{self.web_port}"]}]}],
        }))
        self.procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={self.var / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.var / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.prom_port}"],
            cwd=self.var, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        wait_http(f"http://127.0.0.1:{self.prom_port}/-/ready")

    def stop(self):
        self.stop_load.set()
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        admin = MySQLdb.connect(host="127.0.0.1", user="root")
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")

    # --- the agents -------------------------------------------------------------------------------
    def load(self):
        base = f"http://127.0.0.1:{self.web_port}"
        auth = {"Authorization": f"Bearer {self.token}"}
        plain = requests.Session()

        class session:  # keep-alive, and a new connection when the server closed an idle one
            @staticmethod
            def post(url, **kw):
                return session.request("POST", url, **kw)

            @staticmethod
            def get(url, **kw):
                return session.request("GET", url, **kw)

            @staticmethod
            def request(method, url, **kw):
                try:
                    return plain.request(method, url, **kw)
                except requests.ConnectionError:
                    return requests.request(method, url, **kw)

        agents = []
        for i in range(60):
            instance = f"i-{i:017x}"
            r = session.post(f"{base}/api/agents/register", json=register_v4(
                token=self.token, instance_id=instance, logical_agent_id=f"web-{i}",
                az=("us-east-1a", "us-east-1b")[i % 2]), headers=auth, timeout=30)
            r.raise_for_status()
            agents.append((r.json()["agent_id"], instance))
        rng = random.Random(19)
        started = time.monotonic()
        end = started + self.minutes * 60
        silent = set(range(40, 60))  # these stop after a third of the run
        noticed = 0
        while time.monotonic() < end and not self.stop_load.is_set():
            elapsed = time.monotonic() - started
            for i, (agent_id, instance) in enumerate(agents):
                if i in silent and elapsed > self.minutes * 20:
                    continue
                session.post(f"{base}/api/agents/{agent_id}/heartbeat", json=heartbeat(instance_id=instance),
                             headers=auth, timeout=30)
                if rng.random() < 0.3:
                    session.get(f"{base}/api/agents/{agent_id}/pending-commands", headers=auth, timeout=30)
            if rng.random() < 0.5 and noticed < 25:
                agent_id, instance = agents[noticed]
                noticed += 1
                session.post(f"{base}/api/agents/{agent_id}/termination-imminent",
                             json={"instance_id": instance, "termination_time": "2030-01-01T00:02:00Z"},
                             headers=auth, timeout=30)
            if rng.random() < 0.3:
                agent_id, instance = agents[rng.randrange(30, 40)]
                session.post(f"{base}/api/agents/{agent_id}/rebalance-recommendation",
                             json={"instance_id": instance}, headers=auth, timeout=30)
            session.get(f"{base}/api/client/validate", headers={"Authorization": "Bearer sb_wrong"}, timeout=30)
            session.get(f"{base}/api/agents/no-such-agent/config", headers=auth, timeout=30)
            session.get(f"{base}/health", timeout=30)
            time.sleep(2)  # the agents' pace: one round of calls every ~2 s

    # --- the queries ------------------------------------------------------------------------------
    def query_range(self, expr, start, end, step=10):
        r = requests.get(f"http://127.0.0.1:{self.prom_port}/api/v1/query_range",
                         params={"query": expr, "start": start, "end": end, "step": step}, timeout=30)
        body = r.json()
        if body.get("status") != "success":
            raise SystemExit(f"query failed: {expr}\n{body}")
        return body["data"]["result"]


def fmt(value, unit):
    if value is None:
        return "No data"
    if unit == "s":
        if value < 1:
            return f"{value * 1000:.3g} ms"
        if value < 120:
            return f"{value:.3g} s"
        return f"{value / 60:.3g} min"
    if unit == "percentunit":
        return f"{value * 100:.3g}%"
    if unit == "reqps":
        return f"{value:.3g} req/s"
    if unit == "ops":
        return f"{value:.3g} ops/s"
    if value == int(value):
        return f"{int(value)}"
    return f"{value:.3g}"


def legend(fmt_string, labels):
    out = fmt_string
    for k, v in labels.items():
        out = out.replace("{{" + k + "}}", v)
    return out if "{{" not in out else json.dumps(labels)


def svg_series(series, unit, w, h, axes=True):
    """A Grafana-like line chart: [(name, [(t, v), ...]), ...] in a w x h box (a stat's sparkline: no axes)."""
    pad_l, pad_b, pad_t, pad_r = (64, 22, 6, 10) if axes else (0, 0, 2, 0)
    points = [(t, v) for _, pts in series for t, v in pts]
    if not points:
        return f'<div class="nodata" style="height:{h}px">No data</div>'
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    vmax = max(max(p[1] for p in points), 0)
    vmin = min(min(p[1] for p in points), 0)
    if vmax == vmin:
        vmax = vmin + 1
    vmax *= 1.1
    pw, ph = w - pad_l - pad_r, h - pad_b - pad_t

    def x(t):
        return pad_l + (t - t0) / max(t1 - t0, 1) * pw

    def y(v):
        return pad_t + ph - (v - vmin) / (vmax - vmin) * ph

    parts = [f'<svg width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">']
    for i in range(5 if axes else 0):
        v = vmin + (vmax - vmin) * i / 4
        parts.append(f'<line x1="{pad_l}" x2="{w - pad_r}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#2c3235"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="axis">'
                     f'{html.escape(fmt(v, unit))}</text>')
    for i in range(5 if axes else 0):
        t = t0 + (t1 - t0) * i / 4
        label = datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M:%S")
        anchor = "end" if i == 4 else "middle"
        parts.append(f'<text x="{x(t):.1f}" y="{h - 5}" text-anchor="{anchor}" class="axis">{label}</text>')
    for i, (_, pts) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{'M' if j == 0 else 'L'}{x(t):.1f},{y(v):.1f}" for j, (t, v) in enumerate(pts))
        area = path + f" L{x(pts[-1][0]):.1f},{y(max(vmin, 0)):.1f} L{x(pts[0][0]):.1f},{y(max(vmin, 0)):.1f} Z"
        parts.append(f'<path d="{area}" fill="{color}" fill-opacity="0.10" stroke="none"/>')
        parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def render(stack: Stack, start: float, end: float, out: Path):
    dash = json.loads(DASHBOARD.read_text())
    col, row_h, width = 1600 / 24, 30, 1600
    blocks = []
    height = 0
    for panel in dash["panels"]:
        g = panel["gridPos"]
        left, top = g["x"] * col, g["y"] * (row_h + 8)
        w, h = g["w"] * col - 8, g["h"] * (row_h + 8) - 8
        height = max(height, top + h + 8)
        if panel["type"] == "row":
            blocks.append(f'<div class="row" style="left:{left}px;top:{top}px;width:{w}px">'
                          f'&#9662; {html.escape(panel["title"])}</div>')
            continue
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
        series = []
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "1m")
            for result in stack.query_range(expr, start, end):
                pts = [(float(t), float(v)) for t, v in result["values"] if v not in ("NaN", "+Inf", "-Inf")]
                if pts:
                    series.append((legend(target.get("legendFormat", ""), result["metric"]), pts))
        series.sort(key=lambda s: s[0])
        body = ""
        if panel["type"] == "stat":
            last = series[0][1][-1][1] if series else None
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            color = steps[0]["color"]
            for step in steps[1:]:
                if last is not None and last >= step["value"]:
                    color = step["color"]
            colors = {"green": "#73BF69", "orange": "#FF9830", "red": "#F2495C"}
            spark = svg_series(series[:1], unit, int(w - 16), int(h - 78), axes=False) if series else ""
            body = (f'<div class="stat" style="color:{colors.get(color, color)}">{html.escape(fmt(last, unit))}</div>'
                    f'<div class="spark">{spark}</div>')
        else:
            chart_h = int(h - 34 - 18 * min(len(series), 4))
            body = svg_series(series, unit, int(w - 16), max(chart_h, 60))
            items = "".join(f'<span><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{html.escape(name)}</span>'
                            for i, (name, _) in enumerate(series[:12]))
            body += f'<div class="legend">{items}</div>'
        blocks.append(f'<div class="panel" style="left:{left}px;top:{top}px;width:{w}px;height:{h}px">'
                      f'<div class="title">{html.escape(panel["title"])}</div>{body}</div>')
    window = (f'{datetime.fromtimestamp(start, timezone.utc):%Y-%m-%d %H:%M} to '
              f'{datetime.fromtimestamp(end, timezone.utc):%H:%M} UTC')
    page = f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin:0; background:#111217; font-family: Inter, "DejaVu Sans", sans-serif; color:#ccccdc; }}
.top {{ height:48px; display:flex; align-items:center; padding:0 16px; font-size:18px; border-bottom:1px solid #2c3235; }}
.top small {{ margin-left:auto; font-size:12px; color:#8e8e8e; }}
.grid {{ position:relative; margin:8px; height:{height}px; width:{width}px; }}
.panel {{ position:absolute; background:#181b1f; border:1px solid #2c3235; border-radius:3px; overflow:hidden; }}
.row {{ position:absolute; font-size:15px; font-weight:500; padding:6px 4px; }}
.title {{ font-size:13px; font-weight:500; padding:6px 8px; }}
.panel svg {{ margin:0 8px; }}
.axis {{ fill:#8e8e8e; font-size:10px; }}
.legend {{ font-size:11px; padding:2px 8px; display:flex; flex-wrap:wrap; gap:4px 14px; }}
.legend i {{ display:inline-block; width:14px; height:4px; margin-right:5px; vertical-align:middle; }}
.stat {{ font-size:34px; font-weight:500; text-align:center; margin-top:4px; }}
.spark {{ opacity:.6 }}
.nodata {{ display:flex; align-items:center; justify-content:center; color:#8e8e8e; }}
</style></head><body>
<div class="top">{html.escape(dash["title"])}<small>{window} &middot; Prometheus: live local run &middot;
deploy/grafana/spotbackend.json</small></div>
<div class="grid">{"".join(blocks)}</div></body></html>"""
    page_file = stack.var / "dashboard.html"
    page_file.write_text(page)
    out.parent.mkdir(parents=True, exist_ok=True)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={width + 16},{int(height) + 64}", f"--screenshot={out}",
                    page_file.as_uri()], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"wrote {out}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "grafana-dashboard.png"))
    args = parser.parse_args()
    stack = Stack(args.minutes)
    try:
        stack.start()
        start = time.time()
        stack.load()
        time.sleep(15)  # the last scrapes and rule evaluations
        end = time.time()
        render(stack, start, end, Path(args.out))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
