"""Gunicorn's gthread worker with urgent requests first (docs/PERFORMANCE.md, "Termination notices").

A spot termination notice gives its agent two minutes; a heartbeat can wait a few milliseconds more.
The gthread worker hands each connection to a thread pool whose queue is first come, first served, so
when a worker is busy a notice waits behind every heartbeat queued before it. `UrgentFirstWorker` is
that worker with one change: its pool's queue serves requests for the urgent paths (a termination
notice, a rebalance recommendation) before the others, in arrival order within each class. The path
is read by peeking at the request line already received on the socket (nothing is consumed); a
connection whose request has not arrived yet, or is encrypted, counts as ordinary.

Selected in gunicorn.conf.py (`worker_class`); `threads` and everything else are gthread's."""
import itertools
import queue
import socket
import threading
from concurrent import futures

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


class UrgentFirstWorker(ThreadWorker):
    def get_thread_pool(self):
        return PriorityThreadPool(max_workers=self.cfg.threads)
