"""spotbackend/gunicorn_worker.py: gunicorn's gthread worker serving termination notices and rebalance
recommendations before the other queued requests, and closing connections without stalling."""
import gc
import selectors
import socket
import time
import uuid
import weakref
from collections import deque
from functools import partial
from types import SimpleNamespace

import pytest

from spotbackend import gunicorn_worker
from spotbackend.gunicorn_worker import ORDINARY, URGENT, PriorityQueue, UrgentFirstWorker, request_priority
from spotbackend.tests.live import gunicorn


@pytest.fixture
def pairs():
    made = []

    def pair():
        made.append(socket.socketpair())
        return made[-1]

    yield pair
    for a, b in made:
        a.close()
        b.close()


@pytest.mark.parametrize("sent,expected", [
    (b"POST /api/agents/1/termination-imminent HTTP/1.1\r\nHost: x\r\n\r\n{}", URGENT),
    (b"POST /api/agents/1/rebalance-recommendation?x=1 HTTP/1.1\r\n", URGENT),
    (b"POST /api/agents/1/heartbeat HTTP/1.1\r\n", ORDINARY),
    (b"GET /termination-imminent/../config HTTP/1.1\r\n", ORDINARY),
    (b"GET /api/agents/1/config?next=/termination-imminent HTTP/1.1\r\n", ORDINARY),
    (b"\x16\x03\x01\x02\x00\x01", ORDINARY),  # TLS: cannot be read, served in arrival order
    (b"POST /api/agents/1/termin", None),  # the request line is still arriving
    (b"", None),  # nothing yet
])
def test_the_class_of_a_request_is_read_from_its_request_line(pairs, sent, expected):
    ours, theirs = pairs()
    if sent:
        theirs.sendall(sent)
    assert request_priority(ours) == expected
    if sent:
        assert ours.recv(4096) == sent  # peeked: nothing consumed


def queued(pairs, sent: bytes | None):
    ours, theirs = pairs()
    if sent:
        theirs.sendall(sent)
    return SimpleNamespace(args=(SimpleNamespace(sock=ours),), theirs=theirs, name=sent)


def test_urgent_requests_are_taken_first_and_late_arrivals_are_looked_at_again(pairs):
    q = PriorityQueue()
    a = queued(pairs, b"GET /api/agents/1/config HTTP/1.1\r\n")
    b = queued(pairs, b"POST /api/agents/1/heartbeat HTTP/1.1\r\n")
    late = queued(pairs, None)  # accepted before its request arrived
    c = queued(pairs, b"POST /api/agents/2/termination-imminent HTTP/1.1\r\n")
    for item in (a, b, late, c):
        q.put(item)
    q.put(None)  # the executor's stop signal: after every piece of work
    late.theirs.sendall(b"POST /api/agents/3/termination-imminent HTTP/1.1\r\n")
    taken = [q.get() for _ in range(5)]
    assert taken == [late, c, a, b, None]  # urgent ones in the order they were queued
    with pytest.raises(Exception):
        q.get_nowait()


def test_a_request_whose_line_never_comes_waits_as_ordinary(pairs):
    q = PriorityQueue()
    silent, a = queued(pairs, None), queued(pairs, b"GET /health HTTP/1.1\r\n")
    q.put(silent)
    q.put(a)
    assert [q.get(), q.get()] == [silent, a]


def _send(port: int, head: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(head)
    return s


def test_a_busy_worker_serves_the_queued_notice_before_earlier_requests(tmp_path):
    """One worker with one thread, held by a request whose headers are still arriving; meanwhile two
    ordinary requests and then a termination notice queue up. The notice is answered first."""
    with gunicorn(tmp_path, GUNICORN_THREADS="1") as (base, port):
        holder = _send(port, b"GET /health HTTP/1.1\r\nHost: localhost\r\n")  # headers not finished
        time.sleep(0.5)  # the only thread is now reading it
        ordinary = [_send(port, b"GET /no-such-route-%d HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % k)
                    for k in range(2)]
        time.sleep(0.2)
        notice = _send(port, (f"POST /api/agents/{uuid.uuid4()}/termination-imminent HTTP/1.1\r\nHost: localhost\r\n"
                              "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                              ).encode())
        time.sleep(0.5)  # everything queued behind the holder
        holder.sendall(b"Connection: close\r\n\r\n")
        for s in (holder, *ordinary, notice):
            assert s.recv(100).startswith(b"HTTP/1.1 "), "no answer"
            s.close()
        # The access log line follows the answer: wait (a few seconds at most) for all four.
        deadline = time.monotonic() + 5
        while True:
            log = (tmp_path / "gunicorn.log").read_text()
            served = [line for line in log.splitlines()
                      if ('"GET /' in line or '"POST /' in line) and "/no-such-route HTTP" not in line]  # not the start probe
            if len(served) >= 4 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        order = [("notice" if "termination-imminent" in line else "ordinary" if "no-such-route" in line else "holder")
                 for line in served]
        assert order == ["holder", "notice", "ordinary", "ordinary"], served


# --- the lingering close ---------------------------------------------------------------------------

@pytest.fixture
def worker():
    """The worker's closing machinery on a real selector, without a gunicorn around it."""
    w = UrgentFirstWorker.__new__(UrgentFirstWorker)
    w.poller = selectors.DefaultSelector()
    w.lingering = {}
    w.pending_conns, w.keepalived_conns = deque(), deque()
    yield w
    w.poller.close()


def dispatch(w: UrgentFirstWorker) -> None:
    for key, _ in w.poller.select(timeout=1):
        key.data(key.fileobj)


def closed(sock: socket.socket) -> bool:
    return sock.fileno() == -1


def test_a_graceful_close_half_closes_at_once_and_closes_at_the_clients_end_of_stream(worker, pairs):
    ours, theirs = pairs()
    ours.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    worker.close_conn(SimpleNamespace(sock=ours), graceful=True)  # returns without waiting for the client
    assert theirs.recv(100).startswith(b"HTTP/1.1 200") and theirs.recv(100) == b""  # answer, then end of stream
    assert not closed(ours) and ours in worker.lingering
    theirs.sendall(b"bytes the client sent late")  # read and dropped: the close does not become a reset
    dispatch(worker)
    assert not closed(ours) and worker.lingering[ours][1] == len(b"bytes the client sent late")
    theirs.close()
    dispatch(worker)
    assert closed(ours) and not worker.lingering


def test_a_client_that_never_closes_is_closed_after_the_linger_time(worker, pairs):
    ours, theirs = pairs()
    worker.close_conn(SimpleNamespace(sock=ours), graceful=True)
    worker.murder_pending()
    assert not closed(ours) and worker.lingering[ours][0] > time.monotonic() + gunicorn_worker.LINGER_SECONDS - 1
    worker.lingering[ours][0] = time.monotonic() - 0.001  # its linger time is over
    worker.murder_pending()  # the worker's loop calls this after every wake-up
    assert closed(ours) and not worker.lingering


def test_lingering_is_bounded_in_bytes_and_in_sockets_and_ends_when_the_worker_stops(worker, pairs, monkeypatch):
    monkeypatch.setattr(gunicorn_worker, "LINGER_MAX_DRAIN", 10)
    monkeypatch.setattr(gunicorn_worker, "LINGER_MAX_CONNS", 2)
    (a, a_peer), (b, _), (c, _) = pairs(), pairs(), pairs()
    for sock in (a, b):
        worker.close_conn(SimpleNamespace(sock=sock), graceful=True)
    a_peer.sendall(b"x" * 64)  # more than the drain allows
    dispatch(worker)
    assert closed(a) and list(worker.lingering) == [b]
    d, _ = pairs()
    worker.close_conn(SimpleNamespace(sock=c), graceful=True)
    worker.close_conn(SimpleNamespace(sock=d), graceful=True)  # a third: the oldest goes
    assert closed(b) and list(worker.lingering) == [c, d]
    worker.murder_keepalived(force=True)  # what the stopping worker calls last
    assert closed(c) and closed(d) and not worker.lingering


def test_a_plain_close_closes_at_once(worker, pairs):
    ours, _ = pairs()
    worker.close_conn(SimpleNamespace(sock=ours))
    assert closed(ours) and not worker.lingering


def test_a_closed_connection_is_freed_without_the_cycle_collector(worker, pairs):
    class Conn:  # gthread's TConn: a plain object with a socket
        def __init__(self, sock):
            self.sock = sock

    ours, _ = pairs()
    conn = Conn(ours)
    conn.close = partial(worker.close_conn, conn)  # what finish_request installs
    gone = weakref.ref(conn)
    gc.disable()
    try:
        conn.close(graceful=True)
        del conn
        assert gone() is None  # no reference cycle left behind
    finally:
        gc.enable()


def test_a_client_keeping_its_connection_open_does_not_stall_the_worker(tmp_path):
    """gunicorn 27's gthread waits in the worker's main thread for the client to close (up to 2 s): a
    client that keeps its end open after a `Connection: close` answer stalled every other connection
    of the worker. One worker here; the second client must be answered while the first stays open."""
    with gunicorn(tmp_path) as (base, port):
        request = b"GET /no-such-route HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"  # 404, no I/O
        keeper = _send(port, request)
        answer = b""
        while chunk := keeper.recv(4096):  # until the server's end of stream; the keeper stays open
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 404"), answer[:100]
        other = socket.create_connection(("127.0.0.1", port), timeout=1.5)  # the stall lasted 2 s
        other.sendall(request)
        try:
            assert other.recv(100).startswith(b"HTTP/1.1 404")
        finally:
            other.close()
            keeper.close()
