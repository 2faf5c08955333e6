"""A TCP stand-in for a dependency on a private loopback port: `down` (port closed: connection
refused), `hung` (accepts, never answers) or `up` (forwards to the real server). Only its own sockets
are touched; stop() closes them all."""
import socket
import threading


class FakeTCP:
    def __init__(self, target=("127.0.0.1", 3306)):
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.listener: socket.socket | None = None
        self.mode = "down"
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()

    def set(self, mode: str) -> None:
        assert mode in ("down", "hung", "up")
        self.mode = mode
        if mode != "hung":  # hung: open connections stay open but nothing is forwarded any more
            self._drop_connections()
        if mode == "down":
            self._close_listener()
        elif self.listener is None:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self.port))
            s.listen(128)
            self.listener = s
            threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with self.lock:
                self.sockets.append(conn)
            if self.mode == "up":
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    conn.close()
                    continue
                upstream.settimeout(None)
                with self.lock:
                    self.sockets.append(upstream)
                for a, b in ((conn, upstream), (upstream, conn)):
                    threading.Thread(target=self._pump, args=(a, b), daemon=True).start()
            # hung: keep the socket open and never send a byte

    def _pump(self, a, b):
        try:
            while data := a.recv(65536):
                if self.mode == "up":
                    b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _drop_connections(self):
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            try:
                s.close()
            except OSError:
                pass

    def _close_listener(self):
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept thread, frees the port
            except OSError:
                pass
            self.listener.close()
            self.listener = None

    def stop(self):
        self._close_listener()
        self._drop_connections()
