"""Shared bits of the fetch tests: a fast retry policy and a range-serving handler."""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator

import pytest
from werkzeug import Request, Response

from firesmoke.fetch import RetryPolicy

FAST = RetryPolicy(attempts=4, backoff=0.01, max_wait=0.05, timeout=(5.0, 5.0))


def range_response(data: bytes, request: Request, *, drop_after: int | None = None) -> Response:
    """Serve ``data`` honouring ``Range: bytes=N-``; cut the connection after ``drop_after`` bytes."""
    start = 0
    m = re.match(r"bytes=(\d+)-$", request.headers.get("Range", ""))
    status = 200
    headers = {"Accept-Ranges": "bytes"}
    if m:
        start = int(m.group(1))
        if start >= len(data):
            return Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
    body = data[start:]
    headers["Content-Length"] = str(len(body))
    if drop_after is None:
        return Response(body, status=status, headers=headers, content_type="application/octet-stream")

    def gen():
        yield body[:drop_after]
        raise ConnectionAbortedError("test: connection dropped mid-file")

    return Response(gen(), status=status, headers=headers, content_type="application/octet-stream")


@pytest.fixture(autouse=True)
def _no_proxy_for_local_servers(monkeypatch):
    """Requests to the test servers never go through a proxy set in the environment."""
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


@pytest.fixture(autouse=True)
def _test_servers_may_receive_credentials(monkeypatch):
    """The loopback test servers stand for Earthdata hosts: the test-only allow-list switches."""
    monkeypatch.setenv("FIRESMOKE_EARTHDATA_HOSTS", "127.0.0.1,localhost")
    monkeypatch.setenv("FIRESMOKE_ALLOW_HTTP_LOOPBACK", "1")


@contextlib.contextmanager
def raw_server(write: Callable[[socket.socket, threading.Event], None]) -> Iterator[str]:
    """A bare TCP server on 127.0.0.1 whose replies ``write(sock, stop)`` sends byte by byte.

    For what pytest-httpserver cannot do: endless bodies, a byte every few seconds. Yields
    the base URL; on exit ``stop`` is set and the server shut down.
    """
    stop = threading.Event()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:  # read the request head
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                data += chunk
            try:
                write(self.request, stop)
            except OSError:  # the client hung up: what the test wants
                pass

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        stop.set()
        srv.shutdown()
        srv.server_close()
