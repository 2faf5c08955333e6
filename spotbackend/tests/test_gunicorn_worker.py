"""spotbackend/gunicorn_worker.py: gunicorn's gthread worker serving termination notices and rebalance
recommendations before the other queued requests."""
import socket
import time
import uuid
from types import SimpleNamespace

import pytest

from spotbackend.gunicorn_worker import ORDINARY, URGENT, PriorityQueue, request_priority
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
