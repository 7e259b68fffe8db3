"""A fault-injecting HTTP proxy for S3 tests: threads, sockets and http.client.

Each request is read whole, then either forwarded to the upstream S3 server (moto) and
its answer relayed, or answered with a fault taken from a queue:

- ``"500"``, ``"503"``: an S3 error body with that status;
- ``"slowdown"``: 503 with S3's ``SlowDown`` code (throttling);
- ``"drop"``: the connection is closed without an answer;
- ``"truncate"``: a PUT's body is cut in half and the connection closed mid-request,
  as a client dying during an upload would leave it (nothing reaches the server).

Every forwarded PUT's headers are recorded so a test can check what the client sent
(the server-side encryption header).
"""

from __future__ import annotations

import http.client
import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
    "<Message>injected by the fault proxy</Message></Error>"
)
FAULT_ANSWERS = {
    "500": (500, "InternalError"),
    "503": (503, "ServiceUnavailable"),
    "slowdown": (503, "SlowDown"),
}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "expect"}


class FaultProxy:
    """``with FaultProxy(upstream) as proxy:`` then point boto3 at ``proxy.url``."""

    def __init__(self, upstream: str):
        target = urlsplit(upstream)
        self.upstream_host, self.upstream_port = target.hostname, target.port
        self.faults: deque[str] = deque()
        self.fault_when: Callable[[str, str], bool] = lambda method, path: True
        self.injected: list[str] = []
        self.put_headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _next_fault(self, method: str, path: str) -> str | None:
        with self.lock:
            if self.faults and self.fault_when(method, path):
                fault = self.faults.popleft()
                self.injected.append(fault)
                return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _relay(self) -> None:
                fault = proxy._next_fault(self.command, self.path)
                if fault == "truncate":
                    length = int(self.headers.get("Content-Length", 0))
                    self.rfile.read(length // 2)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                body = self._read_body()
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault in FAULT_ANSWERS:
                    status, code = FAULT_ANSWERS[fault]
                    payload = ERROR_BODY.format(code=code).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                if self.command == "PUT":
                    with proxy.lock:
                        proxy.put_headers.append({k.lower(): v for k, v in headers.items()})
                headers["Content-Length"] = str(len(body))
                upstream = http.client.HTTPConnection(
                    proxy.upstream_host, proxy.upstream_port, timeout=30
                )
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_HEADERS | {"content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _relay

        return Handler

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
