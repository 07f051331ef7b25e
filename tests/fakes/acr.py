"""Fake ACR data plane: ``GET /v2/`` over HTTPS on several 127.0.0.x addresses sharing one port.

Behaviour is chosen per registry host (Host header / SNI), like real shared front ends:

* ``ok``          401 with the real ``Www-Authenticate: Bearer realm=…,service=…`` and UNAUTHORIZED body
* ``deny``        403 ``DENIED`` "client with IP '<ip>' is not allowed access…" (the firewall body)
* ``anonymous``   200 (anonymous pull)
* ``error``       503
* ``intercept``   handshake with a certificate from the rogue "TLS inspection" CA
* ``expired``     a certificate from the trusted CA whose validity ended 30 days ago
* ``not_yet_valid`` a certificate from the trusted CA valid only from 30 days from now
* ``redirect``    ``/v2/`` answers 302 to another host (``redirect_location``): a captive portal
* ``blackhole``   the TLS handshake never completes (client connect timeout)
* ``reset``       TLS completes, the request is read, then TCP RST

``bodies`` overrides the answer per host with a raw ``(status, body)`` (malformed error JSON,
deeply nested JSON…; a 401 keeps its Bearer challenge), and per address (``ip_modes``): ``serve`` (default), ``silent`` (accept, never speak) or
``reset`` (RST right after accept). An address with no listener gives "connection refused".
``latency`` adds (tcp, tls, http) delays in seconds to mimic real round trips.
"""

from __future__ import annotations

import datetime
import json
import random
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.tls import REGISTRY_CERT_NAMES, QuietHandler, TestPKI, TLSHTTPServer, reset_socket

#: The real 149-byte body of an anonymous ``GET /v2/`` (Go's JSON encoder adds the newline).
UNAUTHORIZED_BODY = (
    b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required, visit '
    b'https://aka.ms/acr/authorization for more information.","detail":null}]}\n'
)
assert len(UNAUTHORIZED_BODY) == 149


def denied_body(ip: str) -> bytes:
    message = (
        f"client with IP '{ip}' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."
    )
    return json.dumps({"errors": [{"code": "DENIED", "message": message}]}).encode()


@dataclass
class AcrState:
    """Mutable behaviour and records shared by all listeners of one fake."""

    modes: dict[str, str] = field(default_factory=dict)  # host -> mode
    bodies: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # host -> raw (status, body)
    default_mode: str = "ok"
    deny_ip: str = "203.0.113.50"
    redirect_location: str = "https://login.contoso-proxy.example/portal?continue=https%3A%2F%2F{host}%2Fv2%2F"
    ip_modes: dict[str, str] = field(default_factory=dict)  # address -> serve|silent|reset
    latency: tuple[tuple[float, float], tuple[float, float], tuple[float, float]] | None = None
    sni_log: list[tuple[str, str | None]] = field(default_factory=list)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (address, host, path)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mode_for(self, host: str | None) -> str:
        return self.modes.get((host or "").lower(), self.default_mode)

    def delay(self, step: int) -> None:
        if self.latency is not None:
            low, high = self.latency[step]
            time.sleep(random.uniform(low, high))


class _AcrHandler(QuietHandler):
    server: _AcrServer

    def do_GET(self) -> None:
        state = self.server.state
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        with state.lock:
            state.requests.append((self.server.address, host, self.path))
        mode = state.mode_for(host)
        state.delay(2)
        if mode == "reset":
            reset_socket(self.connection)
            self.close_connection = True
            return
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Docker-Distribution-Api-Version": "registry/2.0",
            "X-Ms-Correlation-Request-Id": str(uuid.uuid4()),
            "Connection": "close",
        }
        self.close_connection = True
        with state.lock:
            raw = state.bodies.get(host)
        if raw is not None:
            status, body = raw
            if status == 401:
                headers["Www-Authenticate"] = f'Bearer realm="https://{host}/oauth2/token",service="{host}"'
            self.send_body(status, body, headers)
        elif mode == "deny":
            self.send_body(403, denied_body(state.deny_ip), headers)
        elif mode == "redirect":
            headers["Location"] = state.redirect_location.format(host=host)
            self.send_body(302, b"", headers)
        elif mode == "anonymous":
            self.send_body(200, b"{}", headers)
        elif mode == "error":
            body = b'{"errors":[{"code":"UNAVAILABLE","message":"service unavailable"}]}'
            self.send_body(503, body, headers)
        else:
            headers["Www-Authenticate"] = f'Bearer realm="https://{host}/oauth2/token",service="{host}"'
            self.send_body(401, UNAUTHORIZED_BODY, headers)


class _AcrServer(TLSHTTPServer):
    state: AcrState
    address: str


class FakeACR:
    """Registry front ends on ``addresses`` (all 127.0.0.x), one shared port."""

    def __init__(
        self, pki: TestPKI, addresses: tuple[str, ...] = ("127.0.0.5", "127.0.0.6", "127.0.0.7")
    ) -> None:
        self.pki = pki
        self.state = AcrState()
        self.addresses = addresses
        self._good = pki.server_context(*REGISTRY_CERT_NAMES)
        self._rogue = pki.server_context(*REGISTRY_CERT_NAMES, rogue=True)
        now = datetime.datetime.now(datetime.UTC)
        self.expired_window = (now - datetime.timedelta(days=400), now - datetime.timedelta(days=30))
        self.future_window = (now + datetime.timedelta(days=30), now + datetime.timedelta(days=400))
        self._expired = pki.server_context(*REGISTRY_CERT_NAMES, not_before=self.expired_window[0], not_after=self.expired_window[1])
        self._future = pki.server_context(*REGISTRY_CERT_NAMES, not_before=self.future_window[0], not_after=self.future_window[1])
        self._good.sni_callback = self._on_sni
        self._stop = threading.Event()
        self.servers: list[_AcrServer] = []
        for attempt in range(20):
            first = self._listen(addresses[0], 0)
            servers = [first]
            try:
                servers += [self._listen(addr, first.server_address[1]) for addr in addresses[1:]]
            except OSError:
                for server in servers:
                    server.server_close()
                if attempt == 19:
                    raise
                continue
            self.servers = servers
            break
        self.port = self.servers[0].server_address[1]
        for server in self.servers:
            server.start()

    def _listen(self, address: str, port: int) -> _AcrServer:
        server = _AcrServer((address, port), _AcrHandler, self._good, on_accept=self._on_accept)
        server.state = self.state
        server.address = address
        return server

    def _on_accept(self, sock: socket.socket) -> bool:
        address = sock.getsockname()[0]
        mode = self.state.ip_modes.get(address, "serve")
        if mode == "reset":
            reset_socket(sock)
            return False
        if mode == "silent":
            self._stop.wait(30)
            sock.close()
            return False
        self.state.delay(0)
        return True

    def _on_sni(self, sslobj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> Any:
        try:
            address = sslobj.getsockname()[0]  # type: ignore[attr-defined]  # an SSLSocket here
        except (AttributeError, OSError):
            address = "?"
        with self.state.lock:
            self.state.sni_log.append((address, name))
        mode = self.state.mode_for(name)
        if mode == "blackhole":
            self._stop.wait(30)
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        self.state.delay(1)
        if mode == "intercept":
            sslobj.context = self._rogue
        elif mode == "expired":
            sslobj.context = self._expired
        elif mode == "not_yet_valid":
            sslobj.context = self._future
        return None

    def reset(self) -> None:
        with self.state.lock:
            self.state.modes.clear()
            self.state.bodies.clear()
            self.state.ip_modes.clear()
            self.state.default_mode = "ok"
            self.state.deny_ip = "203.0.113.50"
            self.state.redirect_location = AcrState.redirect_location
            self.state.latency = None
            self.state.sni_log.clear()
            self.state.requests.clear()

    def stop(self) -> None:
        self._stop.set()
        for server in self.servers:
            server.stop()
