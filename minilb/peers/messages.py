"""Owns the values of the peers protocol: one frozen class per handshake line and message.

These are plain values; `minilb.peers.codec` turns them into bytes and back, and
`minilb.peers.session` / `minilb.peers.sync` decide when to send them.  Message classes
and types follow peers-wire.md sections 4-6 (class 0 control, class 1 error, class 10
stick-table; type bit 7 set means a varint length and a body follow).
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

import attrs

PROTOCOL_NAME = "HAProxyS"
VERSION_2_1 = "2.1"
VERSION_2_0 = "2.0"

# Message classes.
CLASS_CONTROL = 0
CLASS_ERROR = 1
CLASS_STICKTABLE = 10
CLASS_RESERVED = 255

# Control types (class 0).
CONTROL_RESYNC_REQUEST = 0
CONTROL_RESYNC_FINISHED = 1
CONTROL_RESYNC_PARTIAL = 2
CONTROL_RESYNC_CONFIRM = 3
CONTROL_HEARTBEAT = 4

# Error types (class 1).
ERROR_PROTOCOL = 0
ERROR_SIZE_LIMIT = 1

# Stick-table types (class 10).
STKT_UPDATE = 0x80
STKT_INCUPDATE = 0x81
STKT_DEFINE = 0x82
STKT_SWITCH = 0x83
STKT_ACK = 0x84
STKT_UPDATE_TIMED = 0x85
STKT_INCUPDATE_TIMED = 0x86

# Wire key types of DEFINE.
KEY_INTEGER = 2
KEY_IPV4 = 4
KEY_IPV6 = 5
KEY_STRING = 6
KEY_BINARY = 7
KEY_TYPES = (KEY_INTEGER, KEY_IPV4, KEY_IPV6, KEY_STRING, KEY_BINARY)

# Handshake status codes (peers-wire.md section 3.2).
STATUS_OK = 200
STATUS_TRY_AGAIN = 300
STATUS_PROTOCOL_ERROR = 501
STATUS_BAD_VERSION = 502
STATUS_NOT_ME = 503
STATUS_UNKNOWN_PEER = 504
STATUS_CODES = (200, 300, 501, 502, 503, 504)
STATUS_REASONS = {
    200: "session established",
    300: "try again later",
    501: "protocol error",
    502: "bad version",
    503: "remote peer did not recognise its name",
    504: "we are unknown to the remote peer",
}


@attrs.frozen
class Hello:
    """The three hello lines a connector sends: ``HAProxyS <version>``, the name of the
    peer it contacts, and ``<its own name> <pid> <relative pid>``."""

    target: str
    sender: str
    pid: int
    relative_pid: int = 1
    version: str = VERSION_2_1


@attrs.frozen
class StatusLine:
    """The acceptor's one-line answer to a hello (``200\\n`` ...)."""

    code: int

    @property
    def reason(self) -> str:
        return STATUS_REASONS.get(self.code, "unknown status")


# --- class 0: control messages (two bytes, no body) ---


@attrs.frozen
class ResyncRequest:
    """``00 00``: teach me every entry of every table."""


@attrs.frozen
class ResyncFinished:
    """``00 01``: end of a full teach by a fully synchronised teacher."""


@attrs.frozen
class ResyncPartial:
    """``00 02``: end of a full teach by a teacher that is not synchronised itself."""


@attrs.frozen
class ResyncConfirm:
    """``00 03``: the learner's answer to FINISHED / PARTIAL."""


@attrs.frozen
class Heartbeat:
    """``00 04``: sent after 3 s without pushing anything."""


# --- class 1: errors (two bytes, sent just before closing) ---


@attrs.frozen
class ProtocolErrorMsg:
    """``01 00``: malformed message."""


@attrs.frozen
class SizeLimitErrorMsg:
    """``01 01``: a message longer than the receiver's buffer."""


# --- class 10: stick-table messages ---


@attrs.frozen
class DefineParam:
    """A DEFINE parameter block: the data type's bit number, then the element count for
    arrays and the period (ms) for rate counters."""

    data_type: int
    count: int | None = None
    period: int | None = None


@attrs.frozen
class Define:
    """``0a 82``: the sender's table ``table_id`` is ``name`` with this key and these
    data types (bitfield, bit n = data type n); later updates refer to it.  ``expire`` is
    None when the (old-style) message omits it, in which case ``params`` is empty."""

    table_id: int
    name: str
    key_type: int
    key_len: int
    data_types: int
    expire: int | None = 0
    params: tuple[DefineParam, ...] = ()

    def bits(self) -> tuple[int, ...]:
        """The data-type bit numbers of ``data_types``, increasing (wire value order)."""
        return bits_of(self.data_types)

    def param_for(self, bit: int) -> DefineParam | None:
        for param in self.params:
            if param.data_type == bit:
                return param
        return None


@attrs.frozen
class Switch:
    """``0a 83``: make the sender's table ``table_id`` (announced earlier) current."""

    table_id: int


class RateValue(NamedTuple):
    """A frequency counter on the wire: how long ago its current period started
    (``age``, ms, modulo 2**32), the events in it, and the events of the previous one.
    A named tuple, so the stick table's ``(age, curr, prev)`` tuples are the same value."""

    age: int
    curr: int
    prev: int


#: A decoded data value: int (s32/u32/u64), RateValue, str or None (server_key),
#: a tuple of ints (gpt/gpc) or of RateValue (gpc_rate).
Value = int | RateValue | str | None | tuple
#: A decoded key: int (integer), IPv4Address, IPv6Address, bytes (string, binary).
Key = int | ipaddress.IPv4Address | ipaddress.IPv6Address | bytes


@attrs.frozen
class Update:
    """An entry of the current table: ``0a 80`` (update_id set, expire None),
    ``0a 81`` (incremental: update_id None), ``0a 85`` / ``0a 86`` (TIMED: expire = ms
    left).  ``values`` pairs each data-type name with its value, in bit order.

    The decoder also records which sender table the update belongs to (``table_id``)
    and its update id after resolving the implicit one (``resolved_id``); they are
    context, not wire fields, and do not take part in equality."""

    update_id: int | None
    expire: int | None
    key: Key
    values: tuple[tuple[str, Value], ...] = ()
    table_id: int | None = attrs.field(default=None, eq=False)
    resolved_id: int | None = attrs.field(default=None, eq=False)

    @property
    def type_code(self) -> int:
        if self.expire is None:
            return STKT_UPDATE if self.update_id is not None else STKT_INCUPDATE
        return STKT_UPDATE_TIMED if self.update_id is not None else STKT_INCUPDATE_TIMED

    def value(self, name: str) -> Value:
        for key, value in self.values:
            if key == name:
                return value
        raise KeyError(name)

    def as_dict(self) -> dict[str, Value]:
        return dict(self.values)


@attrs.frozen
class Applied:
    """Not a wire message: what a decoder given a table's fast path (see
    `minilb.peers.codec.update_runner`) returns in place of ``count`` consecutive
    updates of the sender's table ``table_id`` that it stored straight into the local
    table; ``last_id`` is the (resolved) update id of the last of them."""

    table_id: int
    count: int
    last_id: int


@attrs.frozen
class Ack:
    """``0a 84``: the last update id received for the *sender's* table ``table_id``."""

    table_id: int
    update_id: int


@attrs.frozen
class Unknown:
    """A message of an unknown class or type: skipped by the receiver."""

    msg_class: int
    msg_type: int
    body: bytes = b""


Message = (
    ResyncRequest
    | ResyncFinished
    | ResyncPartial
    | ResyncConfirm
    | Heartbeat
    | ProtocolErrorMsg
    | SizeLimitErrorMsg
    | Define
    | Switch
    | Update
    | Ack
    | Unknown
)

#: (class, type) of each two-byte message, and back.
SIMPLE_CODES: dict[type, tuple[int, int]] = {
    ResyncRequest: (CLASS_CONTROL, CONTROL_RESYNC_REQUEST),
    ResyncFinished: (CLASS_CONTROL, CONTROL_RESYNC_FINISHED),
    ResyncPartial: (CLASS_CONTROL, CONTROL_RESYNC_PARTIAL),
    ResyncConfirm: (CLASS_CONTROL, CONTROL_RESYNC_CONFIRM),
    Heartbeat: (CLASS_CONTROL, CONTROL_HEARTBEAT),
    ProtocolErrorMsg: (CLASS_ERROR, ERROR_PROTOCOL),
    SizeLimitErrorMsg: (CLASS_ERROR, ERROR_SIZE_LIMIT),
}
SIMPLE_BY_CODE: dict[tuple[int, int], type] = {code: cls for cls, code in SIMPLE_CODES.items()}


def bits_of(bitfield: int) -> tuple[int, ...]:
    """Bit numbers set in ``bitfield``, increasing."""
    out = []
    bit = 0
    while bitfield:
        if bitfield & 1:
            out.append(bit)
        bitfield >>= 1
        bit += 1
    return tuple(out)
