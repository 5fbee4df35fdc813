"""The exporter's HTTP endpoint (``prometheus_client``'s server in a daemon thread)."""

from __future__ import annotations

import errno
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from jacobian_ik.errors import ConfigurationError


def serve(registry: CollectorRegistry, address: str, port: int) -> WSGIServer:
    """Serve ``registry`` on http://address:port/metrics; returns the server object.

    A taken port or an address that is not local raises ``ConfigurationError``
    naming the address and port.
    """
    if not 0 < int(port) < 65536:
        raise ConfigurationError(f"metrics port {port} is not in 1..65535")
    try:
        started = start_http_server(int(port), addr=address, registry=registry)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"cannot serve metrics on {address}:{port}: port {port} is already in use; "
                f"stop the other process or choose another port (parameter "
                f"metrics_port)") from None
        raise ConfigurationError(
            f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}") from None
    return started[0] if isinstance(started, tuple) else started


def endpoint_url(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/metrics"
