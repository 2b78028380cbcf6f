"""Fake HTTP servers on 127.0.0.1 for the tests (no network needed).

:class:`LocalServer` owns the plumbing every fake shares: a :class:`~http.server.ThreadingHTTPServer` on a
free port, served from a daemon thread (request threads are daemons too), request logging silenced, and
``close()`` / the context manager to shut it down. A fake either subclasses it and overrides
:meth:`LocalServer.handle`, or passes a ``handle(req)`` callback; ``req`` is the
:class:`~http.server.BaseHTTPRequestHandler` of the request, one thread per request. Only the HTTP methods
in ``methods`` are routed to it (any other one gets the stock 501).

:func:`send_json` / :func:`send_bytes` write a whole response (status, ``Content-Type``, ``Content-Length``,
extra headers, body) and ignore a client that has already hung up; :func:`read_body` reads the request body.

    class Echo(LocalServer):
        def handle(self, req):
            send_json(req, 200, json.loads(read_body(req)))

    with Echo() as srv:
        requests.post(f"{srv.base_url}/echo", json={"a": 1})
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["LocalServer", "read_body", "send_bytes", "send_json"]


class LocalServer:
    """An HTTP server on ``127.0.0.1:<free port>`` whose requests go to ``handle(req)``.

    It listens from construction; it serves from construction too, or, with ``start=False``, from
    ``__enter__`` / :meth:`start`. ``url`` is the root (``http://127.0.0.1:PORT``), ``base_url`` the same
    with ``/v1`` (where OpenAI-compatible clients want it). ``poll_interval`` is ``serve_forever``'s.
    """

    methods: tuple[str, ...] = ("POST",)

    def __init__(self, handle: Callable[[BaseHTTPRequestHandler], None] | None = None, *,
                 methods: Iterable[str] | None = None, start: bool = True, poll_interval: float = 0.5):
        route = handle or self.handle

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

        for method in methods or self.methods:
            setattr(Handler, f"do_{method}", lambda req: route(req))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": poll_interval},
                                       daemon=True)
        if start:
            self.start()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        """Answer one request (override it, or pass ``handle`` to the constructor)."""
        raise NotImplementedError

    def start(self) -> None:
        if not self.thread.is_alive():
            self.thread.start()

    def close(self) -> None:
        """Stop serving and free the port (it does not wait for requests still being answered)."""
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()


def read_body(req: BaseHTTPRequestHandler) -> bytes:
    """The request body (``Content-Length`` bytes; ``b""`` without one)."""
    return req.rfile.read(int(req.headers.get("Content-Length") or 0))


def send_bytes(req: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "application/json",
               headers: dict[str, str] | None = None) -> None:
    """Answer with ``status`` and the raw ``body`` (which need not be valid for ``content_type``), then the
    extra ``headers``; a client that has hung up is ignored."""
    try:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            req.send_header(key, value)
        req.end_headers()
        req.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass


def send_json(req: BaseHTTPRequestHandler, status: int, payload, headers: dict[str, str] | None = None) -> None:
    """Answer with ``status`` and ``payload`` as JSON (``application/json``), then the extra ``headers``."""
    send_bytes(req, status, json.dumps(payload).encode(), headers=headers)
