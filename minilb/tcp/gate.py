"""Owns a frontend's ``maxconn``: stop accepting at the limit, accept again below it.

Like HAProxy, a full frontend leaves new connections waiting in the kernel's
listen backlog instead of accepting and dropping them: the gate stops reading the
listening ports when the count of open client connections reaches ``maxconn`` and
restarts them once one closes.
"""

from __future__ import annotations


class AcceptGate:
    __slots__ = ("maxconn", "ports", "paused")

    def __init__(self, maxconn: int | None):
        self.maxconn = maxconn if maxconn and maxconn > 0 else None
        self.ports: list = []  # the listening ports of the frontend (set by the worker service)
        self.paused = False

    def opened(self, count: int) -> None:
        """A client connection was accepted; ``count`` is how many are open now."""
        if self.maxconn is not None and count >= self.maxconn and not self.paused:
            self.paused = True
            for port in self.ports:
                port.stopReading()

    def closed(self, count: int) -> None:
        if self.paused and count < self.maxconn:
            self.paused = False
            for port in self.ports:
                port.startReading()
