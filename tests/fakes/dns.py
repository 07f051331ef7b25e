"""Fake recursive DNS server (dnspython only) on 127.0.0.1, UDP and TCP on the same port.

The zone is a dict ``name -> [(type, data), ...]``. Like a recursive resolver, the server
follows CNAMEs itself and returns the whole chain in the answer section; a name that is not in
the zone (or a CNAME target that is not) is NXDOMAIN. Names can be made to SERVFAIL, REFUSE or
black-hole (UDP: no reply; TCP: hold the connection). Every query is logged, so a test can
prove that a refused target caused no DNS traffic at all.
"""

from __future__ import annotations

import itertools
import random
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset


@dataclass
class DnsState:
    zone: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    blackhole: set[str] = field(default_factory=set)
    latency: tuple[float, float] | None = None
    max_chain: int = 10  # CNAME hops the server follows before it stops (a long chain needs more)
    log: list[tuple[str, str, str]] = field(default_factory=list)  # (qname, qtype, "udp"|"tcp")
    lock: threading.Lock = field(default_factory=threading.Lock)


def _key(name: str) -> str:
    return name.lower().rstrip(".") + "."


class FakeDNS:
    """A zone-dict resolver; helpers ``a()``, ``cname()`` edit the zone."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.state = DnsState()
        self._stop = threading.Event()
        fake = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = fake.answer(data, "udp")
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(5)
                try:
                    head = sock.recv(2)
                    if len(head) < 2:
                        return
                    (size,) = struct.unpack("!H", head)
                    data = b""
                    while len(data) < size:
                        chunk = sock.recv(size - len(data))
                        if not chunk:
                            return
                        data += chunk
                    reply = fake.answer(data, "tcp")
                    if reply is None:
                        fake._stop.wait(10)
                        return
                    sock.sendall(struct.pack("!H", len(reply)) + reply)
                except OSError:
                    return

        for _ in range(20):
            udp = socketserver.ThreadingUDPServer((address, 0), Udp)
            try:
                tcp = socketserver.ThreadingTCPServer((address, udp.server_address[1]), Tcp)
            except OSError:
                udp.server_close()
                continue
            break
        udp.daemon_threads = tcp.daemon_threads = True
        self.udp, self.tcp = udp, tcp
        self.address = address
        self.port = udp.server_address[1]
        for server in (udp, tcp):
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def server_spec(self) -> str:
        """The ``settings.dns_servers`` entry for this fake."""
        return f"{self.address}:{self.port}"

    # ---- zone editing
    def a(self, name: str, *addresses: str) -> None:
        records = self.state.zone.setdefault(_key(name), [])
        for address in addresses:
            records.append(("AAAA" if ":" in address else "A", address))

    def cname(self, name: str, target: str) -> None:
        self.state.zone[_key(name)] = [("CNAME", _key(target))]

    def chain(self, *names: str) -> None:
        """``names[0] CNAME names[1] CNAME … names[-1]`` (the last name gets no record here)."""
        for source, target in itertools.pairwise(names):
            self.cname(source, target)

    def remove(self, name: str) -> None:
        self.state.zone.pop(_key(name), None)

    @property
    def log(self) -> list[tuple[str, str, str]]:
        with self.state.lock:
            return list(self.state.log)

    def reset(self) -> None:
        with self.state.lock:
            self.state.zone.clear()
            self.state.servfail.clear()
            self.state.refused.clear()
            self.state.blackhole.clear()
            self.state.latency = None
            self.state.max_chain = 10
            self.state.log.clear()

    # ---- answering
    def answer(self, wire: bytes, proto: str) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        question = query.question[0]
        qname = _key(str(question.name))
        qtype = dns.rdatatype.to_text(question.rdtype)
        with self.state.lock:
            self.state.log.append((qname.rstrip("."), qtype, proto))
            latency = self.state.latency
        if qname in self.state.blackhole:
            return None
        if latency:
            time.sleep(random.uniform(*latency))
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        if qname in self.state.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        if qname in self.state.refused:
            response.set_rcode(dns.rcode.REFUSED)
            return response.to_wire()
        name = qname
        visited: set[str] = set()
        for _ in range(self.state.max_chain):
            records = self.state.zone.get(name)
            if records is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                break
            cnames = [data for typ, data in records if typ == "CNAME"]
            if cnames and qtype != "CNAME":
                # A loop is answered as it stands (each link once), like a resolver that returns
                # what it followed; the client has to notice that it never ends.
                response.answer.append(dns.rrset.from_text(name, 60, "IN", "CNAME", cnames[0]))
                visited.add(name)
                name = cnames[0]
                if name in visited:
                    break
                continue
            matching = [data for typ, data in records if typ == qtype]
            if matching:
                response.answer.append(dns.rrset.from_text_list(name, 60, "IN", qtype, matching))
            break
        return response.to_wire()

    def stop(self) -> None:
        self._stop.set()
        for server in (self.udp, self.tcp):
            server.shutdown()
            server.server_close()
