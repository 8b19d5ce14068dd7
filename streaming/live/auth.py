"""Who may talk to ``medstream serve``: the bearer token, single-use tickets, hosts and origins.

The long-lived token travels only in an ``Authorization: Bearer`` header, never in a URL (a URL
ends up in access logs, proxy logs and browser history). A browser cannot set headers on a
websocket, so it first exchanges the token for a *ticket* (``POST /v1/ticket``): a random
string that opens one websocket within a few seconds and is then spent.

Hosts and origins guard the servers that have no token as well: a page on
``http://attacker.example:PORT`` whose name is re-pointed at the server's address (DNS
rebinding) sends ``Host: attacker.example:PORT`` and the matching ``Origin``, so the origin
check alone (origin equals host) passes. The ``Host`` header must therefore name the server: an
IP address (a rebinding attack always uses a name), ``localhost``, or a name given with
``--allow-host``. Origins match exactly, scheme, host and port.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
LOCAL_NAMES = frozenset({"localhost"})


def bearer_ok(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer token`` (compared in constant time)."""
    if not header or header[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


class Tickets:
    """Single-use websocket tickets, each valid for ``lifetime`` seconds.

    Used on the server's event loop only (no lock). At most ``limit`` unspent tickets exist at
    once, so a client holding the token cannot grow the server's memory without bound."""

    def __init__(self, lifetime: float, limit: int = 1024) -> None:
        self.lifetime = lifetime
        self.limit = limit
        self._expiry: dict[str, float] = {}

    def issue(self) -> str | None:
        """A new ticket, or None when ``limit`` unspent tickets are outstanding."""
        now = time.monotonic()
        for ticket in [t for t, expiry in self._expiry.items() if expiry <= now]:
            del self._expiry[ticket]
        if len(self._expiry) >= self.limit:
            return None
        ticket = secrets.token_urlsafe(24)
        self._expiry[ticket] = now + self.lifetime
        return ticket

    def redeem(self, ticket: str) -> bool:
        """Spend ``ticket``: True once for a ticket issued less than ``lifetime`` ago."""
        expiry = self._expiry.pop(ticket, None)
        return expiry is not None and expiry > time.monotonic()

    @property
    def outstanding(self) -> int:
        return len(self._expiry)


def _split_host(host: str, default_port: int) -> tuple[str, int] | None:
    """``(name, port)`` of a ``Host`` header value (IPv6 in brackets), or None when malformed."""
    try:
        parts = urlsplit("//" + host)
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name or parts.path or parts.query or parts.username is not None:
        return None
    return name.lower(), port if port is not None else default_port


def host_allowed(host: str | None, allowed: Iterable[str]) -> bool:
    """Whether a ``Host`` header names this server: an IP address, ``localhost``, or a name in
    ``allowed`` (``*`` allows any). A request without one (HTTP/1.0: a load balancer's health
    check) passes: a browser always sends it, so rebinding cannot go without it."""
    allowed = {a.lower() for a in allowed}
    if "*" in allowed or host is None:
        return True
    split = _split_host(host, 0)
    if split is None:
        return False
    name = split[0]
    if name in LOCAL_NAMES or name in allowed:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _origin(value: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin such as ``https://clinic.example:8443``."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or parts.path not in ("", "/"):
        return None
    split = _split_host(parts.netloc, DEFAULT_PORTS[scheme])
    return None if split is None else (scheme, *split)


def origin_allowed(origin: str | None, *, scheme: str, host: str | None,
                   allowed: Iterable[str]) -> bool:
    """Whether a browser ``Origin`` may use this server: one of ``allowed`` (``*``: any) or the
    server's own origin (``scheme``, the request's ``ws``/``wss``/``http``/``https``, and its
    ``Host``), compared as scheme, host and port. A request without ``Origin`` does not come
    from a browser page and is allowed (the token, when set, still applies)."""
    if origin is None:
        return True
    allowed = list(allowed)
    if "*" in allowed:
        return True
    presented = _origin(origin)
    if presented is None:
        return False
    if presented in {_origin(a) for a in allowed}:
        return True
    own_scheme = "https" if scheme in ("https", "wss") else "http"
    own = _split_host(host or "", DEFAULT_PORTS[own_scheme])
    return own is not None and presented == (own_scheme, *own)
