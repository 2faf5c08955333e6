"""Django's MySQL backend plus a per-process, per-alias circuit breaker on connecting.

Why: the connect/read/write timeouts (DB_*_TIMEOUT) bound one wait, but under steady traffic every
worker thread would still spend its life waiting on a dead or hung database, and `/health` or a 404
would queue behind them. After a failed connect, or a statement or ping on a kept connection that got
no answer, the breaker is open for a short cool-off (2 s): new connections fail at once (503 with
Retry-After) and kept ones are dropped before use; then exactly one request per process probes, the
others still fail fast, and the first successful probe closes it again. So once the breaker is open
at most one request per process waits on the database, and the server recovers by itself. Requests
already waiting when the database hangs wait at most DB_READ_TIMEOUT (bench/db_faults.py;
docs/SECURITY.md)."""
import threading
import time

from django.db.backends.mysql import base

Database = base.Database
LOST_CONNECTION = 2013  # CR_SERVER_LOST


class CircuitBreaker:
    def __init__(self, cooldown: float):
        self.cooldown = cooldown
        self.lock = threading.Lock()
        self.open_until: float | None = None  # None: closed
        self.probing = False

    def before_connect(self) -> bool:
        """True when this caller may try to connect (closed, or it is the one probe)."""
        with self.lock:
            if self.open_until is None:
                return True
            if time.monotonic() < self.open_until or self.probing:
                return False
            self.probing = True
            return True

    def failure(self) -> None:
        with self.lock:
            self.open_until = time.monotonic() + self.cooldown
            self.probing = False

    def success(self) -> None:
        with self.lock:
            self.open_until = None
            self.probing = False

    @property
    def is_open(self) -> bool:
        return self.open_until is not None


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(alias: str, cooldown: float) -> CircuitBreaker:
    with _breakers_lock:
        return _breakers.setdefault(alias, CircuitBreaker(cooldown))


class BreakerCursorWrapper(base.CursorWrapper):
    """A statement that got no answer within DB_READ_TIMEOUT (2013) opens the breaker, so the other
    threads stop sending work to a hung database and this connection is not pinged again."""

    def __init__(self, cursor, breaker: CircuitBreaker):
        super().__init__(cursor)
        self.breaker = breaker

    def execute(self, query, args=None):
        try:
            return super().execute(query, args)
        except Database.OperationalError as exc:
            if exc.args and exc.args[0] == LOST_CONNECTION:
                self.breaker.failure()
            raise

    def executemany(self, query, args):
        try:
            return super().executemany(query, args)
        except Database.OperationalError as exc:
            if exc.args and exc.args[0] == LOST_CONNECTION:
                self.breaker.failure()
            raise


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def breaker(self) -> CircuitBreaker:
        cooldown = float(self.settings_dict.get("BREAKER_COOLDOWN", 2))
        return breaker_for(self.alias, cooldown)

    def close_if_unusable_or_obsolete(self):
        # Called at the start and end of every request. A kept connection to a database that just
        # failed is most likely dead too: drop it, so this request reconnects (fails fast, or probes).
        if self.connection is not None and self.breaker.is_open and not self.in_atomic_block:
            self.close()
            return
        super().close_if_unusable_or_obsolete()

    def create_cursor(self, name=None):
        return BreakerCursorWrapper(self.connection.cursor(), self.breaker)

    def is_usable(self):
        # While the breaker is open, do not spend DB_READ_TIMEOUT pinging a kept connection that is
        # most likely dead too: drop it, and the reconnect fails fast (or is the one probe).
        if self.breaker.is_open:
            return False
        try:
            self.connection.ping()
        except Database.Error as exc:
            # 2013: no answer within DB_READ_TIMEOUT (hung), unlike 2006 for a connection the server
            # closed when idle, which is normal and just reconnects.
            if exc.args and exc.args[0] == LOST_CONNECTION:
                self.breaker.failure()
            return False
        return True

    def get_new_connection(self, conn_params):
        breaker = self.breaker
        if not breaker.before_connect():
            # Django wraps this into django.db.OperationalError, which answers 503.
            raise Database.OperationalError(2003, "Database unavailable (circuit open after a failed connect).")
        try:
            connection = super().get_new_connection(conn_params)
        except (Database.OperationalError, Database.InterfaceError):
            breaker.failure()
            raise
        except BaseException:
            breaker.success()  # not a connectivity problem; let the next caller try
            raise
        breaker.success()
        return connection
