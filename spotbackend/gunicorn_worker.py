"""Gunicorn's gthread worker with urgent requests first (docs/PERFORMANCE.md, "Termination notices"),
and a lingering close that never stalls the worker (docs/PERFORMANCE.md, "Closing connections").

A spot termination notice gives its agent two minutes; a heartbeat can wait a few milliseconds more.
The gthread worker hands each connection to a thread pool whose queue is first come, first served, so
when a worker is busy a notice waits behind every heartbeat queued before it. `UrgentFirstWorker` is
that worker with one change: its pool's queue serves requests for the urgent paths (a termination
notice, a rebalance recommendation) before the others, in arrival order within each class. The path
is read by peeking at the request line already received on the socket (nothing is consumed); a
connection whose request has not arrived yet, or is encrypted, counts as ordinary.

After a response that closes its connection (every agent call: a new connection each), gthread
half-closes the socket and waits for the client to close its side before closing it (RFC 9112 section
9.6: so that unread bytes from the client do not turn the close into a reset). gunicorn 27 does that
wait in the worker's main thread, which accepts and dispatches every connection of the worker: each
answer held the whole worker for one round trip of its client, and a client that never closes held it
for two seconds. `UrgentFirstWorker` keeps the same lingering close, but waits in the worker's poller:
the socket is half-closed at once, drained when readable, and closed at the client's end of stream,
after `LINGER_MAX_DRAIN` bytes, or after `LINGER_SECONDS` (gunicorn's own limits); at most
`LINGER_MAX_CONNS` sockets linger, the oldest is closed first.

Selected in gunicorn.conf.py (`worker_class`); `threads` and everything else are gthread's."""
import itertools
import queue
import selectors
import socket
import threading
import time
from concurrent import futures
from functools import partial

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

URGENT_PATHS = (b"/termination-imminent", b"/rebalance-recommendation")
URGENT, ORDINARY, STOP = 0, 1, 2
_PEEK = 2048  # enough for any request line an agent sends


def request_priority(sock) -> int | None:
    """URGENT when the request line waiting on `sock` names an urgent path, ORDINARY for any other
    request, None when nothing has arrived yet (or `sock` is no socket)."""
    try:
        head = sock.recv(_PEEK, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None
    except (OSError, AttributeError, TypeError, ValueError):  # closed, not a socket: nothing to wait for
        return ORDINARY
    if not head:
        return ORDINARY  # the client closed: whoever takes it finds out at once
    line = head.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) < 3:
        # Not a whole request line yet, or not HTTP/1 in clear text (TLS): ordinary once it is long
        return None if len(head) < _PEEK and b"\n" not in head and head[:1].isalpha() else ORDINARY
    return URGENT if parts[1].split(b"?", 1)[0].endswith(URGENT_PATHS) else ORDINARY


def _socket_of(item):
    """The connection's socket of a queued `_WorkItem` (the worker submits `handle(conn)`), or None."""
    args = getattr(item, "args", None)
    return getattr(args[0], "sock", None) if args else None


class PriorityQueue:
    """The work queue ThreadPoolExecutor uses (put, get, get_nowait): urgent requests first, arrival
    order otherwise. A connection whose request had not arrived when it was queued is looked at again
    whenever a thread takes work, so by the time it waits behind others its class is usually known; until
    then it counts as ordinary. A `None` (the executor's stop signal) goes after all work."""

    def __init__(self):
        self._items: list[list] = []  # [priority or None (not known yet), arrival, item]
        self._order = itertools.count()
        self._ready = threading.Condition()

    def put(self, item, block=True, timeout=None) -> None:
        priority = STOP if item is None else request_priority(_socket_of(item))
        with self._ready:
            self._items.append([priority, next(self._order), item])
            self._ready.notify()

    def _take(self):
        best = None
        for entry in self._items:
            if entry[0] is None:
                entry[0] = request_priority(_socket_of(entry[2]))
            key = (ORDINARY if entry[0] is None else entry[0], entry[1])
            if best is None or key < best[0]:
                best = (key, entry)
        self._items.remove(best[1])
        return best[1][2]

    def get(self, block=True, timeout=None):
        with self._ready:
            if not block:
                if not self._items:
                    raise queue.Empty
            elif not self._ready.wait_for(lambda: self._items, timeout):
                raise queue.Empty
            return self._take()

    def get_nowait(self):
        return self.get(block=False)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class PriorityThreadPool(futures.ThreadPoolExecutor):
    """A ThreadPoolExecutor whose queued connections are served urgent first (PriorityQueue)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._work_queue = PriorityQueue()  # no thread has started yet: they start on the first submit


LINGER_SECONDS = 2.0  # as gunicorn's util.close_graceful
LINGER_MAX_DRAIN = 65536
LINGER_MAX_CONNS = 1000


class UrgentFirstWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Half-closed sockets waiting for their client's end of stream: socket -> [deadline, bytes drained].
        # Every deadline is now + LINGER_SECONDS, so insertion order is deadline order.
        self.lingering = {}

    def get_thread_pool(self):
        return PriorityThreadPool(max_workers=self.cfg.threads)

    def finish_request(self, conn, fs):
        # gthread closes a finished connection from here (the main thread) with conn.close(graceful=True).
        if "close" not in vars(conn) and not self.cfg.is_ssl:
            conn.close = partial(self.close_conn, conn)
        super().finish_request(conn, fs)

    def close_conn(self, conn, graceful=False) -> None:
        """Close `conn`; a graceful close lingers in the poller instead of blocking this thread."""
        vars(conn).pop("close", None)  # the conn -> partial -> conn cycle: freed by reference counting
        sock = conn.sock
        if not graceful:
            util.close(sock)
            return
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, self._on_lingering_readable)
        except (OSError, ValueError, KeyError):
            util.close(sock)
            return
        if len(self.lingering) >= LINGER_MAX_CONNS:
            self._stop_lingering(next(iter(self.lingering)))
        self.lingering[sock] = [time.monotonic() + LINGER_SECONDS, 0]

    def _on_lingering_readable(self, sock) -> None:
        entry = self.lingering.get(sock)
        if entry is None:  # not lingering any more: never leave it registered (it would wake the loop)
            self._stop_lingering(sock)
            return
        try:
            while entry[1] < LINGER_MAX_DRAIN:
                data = sock.recv(4096)
                if not data:
                    break  # the client closed its side
                entry[1] += len(data)
        except BlockingIOError:
            return  # drained for now; the client has not closed yet
        except OSError:
            pass
        self._stop_lingering(sock)

    def _stop_lingering(self, sock) -> None:
        self.lingering.pop(sock, None)
        try:
            self.poller.unregister(sock)
        except (OSError, ValueError, KeyError):
            pass
        util.close(sock)

    def murder_pending(self):
        # gthread's loop calls this after every wake-up (at least once a second): lingering sockets past
        # their deadline are closed here too.
        super().murder_pending()
        now = time.monotonic()
        while self.lingering:
            sock = next(iter(self.lingering))
            if self.lingering[sock][0] > now:
                break
            self._stop_lingering(sock)

    def murder_keepalived(self, force=False):
        super().murder_keepalived(force)
        if force:  # the worker is stopping
            while self.lingering:
                self._stop_lingering(next(iter(self.lingering)))
