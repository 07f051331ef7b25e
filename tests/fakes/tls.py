"""Test PKI and a threaded HTTPS server whose TLS handshake runs per connection.

Two CAs: ``ca`` (written to ``ca_path``; settings.ca_bundle points at it, so it plays the public
registry CA) and ``rogue`` (a "TLS inspection" CA nobody trusts, for interception scenarios).
The server accepts plain TCP and wraps each connection in its handler thread, so one slow or
silent handshake never blocks other connections, and behaviours can be chosen per SNI.
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

#: Names the fake registry certificate covers (like ACR's wildcard certificates).
REGISTRY_CERT_NAMES = (
    "*.azurecr.io",
    "*.azurecr.cn",
    "*.azurecr.us",
    *(f"*.{r}.data.azurecr.io" for r in ("westeurope", "eastus", "northeurope", "westus2", "japaneast")),
    *(f"*.{r}.geo.azurecr.io" for r in ("westeurope", "eastus")),
)


class TestPKI:
    """A trusted test CA and a rogue interception CA, with their PEM files on disk."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.ca = trustme.CA(organization_name="acrcheck test public CA")
        self.rogue = trustme.CA(organization_name="Contoso TLS Inspection")
        self._dir = tempfile.TemporaryDirectory(prefix="acrcheck-pki-")
        self.ca_path = Path(self._dir.name) / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.rogue_path = Path(self._dir.name) / "rogue.pem"
        self.rogue.cert_pem.write_to_path(str(self.rogue_path))

    def server_context(
        self,
        *names: str,
        rogue: bool = False,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> ssl.SSLContext:
        """A server context whose leaf covers ``names``, from the public or the rogue CA.

        ``not_before`` / ``not_after`` give certificates that are expired or not valid yet.
        """
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        issuer = self.rogue if rogue else self.ca
        issuer.issue_cert(*names, not_before=not_before, not_after=not_after).configure_cert(ctx)
        return ctx

    @property
    def both_path(self) -> Path:
        """A bundle trusting both CAs: a machine that has the corporate inspection CA installed."""
        path = Path(self._dir.name) / "both.pem"
        if not path.exists():
            path.write_bytes(self.ca.cert_pem.bytes() + self.rogue.cert_pem.bytes())
        return path

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx

    def close(self) -> None:
        self._dir.cleanup()


def reset_socket(sock: socket.socket) -> None:
    """Close with SO_LINGER 0, so the peer sees a TCP RST ("connection reset by peer")."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class TLSHTTPServer(ThreadingHTTPServer):
    """HTTPS server with a lazy, per-connection handshake and an accept hook.

    ``on_accept(sock) -> bool`` runs in the connection's thread before the handshake; it may
    sleep (latency), hold the socket silently, or reset it, and returns False to stop there.
    """

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        context: ssl.SSLContext,
        *,
        on_accept: Callable[[socket.socket], bool] | None = None,
        handshake_timeout: float = 10.0,
    ) -> None:
        super().__init__(address, handler)
        self.context = context
        self.on_accept = on_accept
        self.handshake_timeout = handshake_timeout
        self.stop_event = threading.Event()
        self.state: Any = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        sock: socket.socket = request
        if self.on_accept is not None and not self.on_accept(sock):
            return
        tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        tls.settimeout(self.handshake_timeout)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError):
            tls.close()
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:  # keep test output quiet
        pass

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()
        self.shutdown()
        self.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """Base handler: HTTP/1.1, no stderr logging, tolerant of peers that vanish."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    def send_body(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
