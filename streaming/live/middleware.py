"""What reaches ``medstream serve``'s log, and which ``Host`` may reach the server at all.

* :class:`AccessLog` replaces uvicorn's access log (which prints query strings): one line per
  request or websocket, with the path but never its query string or a header, the client
  address, the status (HTTP) or outcome and close code (websocket; a connection the server
  refused is logged as ``refused``), and the duration.
* :class:`HostGuard` refuses a request whose ``Host`` header is not one of the server's names
  (:func:`streaming.live.auth.host_allowed`): 400 over HTTP, close code 4403 on a websocket.
* :func:`redact_logs` puts a filter on uvicorn's loggers (which the websocket library also
  writes to, headers included at debug level) that removes query strings, bearer tokens,
  tickets and the server's token from every record, at any verbosity.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streaming.live.auth import host_allowed
from streaming.live.protocol import CLOSE_FORBIDDEN, REFUSAL_CODES

access_logger = logging.getLogger("medstream.access")

REDACTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "websockets",
                    "websockets.server", "medstream", "medstream.server", "medstream.access")
"""Loggers whose records pass :class:`SecretRedaction` (a logger's filters see only the
records logged on it, not those of its children, hence the full names)."""

_PATTERNS = (
    # A request path's query string: /v1/stream?token=... → /v1/stream
    (re.compile(r"(/[\w.~%/-]*)\?[^\s\"'<>]*"), r"\1"),
    (re.compile(r"\b(bearer)\s+[^\s\"',]+", re.I), r"\1 [redacted]"),
    (re.compile(r"\b((?:proxy-)?authorization|cookie|sec-websocket-protocol)(\W{1,4})"
                r"[^\r\n\"']+", re.I), r"\1\2[redacted]"),
    (re.compile(r"\b(token|ticket)=[^&\s\"']+", re.I), r"\1=[redacted]"),
)


SUPERSEDED = ('%s - "WebSocket %s"', "connection open", "connection closed")
"""Beginnings of uvicorn's own websocket lines, dropped: :class:`AccessLog` records each
websocket once, and says ``refused`` where uvicorn says ``[accepted]`` (a refusal is an
accepted handshake closed at once, so that a browser can read its close code)."""


class SecretRedaction(logging.Filter):
    """Rewrites a record's message without query strings, credentials and ``secrets``; drops
    uvicorn's websocket lines (:data:`SUPERSEDED`)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = {s for s in secrets if s}

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.error" and str(record.msg).startswith(SUPERSEDED):
            return False
        message = record.getMessage()
        cleaned = self.clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
            record.__dict__.pop("color_message", None)  # uvicorn's formatter would prefer it
        return True


_REDACTION = SecretRedaction()


def redact_logs(secrets: Iterable[str] = ()) -> None:
    """Put the redaction filter on every logger of :data:`REDACTED_LOGGERS` (once), also
    removing ``secrets`` verbatim from then on."""
    _REDACTION.secrets.update(s for s in secrets if s)
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTION not in logger.filters:
            logger.addFilter(_REDACTION)


def printable(text: str, limit: int = 200) -> str:
    """``text`` on one line and at most ``limit`` characters: control characters escaped, so
    that a crafted path or message cannot forge a log line."""
    escaped = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                      for c in text[:limit + 1])
    return escaped[:limit] + "…" if len(escaped) > limit else escaped


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


class _Outcome:
    """What the application sent: an HTTP status, or a websocket's accept, data and close."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.accepted = False
        self.sent = 0
        self.close_code: int | None = None

    def observe(self, message: Message) -> None:
        kind = message["type"]
        if kind in ("http.response.start", "websocket.http.response.start"):
            self.status = int(message["status"])
        elif kind == "websocket.accept":
            self.accepted = True
        elif kind == "websocket.send":
            self.sent += 1
        elif kind == "websocket.close" and self.close_code is None:
            self.close_code = int(message.get("code", 1000))

    def websocket_fields(self) -> str:
        if not self.accepted:
            return f"outcome=refused status={self.status or 403}"
        if self.close_code is None:
            return "outcome=disconnected"
        refused = self.close_code in REFUSAL_CODES and self.sent == 0
        return f"outcome={'refused' if refused else 'closed'} code={self.close_code}"


class AccessLog:
    """ASGI middleware: one ``medstream.access`` line per request or websocket, as
    ``key=value`` fields, with no query string, header or body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        began = time.monotonic()
        outcome = _Outcome()

        async def watched(message: Message) -> None:
            outcome.observe(message)
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            websocket = scope["type"] == "websocket"
            method = "WS" if websocket else printable(str(scope.get("method", "-")), 16)
            result = outcome.websocket_fields() if websocket else \
                f"status={outcome.status or 500}"
            access_logger.info("access method=%s path=%s client=%s %s ms=%d", method,
                               printable(str(scope.get("path", ""))), _client(scope), result,
                               round((time.monotonic() - began) * 1000))


class HostGuard:
    """ASGI middleware: refuses requests whose ``Host`` is not the server's
    (:func:`streaming.live.auth.host_allowed` with ``allowed``)."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or \
                host_allowed(_header(scope, b"host"), self.allowed):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http":
            response = PlainTextResponse("host not allowed (medstream serve --allow-host)",
                                         status_code=400)
            await response(scope, receive, send)
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": CLOSE_FORBIDDEN,
                    "reason": "host not allowed (medstream serve --allow-host)"})
