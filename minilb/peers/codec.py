"""Owns the binary wire format of the peers protocol: messages to bytes and bytes to messages.

`Encoder` turns messages into bytes for one direction of one session; it remembers the
table of the last DEFINE/SWITCH it encoded (updates are encoded against it) and its own
``server_key`` dictionary cache.  `Decoder` is fed the bytes received after the handshake
and returns the complete messages found so far (byte-by-byte feeding gives the same
messages as one feed); it keeps the receive-side state of the direction: the sender's
table definitions, the current table, the last update id per table (for the implicit ids
of incremental updates) and the receive dictionary cache.

The learner's hot path: given ``runner_for``, a `Decoder` stores the updates of a
table it has a generated `update_runner` for straight into the local stick table while
it walks the received buffer, and returns one `Applied` (count, last id) per run of
them instead of `Update` messages; everything else, and any message the runner does
not take, goes the generic way, so errors and results are the same.

Errors (peers-wire.md section 4): a message longer than ``limit`` raises
`PeersProtocolError` whose ``answer`` is ``01 01`` (size limit); class 255, a length varint
longer than 5 bytes or a malformed body raise it with ``01 00`` (protocol error).
Unknown classes and types are returned as `Unknown` and otherwise skipped.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Callable
from typing import Any

from minilb import speedups
from minilb.errors import ProtocolError
from minilb.peers import messages as m
from minilb.peers import varint
from minilb.stick.datatypes import BY_BIT

DEFAULT_LIMIT = 16384
#: server_key dictionary slots per session and direction (ids 1..128 on the wire).
DICT_SLOTS = 128

PROTOCOL_ERROR_ANSWER = b"\x01\x00"
SIZE_LIMIT_ANSWER = b"\x01\x01"

_U32 = struct.Struct(">I")
_U32_2 = struct.Struct(">II")
_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF


class PeersProtocolError(ProtocolError):
    """The remote peer sent something undecodable; send ``answer`` and close.

    ``messages`` holds the complete messages decoded before the bad one, in order."""

    def __init__(self, message: str, answer: bytes = PROTOCOL_ERROR_ANSWER, messages: list | None = None):
        super().__init__(message, answer)
        self.messages = messages or []


class _Truncated(Exception):
    """A field runs past the end of a message body."""


# ----------------------------------------------------------------------------------------
# Handshake lines
# ----------------------------------------------------------------------------------------


def encode_hello(hello: m.Hello) -> bytes:
    """The three hello lines, each ended by LF, exactly as HAProxy sends them."""
    return (
        f"{m.PROTOCOL_NAME} {hello.version}\n{hello.target}\n{hello.sender} {hello.pid} {hello.relative_pid}\n"
    ).encode()


def encode_status(code: int) -> bytes:
    """The acceptor's status line, e.g. ``b"200\\n"``."""
    return b"%d\n" % code


# ----------------------------------------------------------------------------------------
# Dictionary caches (server_key)
# ----------------------------------------------------------------------------------------


class DictionaryEncoderCache:
    """The sender's 128 slots, filled round-robin; slot ids on the wire are 1-based."""

    def __init__(self, slots: int = DICT_SLOTS):
        self._slots: list[str | None] = [None] * slots
        self._by_value: dict[str, int] = {}
        self._next = 0

    def lookup(self, value: str) -> tuple[int, bool]:
        """The wire id for ``value`` and whether it is new (must be sent in full)."""
        index = self._by_value.get(value)
        if index is not None:
            return index + 1, False
        index = self._next
        self._next = (index + 1) % len(self._slots)
        old = self._slots[index]
        if old is not None:
            del self._by_value[old]
        self._slots[index] = value
        self._by_value[value] = index
        return index + 1, True

    def entries(self) -> list[tuple[int, str]]:
        """(0-based slot, value) of every used slot, for `show peers dict`."""
        return [(i, v) for i, v in enumerate(self._slots) if v is not None]


class DictionaryDecoderCache:
    """The receiver's 128 slots, indexed by wire id - 1."""

    def __init__(self, slots: int = DICT_SLOTS):
        self._slots: list[str | None] = [None] * slots

    def define(self, slot_id: int, value: str) -> None:
        if not 1 <= slot_id <= len(self._slots):
            raise _BadField(f"server_key dictionary id {slot_id} out of range")
        self._slots[slot_id - 1] = value

    def get(self, slot_id: int) -> str | None:
        if not 1 <= slot_id <= len(self._slots):
            raise _BadField(f"server_key dictionary id {slot_id} out of range")
        return self._slots[slot_id - 1]

    def entries(self) -> list[tuple[int, str]]:
        return [(i, v) for i, v in enumerate(self._slots) if v is not None]


class _BadField(Exception):
    """A field with an impossible value (protocol error)."""


# ----------------------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------------------

_venc = varint.encode
_UPDATE_TYPES = frozenset((m.STKT_UPDATE, m.STKT_INCUPDATE, m.STKT_UPDATE_TIMED, m.STKT_INCUPDATE_TIMED))


def _frame(msg_type: int, body: bytes) -> bytes:
    return bytes((m.CLASS_STICKTABLE, msg_type)) + _venc(len(body)) + body


def _encode_define(msg: m.Define) -> bytes:
    name = msg.name.encode("utf-8", "surrogateescape")
    parts = [
        _venc(msg.table_id),
        _venc(len(name)),
        name,
        _venc(msg.key_type),
        _venc(msg.key_len),
        _venc(msg.data_types),
    ]
    if msg.expire is not None:
        parts.append(_venc(msg.expire))
        for param in msg.params:
            parts.append(_venc(param.data_type))
            if param.count is not None:
                parts.append(_venc(param.count))
            if param.period is not None:
                parts.append(_venc(param.period))
    return _frame(m.STKT_DEFINE, b"".join(parts))


def encode_key(key: m.Key | str, key_type: int, key_len: int) -> bytes:
    """A key as the current table's key type puts it on the wire (section 6.3.1)."""
    if key_type == m.KEY_IPV4:
        return ipaddress.IPv4Address(key).packed  # type: ignore[arg-type]
    if key_type == m.KEY_INTEGER:
        return _U32.pack(int(key) & _MASK32)  # type: ignore[arg-type]
    if key_type == m.KEY_STRING:
        raw = key.encode() if isinstance(key, str) else bytes(key)  # type: ignore[arg-type]
        raw = raw[: max(key_len - 1, 0)]
        return _venc(len(raw)) + raw
    if key_type == m.KEY_IPV6:
        return ipaddress.IPv6Address(key).packed  # type: ignore[arg-type]
    if key_type == m.KEY_BINARY:
        raw = key.encode() if isinstance(key, str) else bytes(key)  # type: ignore[arg-type]
        return raw[:key_len].ljust(key_len, b"\x00")
    raise ValueError(f"cannot encode a key of wire key type {key_type}")


class Encoder:
    """Encodes the messages of one direction of one session (see module docstring).

    ``limit`` bounds the body of each message (the peer's receive buffer)."""

    def __init__(self, limit: int = DEFAULT_LIMIT):
        self.limit = limit
        self.current: m.Define | None = None
        self.defines: dict[int, m.Define] = {}
        self.dictionary = DictionaryEncoderCache()
        self._plan_for: m.Define | None = None
        self._plan: tuple = ((), True)

    def encode(self, msg: m.Message) -> bytes:
        code = m.SIMPLE_CODES.get(type(msg))
        if code is not None:
            return bytes(code)
        if isinstance(msg, m.Update):
            return self.encode_update(msg)
        if isinstance(msg, m.Ack):
            return _frame(m.STKT_ACK, _venc(msg.table_id) + _U32.pack(msg.update_id & _MASK32))
        if isinstance(msg, m.Define):
            self.defines[msg.table_id] = msg
            self.current = msg
            return _encode_define(msg)
        if isinstance(msg, m.Switch):
            self.current = self.defines.get(msg.table_id)
            return _frame(m.STKT_SWITCH, _venc(msg.table_id))
        if isinstance(msg, m.Unknown):
            if msg.msg_type & 0x80:
                return bytes((msg.msg_class, msg.msg_type)) + _venc(len(msg.body)) + msg.body
            return bytes((msg.msg_class, msg.msg_type))
        raise TypeError(f"not a peers message: {msg!r}")

    def encode_update(self, msg: m.Update) -> bytes:
        return self.encode_entry(msg.update_id, msg.expire, msg.key, dict(msg.values))

    def encode_entry(self, update_id: int | None, expire: int | None, key: Any, values: dict) -> bytes:
        """An update of the current table without building an `Update` first (the
        replication hot path): ``update_id`` None means incremental, ``expire`` None
        non-timed; ``values`` maps data-type names to values (missing ones are 0)."""
        table = self.current
        if table is None:
            raise ValueError("an update needs a DEFINE (or SWITCH) first")
        if table is not self._plan_for:
            self._plan_for, self._plan = table, _plan(table)
        plan, complete = self._plan
        if not complete:
            raise ValueError(
                f"cannot encode data types of table {table.name!r} (bits 0x{table.data_types:x})"
            )
        if update_id is not None:
            if expire is not None:
                parts = [_U32_2.pack(update_id & _MASK32, expire & _MASK32)]
                msg_type = m.STKT_UPDATE_TIMED
            else:
                parts = [_U32.pack(update_id & _MASK32)]
                msg_type = m.STKT_UPDATE
        elif expire is not None:
            parts = [_U32.pack(expire & _MASK32)]
            msg_type = m.STKT_INCUPDATE_TIMED
        else:
            parts = []
            msg_type = m.STKT_INCUPDATE
        parts.append(encode_key(key, table.key_type, table.key_len))
        append = parts.append
        for name, kind, count in plan:
            value = values.get(name)
            if kind == "u32" or kind == "u64":
                append(_venc(value) if value else b"\x00")
            elif kind == "rate":
                append(_encode_rate(value))
            else:
                append(self._encode_value(kind, value, count))
        body = b"".join(parts)
        if len(body) > self.limit:
            raise ValueError(f"peers message of {len(body)} bytes exceeds the {self.limit}-byte limit")
        return bytes((m.CLASS_STICKTABLE, msg_type)) + _venc(len(body)) + body

    def _encode_value(self, kind: str, value: m.Value, count: int) -> bytes:
        if kind == "u32" or kind == "u64":
            return _venc(value or 0)  # type: ignore[arg-type]
        if kind == "rate":
            return _encode_rate(value)  # type: ignore[arg-type]
        if kind == "s32":
            return _venc((value or 0) & _MASK64)  # type: ignore[operator]
        if kind == "dict":
            if not value:
                return b"\x00"
            slot_id, new = self.dictionary.lookup(value)  # type: ignore[arg-type]
            ref = _venc(slot_id)
            if new:
                raw = value.encode("utf-8", "surrogateescape")  # type: ignore[union-attr]
                ref += _venc(len(raw)) + raw
            return _venc(len(ref)) + ref
        items = tuple(value or ())  # type: ignore[arg-type]
        if kind == "array_u32":
            return b"".join(_venc(items[i] if i < len(items) else 0) for i in range(count))
        if kind == "array_rate":
            return b"".join(_encode_rate(items[i] if i < len(items) else None) for i in range(count))
        raise ValueError(f"unknown data kind {kind}")


@functools.lru_cache(maxsize=1024)
def _plan(define: m.Define) -> tuple[tuple[tuple[str, str, int], ...], bool]:
    """(name, kind, element count) of each value of the table's updates, in wire order,
    and whether every data type is known (values of unknown newer types come last
    and are skipped by a decoder)."""
    plan = []
    for bit in define.bits():
        dt = BY_BIT.get(bit)
        if dt is None:
            return tuple(plan), False
        param = define.param_for(bit)
        plan.append((dt.name, dt.kind, (param.count or 0) if param is not None else 0))
    return tuple(plan), True


def update_plan(define: m.Define) -> tuple[tuple[str, str, int], ...]:
    """(name, kind, element count) of the values a decoded update of ``define``
    carries, in order (the decoder stops at the first data type it does not know)."""
    return _plan(define)[0]


def _encode_rate(rate: tuple[int, int, int] | None) -> bytes:
    """A rate as (age, curr, prev); `RateValue` or the stick table's plain tuple."""
    if rate is None:
        return b"\x00\x00\x00"
    age, curr, prev = rate
    return _venc(age & _MASK32) + _venc(curr & _MASK32) + _venc(prev & _MASK32)


def encode(msg: m.Message, table: m.Define | None = None, encoder: Encoder | None = None) -> bytes:
    """One message as bytes.  Updates are encoded against ``table`` (or the encoder's
    current table); pass the session's ``encoder`` to share its dictionary cache."""
    if encoder is None:
        encoder = Encoder()
    if table is not None:
        encoder.current = table
    return encoder.encode(msg)


# ----------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------


class _Body:
    """A cursor over one message body."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def varint(self, max_bytes: int = varint.MAX_BYTES_64) -> int:
        data, pos = self.data, self.pos
        if pos < self.end and data[pos] < 240:
            self.pos = pos + 1
            return data[pos]
        try:
            value, new = varint.decode(data if self.end == len(data) else data[: self.end], pos, max_bytes)
        except varint.VarintTruncated:
            raise _Truncated("truncated varint") from None
        except varint.VarintTooLong as exc:
            raise _BadField(str(exc)) from None
        self.pos = new
        return value

    def take(self, n: int) -> bytes:
        pos = self.pos
        if pos + n > self.end:
            raise _Truncated("field runs past the end of the message")
        self.pos = pos + n
        return self.data[pos : pos + n]

    def u32(self) -> int:
        return _U32.unpack(self.take(4))[0]

    @property
    def remaining(self) -> int:
        return self.end - self.pos


def decode_key(body: _Body, key_type: int, key_len: int, raw_ip: bool = False) -> m.Key:
    """A key of the current table; with ``raw_ip`` an IPv4 key is its int and an IPv6
    key its 16 bytes (the stick table's stored forms, cheaper than address objects)."""
    if key_type == m.KEY_IPV4:
        raw = body.take(4)
        return int.from_bytes(raw, "big") if raw_ip else ipaddress.IPv4Address(raw)
    if key_type == m.KEY_INTEGER:
        return body.u32()
    if key_type == m.KEY_STRING:
        return body.take(body.varint(varint.MAX_BYTES_32))
    if key_type == m.KEY_IPV6:
        raw = body.take(16)
        return raw if raw_ip else ipaddress.IPv6Address(raw)
    if key_type == m.KEY_BINARY:
        return body.take(key_len)
    raise _BadField(f"unknown key type {key_type}")


def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    """A varint of a message body at ``pos`` (the slow path of the generated decoders)."""
    try:
        return varint.decode(data, pos)
    except varint.VarintTruncated:
        raise _Truncated("truncated varint") from None
    except varint.VarintTooLong as exc:
        raise _BadField(str(exc)) from None


def _read_varint_lines(target: str, indent: str = "    ") -> list[str]:
    """Source reading one varint into ``target``: values of up to four bytes (below
    about 33 million) inline."""
    return [
        f"{indent}b = data[pos] if pos < end else 256",
        f"{indent}if b < 240:",
        f"{indent}    {target} = b",
        f"{indent}    pos += 1",
        f"{indent}elif b < 256 and pos + 1 < end and data[pos + 1] < 128:",
        f"{indent}    {target} = b + (data[pos + 1] << 4)",
        f"{indent}    pos += 2",
        f"{indent}elif b < 256 and pos + 2 < end and data[pos + 2] < 128:",
        f"{indent}    {target} = b + (data[pos + 1] << 4) + (data[pos + 2] << 11)",
        f"{indent}    pos += 3",
        f"{indent}elif b < 256 and pos + 3 < end and data[pos + 3] < 128:",
        f"{indent}    {target} = b + (data[pos + 1] << 4) + (data[pos + 2] << 11) + (data[pos + 3] << 18)",
        f"{indent}    pos += 4",
        f"{indent}else:",
        f"{indent}    {target}, pos = varint_at(data, pos)",
    ]


@functools.lru_cache(maxsize=256)
def _fast_update_decoder(plan: tuple, key_type: int, raw_ip: bool) -> Callable[..., tuple] | None:
    """For plans of plain counters and rates with an IPv4 (as int) or integer key: a
    generated ``decode(body, has_id, timed) -> (update_id, expire, key, values)`` that
    reads the body without intermediate objects; None for other tables."""
    if not (key_type == m.KEY_INTEGER or (key_type == m.KEY_IPV4 and raw_ip)):
        return None
    if any(kind not in ("u32", "u64", "rate") for _, kind, _ in plan):
        return None
    env: dict[str, Any] = {
        "U32": _U32.unpack_from,
        "varint_at": _varint_at,
        "Truncated": _Truncated,
        "M": _MASK32,
        "RV": m.RateValue,
        "new_tuple": tuple.__new__,
    }
    lines = [
        "def decode(data, has_id, timed):",
        "    end = len(data)",
        "    pos = 0",
        "    need = 4 + (4 if has_id else 0) + (4 if timed else 0)",
        "    if end < need:",
        "        raise Truncated('field runs past the end of the message')",
        "    if has_id:",
        "        update_id = U32(data, 0)[0]",
        "        pos = 4",
        "    else:",
        "        update_id = None",
        "    if timed:",
        "        expire = U32(data, pos)[0]",
        "        pos += 4",
        "    else:",
        "        expire = None",
        "    key = U32(data, pos)[0]",
        "    pos += 4",
    ]
    items = []
    for i, (name, kind, _count) in enumerate(plan):
        env[f"n{i}"] = name
        if kind == "rate":
            for part in "acp":
                lines += _read_varint_lines(f"{part}{i}")
            items.append(f"(n{i}, new_tuple(RV, (a{i} & M, c{i} & M, p{i} & M)))")
        else:
            lines += _read_varint_lines(f"v{i}")
            items.append(f"(n{i}, v{i} & M)" if kind == "u32" else f"(n{i}, v{i})")
    lines.append(f"    return update_id, expire, key, ({', '.join(items)}{',' if len(items) == 1 else ''})")
    exec("\n".join(lines), env)  # noqa: S102 - generated from the table definition
    return env["decode"]


#: what ends a runner's loop early: the message is then left to the generic decoder,
#: which decodes it or raises the protocol error it deserves
_RUNNER_STOP = (IndexError, struct.error, _Truncated, _BadField)
#: no limit on the updates one runner call stores (a feed is bounded by its data)
NO_LIMIT = 1 << 62
#: the compiled runner (``minilb_speedups.learn``: `update_runner`'s generated code
#: as C), or None: not built, or ``MINILB_PURE`` set
LEARN = speedups.load("learn", speedups.LEARN_API)


def _runner_varint_lines(target: str, indent: str, mask: bool) -> list[str]:
    """Source reading one varint of ``buf`` at ``p`` into ``target``: values of up to
    four bytes inline (below about 33 million, in range for 32 bits), longer ones through `_varint_at` and cut to 32 bits if
    ``mask`` (bounds are checked after the whole message: see `update_runner`)."""
    return [
        f"{indent}b = buf[p]",
        f"{indent}if b < 240:",
        f"{indent}    {target} = b",
        f"{indent}    p += 1",
        f"{indent}else:",
        f"{indent}    c = buf[p + 1]",
        f"{indent}    if c < 128:",
        f"{indent}        {target} = b + (c << 4)",
        f"{indent}        p += 2",
        f"{indent}    elif buf[p + 2] < 128:",
        f"{indent}        {target} = b + (c << 4) + (buf[p + 2] << 11)",
        f"{indent}        p += 3",
        f"{indent}    elif buf[p + 3] < 128:",
        f"{indent}        {target} = b + (c << 4) + (buf[p + 2] << 11) + (buf[p + 3] << 18)",
        f"{indent}        p += 4",
        f"{indent}    else:",
        f"{indent}        {target}, p = varint_at(buf, p)",
        *([f"{indent}        {target} &= M"] if mask else []),
    ]


def update_runner(
    define: m.Define, source: tuple[dict, list, list], compiled: Any = LEARN
) -> Callable[..., tuple] | None:
    """The learner's fast path for the updates of one sender table: a generated
    ``run(buf, pos, end, last_id, max_count) -> (pos, last_id, count)`` that decodes
    the consecutive UPDATE / INCREMENTAL / TIMED messages found in ``buf[pos:end]``
    (a whole received buffer) and stores each straight into the local table, with no
    message object or value tuple in between.  ``source`` is the table's
    ``remote_apply_source(update_plan(define))`` (``key``, ``expire_ms``, ``val_i`` or
    ``age_i``/``curr_i``/``prev_i`` in, ``row`` out).

    It stops before the first message it does not handle: another class or type, a
    length of two bytes or more, an incomplete message, or a body it cannot read
    (truncated, varint too long): the caller decodes that one the generic way, which
    gives the same result or the protocol error, so nothing of a bad message is
    stored.  ``last_id`` is the last update id received (for implicit ids); None for
    tables with other keys than IPv4/integer or values other than counters and rates.

    With ``compiled`` (the `LEARN` module by default) the run returned is its
    equivalent of the generated one (same stores, same stops), the generated one
    standing behind it for calls outside what `Decoder` passes.
    """
    plan = _plan(define)[0]
    if define.key_type not in (m.KEY_IPV4, m.KEY_INTEGER) or source is None:
        return None
    if any(kind not in ("u32", "u64", "rate") for _, kind, _ in plan):
        return None
    table_env, prologue, apply_lines = source
    env: dict[str, Any] = {
        "U32": _U32.unpack_from,
        "U32_2": _U32_2.unpack_from,
        "U32_3": struct.Struct(">III").unpack_from,
        "varint_at": _varint_at,
        "M": _MASK32,
        "Stop": _RUNNER_STOP,
    }
    if env.keys() & table_env.keys():
        raise ValueError(f"name clash in generated code: {sorted(env.keys() & table_env.keys())}")
    env.update(table_env)
    lines = [
        "def run(buf, pos, end, last_id, max_count):",
        "    count = 0",
        *["    " + line for line in prologue],
        "    try:",
        "        while count < max_count and end - pos >= 3 and buf[pos] == 10:",
        "            length = buf[pos + 2]",
        "            p = pos + 3",
        "            stop = p + length",
        "            if length >= 240 or stop > end:",
        "                break",
        "            t = buf[pos + 1]",
        "            if t == 0x86:",
        "                uid = (last_id + 1) & M",
        "                expire_ms, key = U32_2(buf, p)",
        "                p += 8",
        "            elif t == 0x81:",
        "                uid = (last_id + 1) & M",
        "                expire_ms = None",
        "                key = U32(buf, p)[0]",
        "                p += 4",
        "            elif t == 0x85:",
        "                uid, expire_ms, key = U32_3(buf, p)",
        "                p += 12",
        "            elif t == 0x80:",
        "                uid, key = U32_2(buf, p)",
        "                expire_ms = None",
        "                p += 8",
        "            else:",
        "                break",
    ]
    for i, (_name, kind, _count) in enumerate(plan):
        if kind == "rate":
            for part in ("age", "curr", "prev"):
                lines += _runner_varint_lines(f"{part}_{i}", " " * 12, True)
        else:
            lines += _runner_varint_lines(f"val_{i}", " " * 12, kind == "u32")
    lines += [
        "            if p > stop:",
        "                break",  # truncated: the generic decoder says so
        *["            " + line for line in apply_lines],
        "            last_id = uid",
        "            pos = stop",
        "            count += 1",
        "    except Stop:",
        "        pass",
        "    return pos, last_id, count",
    ]
    exec("\n".join(lines), env)  # noqa: S102 - generated from the table definition
    run = env["run"]
    if compiled is not None:
        fast = compiled.make_runner(table_env, tuple(kind for _, kind, _ in plan), run)
        if fast is not None:
            return fast
    return run


def _params_consistent(define: m.Define) -> bool:
    """Whether the parameter blocks describe every rate/array type of the bitfield."""
    for bit in define.bits():
        dt = BY_BIT.get(bit)
        if dt is None or not dt.has_param_block:
            continue
        param = define.param_for(bit)
        if define.expire is None:
            if dt.is_array:
                return False
            continue
        if param is None:
            return False
        if dt.is_array and not param.count:
            return False
    return define.key_type in m.KEY_TYPES


class Decoder:
    """Incremental decoder of one receive direction (see the module docstring).

    ``accept_define(define) -> bool`` lets the owner refuse a table (unknown name, other
    key type or length): the updates that follow it are then returned as `Unknown`
    without being decoded, as HAProxy skips them."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        accept_define: Callable[[m.Define], bool] | None = None,
        raw_ip_keys: bool = False,
        runner_for: Callable[[m.Define], Callable[..., tuple] | None] | None = None,
    ):
        self.limit = limit
        #: ``runner_for(define)``: the `update_runner` storing the updates of an
        #: accepted table straight into the local one (they are then reported as
        #: `Applied`), or None to return them as `Update` messages
        self.runner_for = runner_for
        self._runner: Callable[..., tuple] | None = None
        #: return IPv4 keys as int and IPv6 keys as 16 bytes (see `decode_key`)
        self.raw_ip_keys = raw_ip_keys
        self.accept_define = accept_define
        self._buf = bytearray()
        self._failed: PeersProtocolError | None = None
        self.defines: dict[int, m.Define] = {}
        self.current: m.Define | None = None
        self._current_usable = False
        self.last_update_ids: dict[int, int] = {}
        self.dictionary = DictionaryDecoderCache()
        self._plan_for: m.Define | None = None
        self._plan: tuple = ()
        self._fast: Callable[..., tuple] | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[m.Message]:
        """Add received bytes; return every message they complete."""
        if self._failed is not None:
            raise self._failed
        buf = self._buf
        buf += data
        out: list[m.Message] = []
        pos = 0
        end = len(buf)
        last_ids = self.last_update_ids
        try:
            while end - pos >= 2:
                msg_class = buf[pos]
                msg_type = buf[pos + 1]
                runner = self._runner
                if runner is not None and msg_class == m.CLASS_STICKTABLE and msg_type in _UPDATE_TYPES:
                    table_id = self.current.table_id  # type: ignore[union-attr]
                    new_pos, last_id, count = runner(buf, pos, end, last_ids.get(table_id, 0), NO_LIMIT)
                    if count:
                        last_ids[table_id] = last_id
                        out.append(m.Applied(table_id, count, last_id))
                        pos = new_pos
                        continue
                if msg_class == m.CLASS_RESERVED:
                    raise PeersProtocolError("message of reserved class 255")
                if not msg_type & 0x80:
                    out.append(self._decode_simple(msg_class, msg_type))
                    pos += 2
                    continue
                if end - pos > 2 and buf[pos + 2] < 240:  # a one-byte length (most messages)
                    length = buf[pos + 2]
                    body_start = pos + 3
                else:
                    try:
                        length, body_start = varint.decode(buf, pos + 2, varint.MAX_BYTES_32)
                    except varint.VarintTruncated:
                        break
                    except varint.VarintTooLong:
                        raise PeersProtocolError("message length varint longer than 5 bytes") from None
                if length > self.limit:
                    raise PeersProtocolError(
                        f"message length {length} exceeds the {self.limit}-byte limit", SIZE_LIMIT_ANSWER
                    )
                body_end = body_start + length
                if body_end > end:
                    break
                body = bytes(buf[body_start:body_end])
                pos = body_end
                if msg_class == m.CLASS_STICKTABLE and msg_type in _UPDATE_TYPES:
                    try:  # the replication hot path, without the generic dispatch
                        out.append(self._decode_update(msg_type, body))
                    except (_Truncated, _BadField) as exc:
                        raise PeersProtocolError(
                            f"malformed stick-table message 0x{msg_type:02x}: {exc}"
                        ) from None
                    continue
                out.append(self._decode_body(msg_class, msg_type, body))
        except PeersProtocolError as exc:
            exc.messages = out
            self._failed = exc
            del buf[:]
            raise
        del buf[:pos]
        return out

    def _decode_simple(self, msg_class: int, msg_type: int) -> m.Message:
        cls = m.SIMPLE_BY_CODE.get((msg_class, msg_type))
        if cls is None:
            return m.Unknown(msg_class, msg_type)
        return cls()

    def _decode_body(self, msg_class: int, msg_type: int, body: bytes) -> m.Message:
        if msg_class != m.CLASS_STICKTABLE:
            return m.Unknown(msg_class, msg_type, body)
        try:
            if msg_type in (m.STKT_UPDATE, m.STKT_INCUPDATE, m.STKT_UPDATE_TIMED, m.STKT_INCUPDATE_TIMED):
                return self._decode_update(msg_type, body)
            if msg_type == m.STKT_ACK:
                reader = _Body(body)
                table_id = reader.varint(varint.MAX_BYTES_32)
                return m.Ack(table_id, reader.u32())
            if msg_type == m.STKT_DEFINE:
                return self._decode_define(body)
            if msg_type == m.STKT_SWITCH:
                table_id = _Body(body).varint(varint.MAX_BYTES_32)
                self.current = self.defines.get(table_id)
                self._current_usable = self.current is not None and self._usable(self.current)
                self._set_runner()
                return m.Switch(table_id)
        except (_Truncated, _BadField) as exc:
            raise PeersProtocolError(f"malformed stick-table message 0x{msg_type:02x}: {exc}") from None
        return m.Unknown(msg_class, msg_type, body)

    def _usable(self, define: m.Define) -> bool:
        if not _params_consistent(define):
            return False
        return self.accept_define is None or bool(self.accept_define(define))

    def _decode_define(self, body: bytes) -> m.Define:
        reader = _Body(body)
        table_id = reader.varint(varint.MAX_BYTES_32)
        name = reader.take(reader.varint(varint.MAX_BYTES_32)).decode("utf-8", "surrogateescape")
        if reader.remaining == 0:
            raise _Truncated("nothing after the table name")
        key_type = reader.varint(varint.MAX_BYTES_32)
        key_len = reader.varint(varint.MAX_BYTES_32)
        data_types = reader.varint()
        expire: int | None = None
        params: list[m.DefineParam] = []
        if reader.remaining:
            expire = reader.varint(varint.MAX_BYTES_32)
            for bit in m.bits_of(data_types):
                dt = BY_BIT.get(bit)
                if dt is None or not dt.has_param_block or reader.remaining == 0:
                    continue
                block_type = reader.varint(varint.MAX_BYTES_32)
                count = reader.varint(varint.MAX_BYTES_32) if dt.is_array else None
                period = reader.varint(varint.MAX_BYTES_32) if dt.is_rate else None
                params.append(m.DefineParam(block_type, count, period))
                if block_type != bit:
                    break  # inconsistent: the table is ignored (see _params_consistent)
        define = m.Define(table_id, name, key_type, key_len, data_types, expire, tuple(params))
        # ids can be reused by the sender: a newer DEFINE replaces the older one
        self.defines[table_id] = define
        self.current = define
        self._current_usable = self._usable(define)
        self._set_runner()
        return define

    def _set_runner(self) -> None:
        usable = self._current_usable and self.runner_for is not None and self.raw_ip_keys
        self._runner = self.runner_for(self.current) if usable else None  # type: ignore[misc,arg-type]

    def _decode_update(self, msg_type: int, body: bytes) -> m.Message:
        table = self.current
        if table is None or not self._current_usable:
            return m.Unknown(m.CLASS_STICKTABLE, msg_type, body)
        if table is not self._plan_for:
            self._plan_for, self._plan = table, _plan(table)[0]
            self._fast = _fast_update_decoder(self._plan, table.key_type, self.raw_ip_keys)
        if self._fast is not None:
            has_id = msg_type == m.STKT_UPDATE or msg_type == m.STKT_UPDATE_TIMED
            update_id, expire, key, values = self._fast(
                body, has_id, msg_type == m.STKT_UPDATE_TIMED or msg_type == m.STKT_INCUPDATE_TIMED
            )
            if has_id:
                resolved = update_id
            else:
                resolved = (self.last_update_ids.get(table.table_id, 0) + 1) & _MASK32
            self.last_update_ids[table.table_id] = resolved
            return m.Update(update_id, expire, key, values, table_id=table.table_id, resolved_id=resolved)
        reader = _Body(body)
        update_id: int | None = None
        if msg_type in (m.STKT_UPDATE, m.STKT_UPDATE_TIMED):
            update_id = reader.u32()
            resolved = update_id
        else:
            resolved = (self.last_update_ids.get(table.table_id, 0) + 1) & _MASK32
        expire = reader.u32() if msg_type in (m.STKT_UPDATE_TIMED, m.STKT_INCUPDATE_TIMED) else None
        key = decode_key(reader, table.key_type, table.key_len, self.raw_ip_keys)
        values: list[tuple[str, m.Value]] = []
        append = values.append
        # values of data types newer than ours come last: the rest of the body is skipped
        if table is not self._plan_for:
            self._plan_for, self._plan = table, _plan(table)[0]
        for name, kind, count in self._plan:
            if kind == "u32":
                append((name, reader.varint() & _MASK32))
            elif kind == "rate":
                append(
                    (
                        name,
                        m.RateValue(
                            reader.varint() & _MASK32, reader.varint() & _MASK32, reader.varint() & _MASK32
                        ),
                    )
                )
            else:
                append((name, self._decode_value(reader, kind, count)))
        self.last_update_ids[table.table_id] = resolved
        return m.Update(update_id, expire, key, tuple(values), table_id=table.table_id, resolved_id=resolved)

    def _decode_value(self, reader: _Body, kind: str, count: int) -> m.Value:
        if kind == "u32":
            return reader.varint() & _MASK32
        if kind == "rate":
            return m.RateValue(
                reader.varint() & _MASK32, reader.varint() & _MASK32, reader.varint() & _MASK32
            )
        if kind == "u64":
            return reader.varint()
        if kind == "s32":
            value = reader.varint() & _MASK32
            return value - (1 << 32) if value & 0x80000000 else value
        if kind == "dict":
            length = reader.varint(varint.MAX_BYTES_32)
            if length == 0:
                return None
            end = reader.pos + length
            if end > reader.end:
                raise _Truncated("server_key runs past the end of the message")
            sub = _Body(reader.data, reader.pos, end)
            slot_id = sub.varint(varint.MAX_BYTES_32)
            if sub.remaining:
                value = sub.take(sub.varint(varint.MAX_BYTES_32)).decode("utf-8", "surrogateescape")
                self.dictionary.define(slot_id, value)
            else:
                value = self.dictionary.get(slot_id)
            reader.pos = end
            return value
        if kind == "array_u32":
            return tuple(reader.varint() & _MASK32 for _ in range(count))
        if kind == "array_rate":
            return tuple(
                m.RateValue(reader.varint() & _MASK32, reader.varint() & _MASK32, reader.varint() & _MASK32)
                for _ in range(count)
            )
        raise _BadField(f"unknown data kind {kind}")
