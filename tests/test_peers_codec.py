"""Codec behaviour beyond the captures: round trips of every message kind, framing limits,
unknown messages, dictionary cache, and arbitrary chunking of the input."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minilb.peers import codec, varint
from minilb.peers import messages as m
from minilb.stick.datatypes import DATA_TYPES

U32 = st.integers(0, 2**32 - 1)
SIMPLE = [
    m.ResyncRequest(),
    m.ResyncFinished(),
    m.ResyncPartial(),
    m.ResyncConfirm(),
    m.Heartbeat(),
    m.ProtocolErrorMsg(),
    m.SizeLimitErrorMsg(),
]


@st.composite
def defines(draw: st.DrawFn, table_id: int | None = None) -> m.Define:
    key_type = draw(st.sampled_from(m.KEY_TYPES))
    key_len = {m.KEY_INTEGER: 4, m.KEY_IPV4: 4, m.KEY_IPV6: 16}.get(key_type) or draw(st.integers(1, 64))
    chosen = draw(st.lists(st.sampled_from(DATA_TYPES), unique=True, max_size=8))
    chosen.sort(key=lambda dt: dt.bit)
    params = []
    for dt in chosen:
        if dt.has_param_block:
            params.append(
                m.DefineParam(
                    dt.bit,
                    count=draw(st.integers(1, 5)) if dt.is_array else None,
                    period=draw(st.integers(1, 100000)) if dt.is_rate else None,
                )
            )
    return m.Define(
        table_id if table_id is not None else draw(st.integers(0, 2**32 - 1)),
        draw(st.text(min_size=1, max_size=20)),
        key_type,
        key_len,
        sum(1 << dt.bit for dt in chosen),
        draw(st.integers(0, 2**31)),
        tuple(params),
    )


def values_for(draw: st.DrawFn, define: m.Define, dict_values: list[str]) -> tuple:
    rates = st.builds(m.RateValue, U32, U32, U32)
    out = []
    for bit in define.bits():
        dt = DATA_TYPES[bit]
        param = define.param_for(bit)
        if dt.kind == "u32":
            value = draw(U32)
        elif dt.kind == "u64":
            value = draw(st.integers(0, 2**64 - 1))
        elif dt.kind == "s32":
            value = draw(st.integers(-(2**31), 2**31 - 1))
        elif dt.kind == "rate":
            value = draw(rates)
        elif dt.kind == "dict":
            value = draw(st.none() | st.sampled_from(dict_values))
        elif dt.kind == "array_u32":
            value = tuple(draw(st.lists(U32, min_size=param.count, max_size=param.count)))
        else:
            value = tuple(draw(st.lists(rates, min_size=param.count, max_size=param.count)))
        out.append((dt.name, value))
    return tuple(out)


def key_for(draw: st.DrawFn, define: m.Define) -> m.Key:
    if define.key_type == m.KEY_INTEGER:
        return draw(U32)
    if define.key_type == m.KEY_IPV4:
        return ipaddress.IPv4Address(draw(U32))
    if define.key_type == m.KEY_IPV6:
        return ipaddress.IPv6Address(draw(st.integers(0, 2**128 - 1)))
    if define.key_type == m.KEY_STRING:
        return draw(st.binary(max_size=define.key_len - 1))
    return draw(st.binary(min_size=define.key_len, max_size=define.key_len))


@st.composite
def sessions(draw: st.DrawFn) -> list[m.Message]:
    """A plausible message sequence: DEFINEs each followed by updates, plus anything else."""
    dict_values = draw(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=200, unique=True))
    out: list[m.Message] = []
    for table_id in range(draw(st.integers(1, 3))):
        define = draw(defines(table_id=table_id + 1))
        out.append(define)
        for _ in range(draw(st.integers(0, 6))):
            out.append(
                m.Update(
                    draw(st.none() | U32),
                    draw(st.none() | U32),
                    key_for(draw, define),
                    values_for(draw, define, dict_values),
                )
            )
            if draw(st.booleans()):
                out.append(draw(st.sampled_from(SIMPLE)))
            if draw(st.booleans()):
                out.append(m.Ack(draw(U32), draw(U32)))
        if draw(st.booleans()):
            out.append(m.Switch(table_id + 1))
    out.append(m.Unknown(draw(st.integers(2, 9)), draw(st.integers(0, 255)), b""))
    return out


def _normalise(msgs: list[m.Message]) -> list[m.Message]:
    """Unknown messages without a length bit carry no body."""
    return [
        m.Unknown(x.msg_class, x.msg_type, x.body if x.msg_type & 0x80 else b"")
        if isinstance(x, m.Unknown)
        else x
        for x in msgs
    ]


@settings(derandomize=True, max_examples=30, deadline=None)
@given(sessions(), st.data())
def test_round_trip_of_message_sequences_in_any_chunking(msgs: list[m.Message], data: st.DataObject) -> None:
    encoder = codec.Encoder()
    wire = b"".join(encoder.encode(msg) for msg in msgs)
    decoder = codec.Decoder()
    got: list[m.Message] = []
    pos = 0
    while pos < len(wire):
        step = data.draw(st.integers(1, 40))
        got.extend(decoder.feed(wire[pos : pos + step]))
        pos += step
    assert got == _normalise(msgs)
    assert decoder.buffered == 0


@pytest.mark.parametrize("msg", SIMPLE)
def test_two_byte_messages(msg: m.Message) -> None:
    raw = codec.encode(msg)
    assert len(raw) == 2 and raw == bytes(m.SIMPLE_CODES[type(msg)])
    assert codec.Decoder().feed(raw) == [msg]


def test_implicit_update_ids_follow_the_last_id_per_table() -> None:
    t1 = m.Define(1, "a", m.KEY_INTEGER, 4, 1 << 2)
    t2 = m.Define(2, "b", m.KEY_INTEGER, 4, 1 << 2)
    enc = codec.Encoder()
    wire = b"".join(
        enc.encode(x)
        for x in (
            t1,
            m.Update(None, None, 7, (("gpc0", 1),)),  # first on a session: implicit id 1
            m.Update(41, None, 8, (("gpc0", 1),)),
            t2,
            m.Update(2**32 - 1, 5000, 9, (("gpc0", 1),)),
            m.Update(None, 4000, 10, (("gpc0", 1),)),  # wraps to 0
            m.Switch(1),
            m.Update(None, None, 11, (("gpc0", 1),)),  # table 1 continues from 41
        )
    )
    updates = [x for x in codec.Decoder().feed(wire) if isinstance(x, m.Update)]
    assert [(u.table_id, u.resolved_id) for u in updates] == [
        (1, 1),
        (1, 41),
        (2, 2**32 - 1),
        (2, 0),
        (1, 42),
    ]


def test_server_id_is_sign_extended_to_64_bits() -> None:
    table = m.Define(1, "t", m.KEY_INTEGER, 4, 1 << 0)
    raw = codec.encode(m.Update(1, None, 5, (("server_id", -1),)), table=table)
    assert raw.endswith(varint.encode(2**64 - 1))
    dec = codec.Decoder()
    dec.feed(codec.encode(table))
    assert dec.feed(raw)[0].value("server_id") == -1


def test_string_keys_are_cut_to_key_length_minus_one_and_binary_keys_padded() -> None:
    strt = m.Define(1, "s", m.KEY_STRING, 33, 0)
    assert (
        codec.encode(m.Update(1, None, b"x" * 40), table=strt)
        == bytes.fromhex("0a8025 00000001 20".replace(" ", "")) + b"x" * 32
    )
    bint = m.Define(1, "b", m.KEY_BINARY, 8, 0)
    assert codec.encode(m.Update(2, None, b"abc"), table=bint).endswith(bytes.fromhex("6162630000000000"))


class TestFraming:
    def test_unknown_class_and_type_are_returned_and_skipped(self) -> None:
        wire = (
            bytes.fromhex("0505")
            + bytes.fromhex("0790 03 aabbcc".replace(" ", ""))
            + bytes.fromhex("0009")
            + b"\x00\x04"
        )
        assert codec.Decoder().feed(wire) == [
            m.Unknown(5, 5),
            m.Unknown(7, 0x90, bytes.fromhex("aabbcc")),
            m.Unknown(0, 0x09),
            m.Heartbeat(),
        ]

    def test_unknown_stick_table_type_is_skipped(self) -> None:
        assert codec.Decoder().feed(bytes.fromhex("0a8f0201020004")) == [
            m.Unknown(10, 0x8F, b"\x01\x02"),
            m.Heartbeat(),
        ]

    def test_extra_bytes_at_end_of_a_body_are_ignored(self) -> None:
        assert codec.Decoder().feed(bytes.fromhex("0a8407 01 00000009 ffee".replace(" ", ""))) == [
            m.Ack(1, 9)
        ]

    def test_length_over_limit_is_a_size_limit_error_before_the_body_arrives(self) -> None:
        dec = codec.Decoder(limit=100)
        assert dec.feed(bytes.fromhex("0004 0a80 64".replace(" ", "")) + b"\x00" * 10) == [m.Heartbeat()]
        with pytest.raises(codec.PeersProtocolError) as info:
            codec.Decoder(limit=100).feed(bytes.fromhex("0004 0a80 65".replace(" ", "")))
        assert info.value.answer == b"\x01\x01"
        assert info.value.messages == [m.Heartbeat()]

    def test_length_varint_over_five_bytes_is_a_protocol_error(self) -> None:
        with pytest.raises(codec.PeersProtocolError) as info:
            codec.Decoder().feed(bytes.fromhex("0a80 f0808080808000".replace(" ", "")))
        assert info.value.answer == b"\x01\x00"

    def test_reserved_class_is_a_protocol_error_even_with_a_length_type(self) -> None:
        with pytest.raises(codec.PeersProtocolError) as info:
            codec.Decoder().feed(b"\xff\x80\x00")
        assert info.value.answer == b"\x01\x00"

    def test_truncated_update_body_is_a_protocol_error(self) -> None:
        dec = codec.Decoder()
        dec.feed(codec.encode(m.Define(1, "t", m.KEY_IPV4, 4, 1 << 2)))
        with pytest.raises(codec.PeersProtocolError) as info:
            dec.feed(bytes.fromhex("0a80 07 00000001 0a0000".replace(" ", "")))
        assert info.value.answer == b"\x01\x00"

    def test_partial_input_waits_for_more(self) -> None:
        dec = codec.Decoder()
        assert dec.feed(b"\x0a") == []
        assert dec.feed(b"\x84\x05\x01\x00") == []
        assert dec.buffered == 5
        assert dec.feed(b"\x00\x00\x02\x00") == [m.Ack(1, 2)]
        assert dec.buffered == 1


class TestDefines:
    def test_update_without_any_define_is_skipped(self) -> None:
        assert codec.Decoder().feed(bytes.fromhex("0a8005 00000001 00".replace(" ", ""))) == [
            m.Unknown(10, 0x80, bytes.fromhex("0000000100"))
        ]

    def test_define_without_expire_is_accepted_unless_it_has_arrays(self) -> None:
        dec = codec.Decoder()
        old = bytes.fromhex("0a82 06 01 01 74 02 04 04".replace(" ", ""))  # gpc0, no expire field
        msgs = dec.feed(old)
        assert msgs[0].expire is None
        assert dec.feed(bytes.fromhex("0a8009 00000001 00000009 07".replace(" ", ""))) == [
            m.Update(1, None, 9, (("gpc0", 7),))
        ]
        arrays = codec.Decoder()
        arr = codec.encode(m.Define(1, "t", m.KEY_INTEGER, 4, 1 << 22, None))
        arrays.feed(arr)
        assert isinstance(arrays.feed(bytes.fromhex("0a8005 00000001 00".replace(" ", "")))[0], m.Unknown)

    def test_define_with_a_missing_parameter_block_makes_the_table_ignored(self) -> None:
        dec = codec.Decoder()
        # bits 0x400 (http_req_rate) with expire but no (type, period) block
        (define,) = dec.feed(bytes.fromhex("0a82 08 01 01 74 04 04 f031 00".replace(" ", "")))
        assert define.data_types == 0x400 and define.params == ()
        assert isinstance(
            dec.feed(bytes.fromhex("0a8009 00000001 0a000001 000000".replace(" ", "")))[0], m.Unknown
        )

    def test_accept_define_refusal_skips_updates_until_next_define(self) -> None:
        dec = codec.Decoder(accept_define=lambda d: d.name == "good")
        enc = codec.Encoder()
        bad = m.Define(1, "bad", m.KEY_INTEGER, 4, 1 << 2)
        good = m.Define(2, "good", m.KEY_INTEGER, 4, 1 << 2)
        wire = b"".join(
            enc.encode(x)
            for x in (bad, m.Update(1, None, 1, (("gpc0", 1),)), good, m.Update(2, None, 2, (("gpc0", 3),)))
        )
        out = dec.feed(wire)
        assert isinstance(out[1], m.Unknown)
        assert out[3] == m.Update(2, None, 2, (("gpc0", 3),))

    def test_unknown_high_data_type_bits_are_skipped_with_the_rest_of_the_body(self) -> None:
        dec = codec.Decoder()
        dec.feed(codec.encode(m.Define(1, "t", m.KEY_INTEGER, 4, (1 << 2) | (1 << 25))))
        (update,) = dec.feed(bytes.fromhex("0a80 0a 00000001 00000007 05 09".replace(" ", "")))
        assert update.values == (("gpc0", 5),)


class TestDictionary:
    table = m.Define(1, "t", m.KEY_INTEGER, 4, 1 << 19)

    def test_encoder_sends_full_value_once_then_the_slot(self) -> None:
        enc = codec.Encoder()
        enc.encode(self.table)
        first = enc.encode(m.Update(1, None, 1, (("server_key", "s1"),)))
        again = enc.encode(m.Update(2, None, 2, (("server_key", "s1"),)))
        other = enc.encode(m.Update(3, None, 3, (("server_key", "s2"),)))
        assert first.endswith(bytes.fromhex("0401027331"))
        assert again.endswith(bytes.fromhex("0101"))
        assert other.endswith(bytes.fromhex("0402027332"))

    def test_slots_are_reused_round_robin_after_128_values(self) -> None:
        enc = codec.Encoder()
        enc.encode(self.table)
        dec = codec.Decoder()
        dec.feed(enc.encode(self.table))
        names = [f"srv{i}" for i in range(130)] + ["srv0", "srv129", "srv5"]
        for i, name in enumerate(names):
            (update,) = dec.feed(enc.encode(m.Update(i, None, i, (("server_key", name),))))
            assert update.value("server_key") == name
        # srv0 was evicted by srv128 (slot 1) and redefined in slot 3; srv129 is cached in slot 2
        assert dict(enc.dictionary.entries())[0] == "srv128"

    def test_reference_beyond_128_is_a_protocol_error(self) -> None:
        dec = codec.Decoder()
        dec.feed(codec.encode(self.table))
        with pytest.raises(codec.PeersProtocolError):
            dec.feed(bytes.fromhex("0a8008 00000001 00000001 02 f0 00".replace(" ", "")))

    def test_empty_value_and_unknown_cached_slot(self) -> None:
        dec = codec.Decoder()
        dec.feed(codec.encode(self.table))
        (a, b) = dec.feed(
            bytes.fromhex("0a80 09 00000001 00000001 00 0a80 0a 00000002 00000002 0105".replace(" ", ""))
        )
        assert a.value("server_key") is None and b.value("server_key") is None


def test_hello_and_status_lines() -> None:
    assert codec.encode_hello(m.Hello("hapA", "hapB", 9140)) == b"HAProxyS 2.1\nhapA\nhapB 9140 1\n"
    assert codec.encode_hello(m.Hello("hapA", "hapB", 1, version="2.0")).startswith(b"HAProxyS 2.0\n")
    assert codec.encode_status(503) == b"503\n"


def test_raw_ip_keys_give_the_stick_table_forms() -> None:
    enc = codec.Encoder()
    v4 = m.Define(1, "a", m.KEY_IPV4, 4, 0)
    v6 = m.Define(2, "b", m.KEY_IPV6, 16, 0)
    wire = b"".join(
        enc.encode(x)
        for x in (
            v4,
            m.Update(1, None, ipaddress.IPv4Address("10.0.0.1")),
            v6,
            m.Update(2, None, ipaddress.IPv6Address("::1")),
        )
    )
    typed = [u.key for u in codec.Decoder().feed(wire) if isinstance(u, m.Update)]
    raw = [u.key for u in codec.Decoder(raw_ip_keys=True).feed(wire) if isinstance(u, m.Update)]
    assert typed == [ipaddress.IPv4Address("10.0.0.1"), ipaddress.IPv6Address("::1")]
    assert raw == [0x0A000001, b"\x00" * 15 + b"\x01"]


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 50))
def test_garbage_never_raises_anything_but_a_peers_protocol_error(data: bytes, step: int) -> None:
    decoder = codec.Decoder(limit=1000)
    decoder.feed(
        codec.encode(
            m.Define(
                1,
                "t",
                m.KEY_STRING,
                33,
                (1 << 19) | (1 << 24) | (1 << 2),
                60000,
                (m.DefineParam(24, 2, 10000),),
            )
        )
    )
    try:
        for i in range(0, len(data), step):
            decoder.feed(data[i : i + step])
    except codec.PeersProtocolError as exc:
        assert exc.answer in (b"\x01\x00", b"\x01\x01")


FAST_DEFINE = m.Define(
    1, "fast", m.KEY_IPV4, 4, (1 << 2) | (1 << 10) | (1 << 13), 60000, (m.DefineParam(10, None, 10000),)
)
U32S = st.integers(0, 2**32 - 1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), U32S),
            st.one_of(st.none(), U32S),
            U32S,
            U32S,
            st.tuples(U32S, U32S, U32S),
            st.integers(0, 2**64 - 1),
        ),
        min_size=1,
        max_size=5,
    ),
    st.integers(0, 8),
)
def test_generated_update_decoder_matches_the_generic_one(updates, cut):
    """IPv4 tables of counters and rates decode through a generated fast path (keys
    as ints): the same messages as the generic decoder, the same errors when cut."""
    encoder = codec.Encoder()
    data = encoder.encode(FAST_DEFINE)
    for update_id, expire, key, gpc0, rate, bytes_in in updates:
        values = {"gpc0": gpc0, "http_req_rate": rate, "bytes_in_cnt": bytes_in}
        data += encoder.encode_entry(update_id, expire, ipaddress.IPv4Address(key), values)
    fast, generic = codec.Decoder(raw_ip_keys=True), codec.Decoder()
    got = fast.feed(data)
    want = generic.feed(data)
    assert [msg.key for msg in got[1:]] == [int(msg.key) for msg in want[1:]]
    assert [(msg.update_id, msg.expire, msg.values, msg.resolved_id) for msg in got[1:]] == [
        (msg.update_id, msg.expire, msg.values, msg.resolved_id) for msg in want[1:]
    ]
    # a body cut short (its length prefix fixed up) is a protocol error either way
    last = encoder.encode_entry(None, None, ipaddress.IPv4Address(1), {"gpc0": 300})
    body = last[3:]
    short = body[: max(0, len(body) - 1 - cut)]
    frame = last[:2] + varint.encode(len(short)) + short
    for decoder in (fast, generic):
        with pytest.raises(codec.PeersProtocolError):
            decoder.feed(frame)
