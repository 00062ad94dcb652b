"""Owns one peers connection as a state machine fed bytes: the text handshake, then the
binary message stream through the codec (peers-wire.md section 3).  No I/O, no clock.

A connector (`Session.connect`) queues the exact three hello lines at once, then waits
for the status line: ``200`` establishes the session; any other code closes it with the
reason, and ``502`` asks to announce version 2.0 next time (`downgrade_next`).

An acceptor (`Session.accept`) checks the hello line by line in HAProxy's order and
answers ``501`` (not ``HAProxyS ``), ``502`` (version other than 2.0/2.1), ``503`` (line
2 is not our name), ``501`` (line 3 without a space), ``504`` (unknown sender), ``300``
(the `busy` callback says so: an old process is already teaching us), else ``200``.
CRLF line ends are accepted; a line longer than `MAX_LINE` is a protocol error.

The owner calls `receive_data(data)` and gets the decoded messages, takes the bytes to
write with `data_to_send()`, queues messages with `send(msg)`, and closes the transport
once `state` is `CLOSED` and nothing is left to send.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

from minilb.peers import codec
from minilb.peers import messages as m

MAX_LINE = 512

# states
HELLO_SENT = "hello-sent"  # connector waiting for the status line
AWAIT_HELLO = "await-hello"  # acceptor reading the three hello lines
ESTABLISHED = "established"
CLOSED = "closed"

_VERSION = re.compile(r"^(\d+)\.(\d+)$")


class Session:
    """One peers connection (see the module docstring)."""

    def __init__(
        self,
        role: str,
        local_name: str,
        *,
        remote_name: str | None = None,
        peer_names: Collection[str] = (),
        busy: Callable[[str], bool] | None = None,
        limit: int = codec.DEFAULT_LIMIT,
        accept_define: Callable[[m.Define], bool] | None = None,
        raw_ip_keys: bool = False,
    ):
        self.role = role
        self.local_name = local_name
        self.remote_name = remote_name
        self._peer_names = peer_names
        self._busy = busy
        self.state = AWAIT_HELLO if role == "accept" else HELLO_SENT
        #: the status code sent (acceptor) or received (connector), once known
        self.status: int | None = None
        #: why the session closed (None while open)
        self.close_reason: str | None = None
        #: the remote side spoke version 2.0: it must not get TIMED updates
        self.remote_version = m.VERSION_2_1
        #: connector got 502: announce 2.0 on the next attempt
        self.downgrade_next = False
        #: the hello as parsed by the acceptor
        self.hello: m.Hello | None = None
        self.encoder = codec.Encoder(limit)
        self.decoder = codec.Decoder(limit, accept_define, raw_ip_keys=raw_ip_keys)
        self._out = bytearray()
        self._lines: list[str] = []
        self._inbuf = bytearray()
        self.messages_received = 0
        self._decoder_failed = False

    # ------------------------------------------------------------------ constructors
    @classmethod
    def connect(
        cls,
        local_name: str,
        remote_name: str,
        pid: int,
        *,
        version: str = m.VERSION_2_1,
        limit: int = codec.DEFAULT_LIMIT,
        accept_define: Callable[[m.Define], bool] | None = None,
        raw_ip_keys: bool = False,
    ) -> Session:
        """A connector to ``remote_name``; the hello is queued at once."""
        session = cls(
            "connect",
            local_name,
            remote_name=remote_name,
            limit=limit,
            accept_define=accept_define,
            raw_ip_keys=raw_ip_keys,
        )
        session._out += codec.encode_hello(m.Hello(remote_name, local_name, pid, 1, version))
        return session

    @classmethod
    def accept(
        cls,
        local_name: str,
        peer_names: Collection[str],
        *,
        busy: Callable[[str], bool] | None = None,
        limit: int = codec.DEFAULT_LIMIT,
        accept_define: Callable[[m.Define], bool] | None = None,
        raw_ip_keys: bool = False,
    ) -> Session:
        """An acceptor for the section whose peers are ``peer_names`` (ours included)."""
        return cls(
            "accept",
            local_name,
            peer_names=peer_names,
            busy=busy,
            limit=limit,
            accept_define=accept_define,
            raw_ip_keys=raw_ip_keys,
        )

    # ------------------------------------------------------------------ queries
    @property
    def established(self) -> bool:
        return self.state == ESTABLISHED

    @property
    def closed(self) -> bool:
        return self.state == CLOSED

    @property
    def decoder_failed(self) -> bool:
        """The remote side sent a malformed message (we answered 01 00 / 01 01)."""
        return self._decoder_failed

    @property
    def remote_is_2_0(self) -> bool:
        return self.remote_version == m.VERSION_2_0

    # ------------------------------------------------------------------ output
    def send(self, msg: m.Message) -> None:
        """Queue a message (only on an established session)."""
        if self.state != ESTABLISHED:
            raise RuntimeError(f"cannot send on a {self.state} session")
        self._out += self.encoder.encode(msg)

    def send_raw(self, data: bytes) -> None:
        """Queue bytes already encoded with this session's `encoder`."""
        self._out += data

    def data_to_send(self) -> bytes:
        """Everything queued since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def pending_output(self) -> int:
        return len(self._out)

    def close(self, reason: str) -> None:
        """Close locally (nothing more is sent or decoded)."""
        if self.state != CLOSED:
            self.state = CLOSED
            self.close_reason = reason

    # ------------------------------------------------------------------ input
    def receive_data(self, data: bytes) -> list[m.Message]:
        """Feed received bytes; returns the messages they complete (after the handshake)."""
        if self.state == CLOSED:
            return []
        if self.state == ESTABLISHED:
            return self._decode(data)
        self._inbuf += data
        while self.state in (AWAIT_HELLO, HELLO_SENT):
            end = self._inbuf.find(b"\n")
            if end < 0:
                if len(self._inbuf) > MAX_LINE:
                    self._fail_handshake("handshake line too long")
                return []
            if end > MAX_LINE:
                self._fail_handshake("handshake line too long")
                return []
            line = bytes(self._inbuf[:end])
            del self._inbuf[: end + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            text = line.decode("utf-8", "surrogateescape")
            if self.state == AWAIT_HELLO:
                self._hello_line(text)
            else:
                self._status_line(text)
        if self.state == ESTABLISHED and self._inbuf:
            rest = bytes(self._inbuf)
            self._inbuf.clear()
            return self._decode(rest)
        return []

    def _decode(self, data: bytes) -> list[m.Message]:
        try:
            msgs = self.decoder.feed(data)
        except codec.PeersProtocolError as exc:
            self._decoder_failed = True
            self._out += exc.answer
            self.close(str(exc))
            self.messages_received += len(exc.messages)
            return exc.messages
        self.messages_received += len(msgs)
        return msgs

    def _fail_handshake(self, reason: str) -> None:
        if self.role == "accept":
            self._answer(m.STATUS_PROTOCOL_ERROR, reason)
        else:
            self.close(reason)

    def _answer(self, code: int, reason: str | None = None) -> None:
        self.status = code
        self._out += codec.encode_status(code)
        if code == m.STATUS_OK:
            self.state = ESTABLISHED
        else:
            self.close(reason or m.STATUS_REASONS.get(code, "refused"))

    def _hello_line(self, line: str) -> None:
        self._lines.append(line)
        index = len(self._lines)
        if index == 1:
            prefix = m.PROTOCOL_NAME + " "
            if not line.startswith(prefix):
                return self._answer(m.STATUS_PROTOCOL_ERROR, "hello does not start with 'HAProxyS '")
            match = _VERSION.match(line[len(prefix) :])
            if not match or int(match.group(1)) != 2 or int(match.group(2)) > 1:
                return self._answer(m.STATUS_BAD_VERSION, f"unsupported version in {line!r}")
            self.remote_version = f"{int(match.group(1))}.{int(match.group(2))}"
        elif index == 2:
            if line != self.local_name:
                return self._answer(m.STATUS_NOT_ME, f"hello for {line!r}, we are {self.local_name!r}")
        else:
            if " " not in line:
                return self._answer(m.STATUS_PROTOCOL_ERROR, "hello third line without a space")
            sender, _, rest = line.partition(" ")
            if sender not in self._peer_names:
                return self._answer(m.STATUS_UNKNOWN_PEER, f"unknown peer {sender!r}")
            pid_text, _, relative = rest.partition(" ")
            self.remote_name = sender
            self.hello = m.Hello(
                self.local_name,
                sender,
                int(pid_text) if pid_text.isdigit() else 0,
                int(relative) if relative.isdigit() else 0,
                self.remote_version,
            )
            if self._busy is not None and self._busy(sender):
                return self._answer(m.STATUS_TRY_AGAIN, f"peer {sender!r} is already teaching us")
            return self._answer(m.STATUS_OK)

    def _status_line(self, line: str) -> None:
        code = int(line) if len(line) == 3 and line.isdigit() else None
        self.status = code
        if code == m.STATUS_OK:
            self.state = ESTABLISHED
            return
        if code == m.STATUS_BAD_VERSION:
            self.downgrade_next = True
        if code is None:
            self.close(f"invalid status line {line!r}")
        else:
            self.close(f"status {code}: {m.STATUS_REASONS.get(code, 'unknown status')}")
