"""Owns HAProxy's variable-length integer of the peers protocol (peers-wire.md section 2).

It is not LEB128: a first byte below 240 is the whole value; a first byte of 240 or more
carries 4 value bits and continues; each following byte is *added* shifted by 4, 11, 18, ...
bits and continues while it is 128 or more.  Values are unsigned 64-bit; a 32-bit field
uses at most 5 bytes, a 64-bit one at most 10.
"""

from __future__ import annotations

MAX_U32 = 0xFFFFFFFF
MAX_U64 = 0xFFFFFFFFFFFFFFFF

#: Longest encoding of a 32-bit field (message length, table id, u32 counters).
MAX_BYTES_32 = 5
#: Longest encoding of any value (64-bit counters, the data-type bitfield).
MAX_BYTES_64 = 10


class VarintError(ValueError):
    """A varint that cannot be decoded."""


class VarintTruncated(VarintError):
    """The input ended before the varint's last byte (more data may complete it)."""


class VarintTooLong(VarintError):
    """The varint uses more bytes than its field allows, or exceeds 64 bits."""


def encode(value: int) -> bytes:
    """The varint bytes of ``value`` (0 <= value < 2**64)."""
    if value < 240:
        if value < 0:
            raise ValueError(f"varint cannot encode negative value {value}")
        return bytes((value,))
    if value > MAX_U64:
        raise ValueError(f"varint cannot encode {value} (more than 64 bits)")
    out = bytearray(((value & 0xFF) | 0xF0,))
    value = (value - 240) >> 4
    while value >= 128:
        out.append((value & 0xFF) | 0x80)
        value = (value - 128) >> 7
    out.append(value)
    return bytes(out)


def encoded_size(value: int) -> int:
    """How many bytes ``encode(value)`` produces."""
    if value < 240:
        return 1
    size = 2
    value = (value - 240) >> 4
    while value >= 128:
        size += 1
        value = (value - 128) >> 7
    return size


def decode(
    data: bytes | bytearray | memoryview, pos: int = 0, max_bytes: int = MAX_BYTES_64
) -> tuple[int, int]:
    """Decode one varint of ``data`` at ``pos``; returns ``(value, position after it)``.

    Raises `VarintTruncated` if ``data`` ends first and `VarintTooLong` if the varint is
    longer than ``max_bytes`` (or its value does not fit 64 bits).
    """
    end = len(data)
    if pos >= end:
        raise VarintTruncated("varint: no data")
    value = data[pos]
    pos += 1
    if value < 240:
        return value, pos
    shift = 4
    used = 1
    while True:
        if used >= max_bytes:
            raise VarintTooLong(f"varint longer than {max_bytes} bytes")
        if pos >= end:
            raise VarintTruncated("varint: truncated")
        byte = data[pos]
        pos += 1
        used += 1
        value += byte << shift
        if byte < 128:
            break
        shift += 7
    if value > MAX_U64:
        raise VarintTooLong("varint value exceeds 64 bits")
    return value, pos
