"""`scripts/run` (what `make run` runs) for real: on a free port with its own var directory it serves
/health and the admin's CSS, prints the same demo token on a second start, keeps gunicorn's control
socket in its var directory, and a SIGTERM stops every process it started within 10 s."""
import os
import re
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 120  # seconds: migrating a new SQLite database is the slow part
STOP_DEADLINE = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> set[int]:
    """Every live descendant of pid (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Run:
    def __init__(self, var_dir: Path, port: int):
        env = {k: v for k, v in os.environ.items()
               if k not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "TEST_DATABASE_NAME"}}
        env.update(SPOTBACKEND_VAR_DIR=str(var_dir), PORT=str(port))
        self.port = port
        self.log = open(var_dir.parent / f"run-{port}-{time.monotonic_ns()}.log", "w+")
        self.proc = subprocess.Popen([str(ROOT / "scripts" / "run")], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def wait_for(self, pattern: str) -> re.Match:
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output(), re.M)
            if match:
                return match
            assert self.proc.poll() is None, f"scripts/run exited {self.proc.returncode}:\n{self.output()[-4000:]}"
            time.sleep(0.2)  # polling interval; the deadline bounds the wait
        pytest.fail(f"no {pattern!r} within {START_DEADLINE}s:\n{self.output()[-4000:]}")

    def get(self, path: str):
        return urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10)

    def stop_and_check_nothing_left(self):
        started = _children(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_DEADLINE
        try:
            self.proc.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            pass
        while time.monotonic() < deadline and any(_alive(p) for p in started):
            time.sleep(0.1)
        left = [p for p in started if _alive(p)]
        assert self.proc.poll() is not None and not left, f"still running {STOP_DEADLINE}s after SIGTERM: {left}"
        return started

    def kill(self):
        if self.proc.poll() is None:
            for pid in _children(self.proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.mark.live
def test_make_run_serves_styled_admin_keeps_the_token_and_stops_cleanly(tmp_path):
    var_dir = tmp_path / "var"
    run = Run(var_dir, _free_port())
    try:
        token = run.wait_for(r"^Demo client token: (\S+)$").group(1)
        run.wait_for(r"Listening at: http://0\.0\.0\.0:%d" % run.port)
        deadline = time.monotonic() + START_DEADLINE
        while True:
            try:
                health = run.get("/health")
                break
            except OSError:
                assert time.monotonic() < deadline, run.output()[-4000:]
                time.sleep(0.2)
        assert health.status == 200
        css = run.get("/static/admin/css/base.css")
        assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
        # Gunicorn's control socket is this instance's own, not the user's shared ~/.gunicorn one.
        run.wait_for(r"Control socket listening at " + re.escape(str(var_dir / "gunicorn.ctl")))
        assert stat.S_IMODE((var_dir / "demo_token").stat().st_mode) == 0o600
        assert stat.S_IMODE((var_dir / "secret_key").stat().st_mode) == 0o600
        started = run.stop_and_check_nothing_left()
        assert len(started) >= 4  # gunicorn master and workers, worker, beat
    finally:
        run.kill()

    again = Run(var_dir, _free_port())
    try:
        assert again.wait_for(r"^Demo client token: (\S+)$").group(1) == token
        again.stop_and_check_nothing_left()  # also while still starting
    finally:
        again.kill()
