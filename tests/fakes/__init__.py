"""Loopback fakes of the services acrcheck talks to: DNS, ACR data plane, ARM/Resource Graph/Logs, proxy.

Each fake speaks the real protocol (DNS over UDP/TCP, HTTPS with real certificates, HTTP
CONNECT) on 127.0.0.x only, so the production clients run unmodified against them. Every
fake runs in its own thread, records what it saw, and has modes a test can flip.
"""
