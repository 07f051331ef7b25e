"""Fake HTTP CONNECT proxy (asyncio, own thread) with the failure modes corporate proxies show.

Modes: ``tunnel`` (CONNECT to ``host_map[host]`` — a loopback fake — and splice bytes), ``eof``
(read the CONNECT request, close: Go's ``proxyconnect tcp: EOF``), ``403``, ``407`` (with
``Proxy-Authenticate``; ``credentials`` lets a matching ``Proxy-Authorization`` through to the
tunnel), ``502``, ``silent`` (accept and never answer), ``flood`` (answer CONNECT with 100 KB of
header bytes and no end of head). ``tunnel_limit`` switches to ``after_limit`` (default ``eof``)
once that many tunnels were opened, e.g. a proxy that tunnels the probe but closes the second
CONNECT used to fetch the certificate. ``ssl`` makes it an ``https://`` proxy (TLS to the proxy
itself). Records every request line and whether it carried ``Proxy-Authorization``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import threading
from dataclasses import dataclass, field


@dataclass
class ProxyState:
    mode: str = "tunnel"
    host_map: dict[str, str] = field(default_factory=dict)  # registry host -> loopback address
    credentials: tuple[str, str] | None = None
    requests: list[tuple[str, bool]] = field(default_factory=list)
    tunnel_limit: int | None = None
    after_limit: str = "eof"
    tunnels: int = 0


class FakeProxy:
    def __init__(self, address: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None) -> None:
        self.state = ProxyState()
        self.address = address
        self.ssl_context = ssl_context
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)
        self.url = f"{'https' if ssl_context else 'http'}://{address}:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, self.address, 0, ssl=self.ssl_context))
        self.port = self.server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        request_line = lines[0]
        auth = next(
            (ln.split(":", 1)[1].strip() for ln in lines[1:] if ln.lower().startswith("proxy-authorization:")),
            None,
        )
        self.state.requests.append((request_line, auth is not None))
        mode = self.state.mode
        if mode == "407" and self.state.credentials and auth:
            user, password = self.state.credentials
            if auth == "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode():
                mode = "tunnel"
        if mode == "tunnel" and self.state.tunnel_limit is not None:
            if self.state.tunnels >= self.state.tunnel_limit:
                mode = self.state.after_limit
            else:
                self.state.tunnels += 1
        try:
            if mode == "flood":
                writer.write(b"HTTP/1.1 200 OK\r\nX-Junk: " + b"a" * 100_000)
                await writer.drain()
                await asyncio.sleep(1)
                writer.close()
                return
            if mode == "eof":
                writer.close()
                return
            if mode == "silent":
                await asyncio.sleep(30)
                writer.close()
                return
            if mode in ("403", "502"):
                reason = {"403": "Forbidden", "502": "Bad Gateway"}[mode]
                writer.write(f"HTTP/1.1 {mode} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
                await writer.drain()
                writer.close()
                return
            if mode == "407":
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="corp"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                await writer.drain()
                writer.close()
                return
            await self._tunnel(request_line, reader, writer)
        except (ConnectionError, OSError):
            writer.close()

    async def _tunnel(self, request_line: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parts = request_line.split()
        if len(parts) < 2 or parts[0] != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        host, _, port = parts[1].rpartition(":")
        address = self.state.host_map.get(host.lower())
        if address is None:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(address, int(port)), 5)
        except (OSError, TimeoutError):
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def reset(self) -> None:
        self.state.mode = "tunnel"
        self.state.host_map.clear()
        self.state.credentials = None
        self.state.requests.clear()
        self.state.tunnel_limit = None
        self.state.after_limit = "eof"
        self.state.tunnels = 0

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()
