"""Owns the one timer each proxied connection keeps (client side, server side, tunnel).

A connection changes what it waits for many times per request (headers, body, server
response, keep-alive); creating and cancelling a `DelayedCall` each time costs more
than the request itself.  `ConnTimer` keeps one `DelayedCall` and re-arms it with
``reset`` (cheap when the deadline moves later); ``kind`` says what the wait was so
that the owner's callback knows which timeout fired.
"""

from __future__ import annotations


class ConnTimer:
    __slots__ = ("clock", "callback", "call", "kind")

    def __init__(self, clock, callback):
        self.clock = clock  # anything with callLater: the reactor, task.Clock
        self.callback = callback  # callback(kind) when a deadline passes
        self.call = None
        self.kind: str | None = None

    def arm(self, seconds: float | None, kind: str) -> None:
        """Fire ``callback(kind)`` in ``seconds`` (None: no timeout for this wait)."""
        if seconds is None:
            self.kind = None
            return
        self.kind = kind
        call = self.call
        if call is not None and not call.called and not call.cancelled:
            call.reset(seconds)
        else:
            self.call = self.clock.callLater(seconds, self._fire)

    def disarm(self) -> None:
        """Nothing to wait for; the pending call (if any) fires as a no-op or is reused."""
        self.kind = None

    def stop(self) -> None:
        """The connection is gone: cancel for good."""
        self.kind = None
        call = self.call
        self.call = None
        if call is not None and not call.called and not call.cancelled:
            call.cancel()

    def _fire(self) -> None:
        kind = self.kind
        self.kind = None
        self.call = None
        if kind is not None:
            self.callback(kind)
