"""Owns the worker's end of the control channel: lines from the master
(``soft-stop``, ``hard-stop``) turned into calls, and lines to it (``ready``).

The channel is a pair of inherited pipes; a line longer than
`minilb.master.control.MAX_CONTROL_LINE`, or the master closing its end (it died),
is treated as a hard stop.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import protocol

from minilb.master.control import (
    HARD_STOP,
    SOFT_STOP,
    ControlLineTooLong,
    LineBuffer,
    control_line,
)


class ControlProtocol(protocol.Protocol):
    def __init__(
        self,
        on_soft_stop: Callable[[], None],
        on_hard_stop: Callable[[str], None],
        log: Callable[[str, str], None],
    ):
        self.on_soft_stop = on_soft_stop
        self.on_hard_stop = on_hard_stop
        self.log = log
        self.lines = LineBuffer()

    def send(self, text: str) -> None:
        if self.transport is not None:
            self.transport.write(control_line(text))

    def dataReceived(self, data: bytes) -> None:
        try:
            lines = self.lines.feed(data)
        except ControlLineTooLong as exc:
            self.on_hard_stop(str(exc))
            return
        for line in lines:
            if line == SOFT_STOP:
                self.on_soft_stop()
            elif line == HARD_STOP:
                self.on_hard_stop("hard stop asked by the master")
            elif line:
                self.log("warning", f"unknown control line from the master: {line[:80]!r}")

    def connectionLost(self, reason=None) -> None:
        self.on_hard_stop("the master closed the control channel")
