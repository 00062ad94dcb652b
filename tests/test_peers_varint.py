"""HAProxy's peers varint: the spec's worked examples, exact byte-count boundaries, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minilb.peers import varint

# peers-wire.md section 2.3 (several of these were observed on the wire).
WORKED_EXAMPLES = [
    (0, "00"),
    (239, "ef"),
    (240, "f000"),
    (300, "fc03"),
    (1234, "f23e"),
    (2287, "ff7f"),
    (2288, "f08000"),
    (10000, "f0e203"),
    (60000, "f0971c"),
    (264431, "ffff7f"),
    (264432, "f0808000"),
    (0x614, "f452"),
    (0x1882003, "f3f18261"),
    (4254043579, "fbccf0e27d"),
    (4294967295, "fff0fefe7e"),
    (5000000000, "f091bd809400"),
    (2**63, "f0f1fefefefefefefe06"),
    (2**64 - 1, "fff0fefefefefefefe0e"),
]

# peers-wire.md section 2.2: smallest and largest value of each encoded size.
BOUNDARIES = [
    (1, 0, 239),
    (2, 240, 2287),
    (3, 2288, 264431),
    (4, 264432, 33818863),
    (5, 33818864, 4328786159),
    (6, 4328786160, 554084600047),
    (7, 554084600048, 70922828777711),
    (8, 70922828777712, 9078122083518703),
    (9, 9078122083518704, 1161999626690365679),
    (10, 1161999626690365680, 2**64 - 1),
]


@pytest.mark.parametrize(("value", "hexbytes"), WORKED_EXAMPLES)
def test_worked_examples_encode_and_decode(value: int, hexbytes: str) -> None:
    raw = bytes.fromhex(hexbytes)
    assert varint.encode(value) == raw
    assert varint.decode(raw) == (value, len(raw))
    assert varint.encoded_size(value) == len(raw)


@pytest.mark.parametrize(("size", "low", "high"), BOUNDARIES)
def test_size_boundaries(size: int, low: int, high: int) -> None:
    assert len(varint.encode(low)) == size
    assert len(varint.encode(high)) == size
    if low > 0:
        assert len(varint.encode(low - 1)) == size - 1
    if high < 2**64 - 1:
        assert len(varint.encode(high + 1)) == size + 1
    for value in (low, high):
        assert varint.decode(varint.encode(value))[0] == value


def test_decode_at_offset_returns_next_position() -> None:
    data = bytes.fromhex("aa f0971c 05".replace(" ", ""))
    assert varint.decode(data, 1) == (60000, 4)
    assert varint.decode(data, 4) == (5, 5)


@pytest.mark.parametrize("hexbytes", ["", "f0", "f080", "ff f0 fe fe", "f0 80 80 80 80 80"])
def test_truncated_input_is_an_error(hexbytes: str) -> None:
    with pytest.raises(varint.VarintTruncated):
        varint.decode(bytes.fromhex(hexbytes.replace(" ", "")))


def test_32_bit_field_allows_five_bytes_only() -> None:
    assert varint.decode(bytes.fromhex("fff0fefe7e"), max_bytes=varint.MAX_BYTES_32) == (2**32 - 1, 5)
    with pytest.raises(varint.VarintTooLong):
        varint.decode(bytes.fromhex("f091bd809400"), max_bytes=varint.MAX_BYTES_32)


def test_more_than_ten_bytes_or_64_bits_is_an_error() -> None:
    with pytest.raises(varint.VarintTooLong):
        varint.decode(bytes.fromhex("ff" + "ff" * 9 + "00"))
    with pytest.raises(varint.VarintTooLong):  # ten bytes whose sum exceeds 2**64-1
        varint.decode(bytes.fromhex("fffffffffffffffffe7f"))


def test_encode_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        varint.encode(-1)
    with pytest.raises(ValueError):
        varint.encode(2**64)


@settings(derandomize=True, max_examples=200)
@given(st.integers(min_value=0, max_value=2**64 - 1), st.binary(max_size=4))
def test_round_trip(value: int, trailer: bytes) -> None:
    raw = varint.encode(value)
    assert len(raw) == varint.encoded_size(value) <= 10
    assert varint.decode(raw + trailer) == (value, len(raw))
    if value <= varint.MAX_U32:
        assert len(raw) <= varint.MAX_BYTES_32
