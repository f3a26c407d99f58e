"""The loopback HTTP server both provider fakes run on: 127.0.0.1, a free port, served
from a daemon thread until ``stop()``."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler], *, poll_interval: float) -> None:
        self._server: ThreadingHTTPServer | None = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, args=(poll_interval,), daemon=True
        ).start()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake was stopped"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
