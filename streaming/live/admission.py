"""Session slots of ``medstream serve``: reserved when a websocket is accepted, not on ``start``.

A connection takes its slot before the server accepts it and gives it back when it ends, on
every path (``start`` or not, ``stop``, error, disconnect, timeout): :meth:`Admission.reserve`
checks and counts in one step on the event loop, so no interleaving of connections can hold
more than ``max_sessions`` slots, and no client address more than ``per_client``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator


class Admission:
    """Counts the open websockets of the server and of each client address.

    Used on the server's event loop only: ``reserve`` has no ``await`` between its check and its
    count, which is what makes it atomic."""

    def __init__(self, max_sessions: int, per_client: int | None) -> None:
        self.max_sessions = max_sessions
        self.per_client = per_client
        self._by_client: Counter[str] = Counter()

    @property
    def open(self) -> int:
        """Slots held now."""
        return sum(self._by_client.values())

    def refusal(self, client: str) -> str | None:
        """Why a new connection from ``client`` cannot have a slot now, or None."""
        if self.open >= self.max_sessions:
            return "server full: try another replica or later"
        if self.per_client is not None and self._by_client[client] >= self.per_client:
            return f"too many connections from your address (at most {self.per_client})"
        return None

    @contextlib.contextmanager
    def reserve(self, client: str) -> Iterator[str | None]:
        """Hold a slot for ``client`` for the block; yields None when it is held, else why it
        was refused (nothing is held then)."""
        refused = self.refusal(client)
        if refused is not None:
            yield refused
            return
        self._by_client[client] += 1
        try:
            yield None
        finally:
            self._by_client[client] -= 1
            if self._by_client[client] <= 0:
                del self._by_client[client]
