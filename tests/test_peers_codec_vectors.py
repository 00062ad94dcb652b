"""The codec against every byte stream captured between real HAProxy 2.6.12 peers.

For each ``.hex`` file of ../shared/peers/vectors the test decodes the binary part (after
the hello / status line) and checks every message against the fields the README lists
for it (offset, bytes, and each decoded field), then re-encodes the decoded messages
with one `Encoder` per stream and compares the bytes.

Masked fields: none.  The re-encoding uses the decoded ages, update ids, expiry times and
(for the hello) pids, so the bytes must be identical; the test that builds messages from
hand-written fields (`test_encode_from_fields_*`) masks the rate ages, which depend on
the sender's clock, by taking them from the capture.
"""

from __future__ import annotations

import ipaddress

import pytest

from minilb.peers import codec, varint
from minilb.peers import messages as m
from minilb.stick.datatypes import BY_BIT
from tests.support.peers import Row, Stream, captured_streams, split_handshake

STREAMS = captured_streams()
#: Streams whose last message is refused by HAProxy: what our decoder must raise.
ERROR_STREAMS = {
    "exp4-probe/conn12_client_probe-to-haproxy.hex": codec.PROTOCOL_ERROR_ANSWER,  # class 255
    "exp4-probe/conn13_client_probe-to-haproxy.hex": codec.SIZE_LIMIT_ANSWER,  # length 20000
    "exp4-probe/conn14_client_probe-to-haproxy.hex": codec.PROTOCOL_ERROR_ANSWER,  # cut bitfield
}
#: exp4's HAProxy tables (wire name -> key type, key length): conn15 sends mismatched
#: and unknown DEFINEs whose updates HAProxy skips without decoding them.
EXP4_TABLES = {"st_ip": (4, 4), "st_v6": (5, 16), "st_bin": (7, 8), "st_strdef": (6, 32), "st_int": (2, 4)}
KEY_LABELS = {2: "integer", 4: "ipv4", 5: "ipv6", 6: "string", 7: "binary"}


def exp4_accepts(define: m.Define) -> bool:
    return EXP4_TABLES.get(define.name) == (define.key_type, define.key_len)


def test_every_capture_is_listed() -> None:
    listed = {s.path for s in STREAMS}
    on_disk = set((STREAMS[0].path.parents[2]).glob("*/capture/*.hex"))
    assert on_disk and listed == on_disk


def _body_len(raw: bytes) -> str:
    return str(varint.decode(raw, 2, 5)[0])


def _render_value(fields: dict, name: str, kind: str, value: m.Value) -> None:
    if kind == "rate":
        fields[f"{name}.age"], fields[f"{name}.curr"], fields[f"{name}.prev"] = map(
            str, (value.age, value.curr, value.prev)
        )
    elif kind == "array_u32":
        for i, item in enumerate(value):
            fields[f"{name}[{i}]"] = str(item)
    elif kind == "array_rate":
        for i, item in enumerate(value):
            _render_value(fields, f"{name}[{i}]", "rate", item)
    elif kind == "dict":
        fields[name] = "none" if value is None else value
    else:
        fields[name] = str(value)


def render(msg: m.Message, raw: bytes) -> dict:
    """Our decoded message in the README's field vocabulary."""
    if isinstance(msg, m.Define):
        params = [
            {
                k: str(v)
                for k, v in (("type", p.data_type), ("n", p.count), ("period", p.period))
                if v is not None
            }
            for p in msg.params
        ]
        bits = ", ".join(f"{b}:{BY_BIT[b].name}" for b in msg.bits())
        out = {
            "len": _body_len(raw),
            "id": str(msg.table_id),
            "namelen": str(len(msg.name)),
            "name": repr(msg.name),
            "keytype": f"{msg.key_type} ({KEY_LABELS[msg.key_type]})",
            "keylen": str(msg.key_len),
            "bits": f"0x{msg.data_types:x} -> {bits}",
            "expire": str(msg.expire),
        }
        if params:
            out["params"] = params
        return out
    if isinstance(msg, m.Ack):
        return {"len": _body_len(raw), "table": str(msg.table_id), "last received id": str(msg.update_id)}
    assert isinstance(msg, m.Update)
    out = {"len": _body_len(raw)}
    if msg.update_id is None:
        out["implicit_id"] = str(msg.resolved_id)
    else:
        out["id"] = str(msg.update_id)
    if msg.expire is not None:
        out["expire_in"] = f"{msg.expire} ms"
    if isinstance(msg.key, bytes):
        out["keylen"] = str(len(msg.key))
        out["key"] = repr(msg.key)
    else:
        out["key"] = str(msg.key)
    kinds = {dt.name: dt.kind for dt in BY_BIT.values()}
    for name, value in msg.values:
        _render_value(out, name, kinds[name], value)
    return out


def _check_row(row: Row, msg: m.Message, raw: bytes, dict_seen: dict) -> None:
    if row.kind.startswith("CONTROL") or row.kind.startswith("ERROR"):
        expected = {
            "CONTROL RESYNC-REQUEST": m.ResyncRequest(),
            "CONTROL RESYNC-FINISHED": m.ResyncFinished(),
            "CONTROL RESYNC-PARTIAL": m.ResyncPartial(),
            "CONTROL RESYNC-CONFIRM": m.ResyncConfirm(),
            "CONTROL HEARTBEAT": m.Heartbeat(),
            "ERROR PROTOCOL-ERROR": m.ProtocolErrorMsg(),
            "ERROR SIZE-LIMIT-ERROR": m.SizeLimitErrorMsg(),
        }[row.kind]
        assert msg == expected
        return
    mine = render(msg, raw)
    for key, value in row.fields.items():
        if key == "bits" or key == "keytype":
            assert mine[key] == value, key
        elif key == "params":
            assert mine["params"] == value
        elif key == "server_key.len":
            continue  # implied by the bytes, which are compared whole
        elif key == "server_key.id":
            slot = int(value.split("(")[0])
            if value.endswith("(cached)"):
                assert mine["server_key"] == dict_seen[slot]
            else:
                dict_seen[slot] = mine["server_key"]
        elif key == "server_key.vlen":
            assert int(value) == len(mine["server_key"])
        elif key == "server_key.value":
            assert repr(mine["server_key"].encode()) == value
        else:
            assert mine[key] == value, (key, row.text)
    if "key binary" in row.text:
        assert msg.key == bytes.fromhex(row.groups[-2] if msg.update_id is None else row.groups[-2])
    if "key ipv6" in row.text:
        assert msg.key == ipaddress.IPv6Address(bytes.fromhex(row.groups[-2]))


def _decode_stream(stream: Stream) -> tuple[bytes, list[m.Message], bytes]:
    data = stream.data()
    handshake, binary = split_handshake(data, stream.is_client)
    decoder = codec.Decoder(accept_define=exp4_accepts if stream.experiment.startswith("exp4") else None)
    return handshake, decoder.feed(binary), binary


@pytest.mark.parametrize("stream", [s for s in STREAMS if s.id not in ERROR_STREAMS], ids=lambda s: s.id)
def test_capture_decodes_to_listed_fields(stream: Stream) -> None:
    handshake, msgs, binary = _decode_stream(stream)
    first = stream.rows[0]
    assert first.raw == handshake
    assert repr(handshake) in first.text
    rows = stream.rows[1:]
    assert len(msgs) == len(rows)
    offset = len(handshake)
    dict_seen: dict = {}
    for row, msg in zip(rows, msgs, strict=True):
        assert row.offset == offset
        raw = row.raw
        offset += len(raw)
        if isinstance(msg, m.Unknown):
            # conn15: updates after a DEFINE that HAProxy's tables do not match
            assert stream.filename.startswith("conn15_client") and row.kind == "STICK-TABLE UPDATE"
            assert bytes((msg.msg_class, msg.msg_type)) + varint.encode(len(msg.body)) + msg.body == raw
            continue
        _check_row(row, msg, raw, dict_seen)
    assert offset == len(stream.data())


@pytest.mark.parametrize("stream", [s for s in STREAMS if s.id not in ERROR_STREAMS], ids=lambda s: s.id)
def test_capture_reencodes_to_same_bytes(stream: Stream) -> None:
    _, msgs, binary = _decode_stream(stream)
    encoder = codec.Encoder()
    assert b"".join(encoder.encode(msg) for msg in msgs) == binary


@pytest.mark.parametrize("stream", [s for s in STREAMS if s.id not in ERROR_STREAMS], ids=lambda s: s.id)
def test_capture_byte_by_byte_gives_same_messages(stream: Stream) -> None:
    _, msgs, binary = _decode_stream(stream)
    decoder = codec.Decoder(accept_define=exp4_accepts if stream.experiment.startswith("exp4") else None)
    one_by_one = []
    for i in range(len(binary)):
        one_by_one.extend(decoder.feed(binary[i : i + 1]))
    assert one_by_one == msgs
    assert [getattr(x, "resolved_id", None) for x in one_by_one] == [
        getattr(x, "resolved_id", None) for x in msgs
    ]
    assert decoder.buffered == 0


@pytest.mark.parametrize("stream_id", sorted(ERROR_STREAMS))
def test_refused_captures_raise_with_the_answer_haproxy_sent(stream_id: str) -> None:
    stream = next(s for s in STREAMS if s.id == stream_id)
    _, binary = split_handshake(stream.data(), True)
    decoder = codec.Decoder()
    with pytest.raises(codec.PeersProtocolError) as info:
        decoder.feed(binary)
    assert info.value.answer == ERROR_STREAMS[stream_id]
    assert info.value.messages == []
    # HAProxy's answer in the other direction is the same error message
    server = next(
        s
        for s in STREAMS
        if s.id == stream_id.replace("_client_probe-to-haproxy", "_server_haproxy-to-probe")
    )
    assert server.data().endswith(info.value.answer)
    with pytest.raises(codec.PeersProtocolError):  # the decoder stays failed
        decoder.feed(b"\x00\x04")


def test_encode_from_fields_exp2_alice_with_masked_ages() -> None:
    """exp2 stream 9 @4/@31: DEFINE st_str and alice, built from the README's fields.
    Masked: the two gpc_rate ages (sender clock), taken from the capture."""
    define = m.Define(
        2,
        "st_str",
        m.KEY_STRING,
        33,
        (1 << 0) | (1 << 1) | (1 << 13) | (1 << 19) | (1 << 23) | (1 << 24),
        60000,
        (m.DefineParam(23, count=3), m.DefineParam(24, count=2, period=10000)),
    )
    captured = next(s for s in STREAMS if s.id == "exp2-string-table/stream9_server_20001-to-46344.hex")
    age0 = int(captured.rows[2].fields["gpc_rate[0].age"])
    age1 = int(captured.rows[2].fields["gpc_rate[1].age"])
    alice = m.Update(
        6,
        None,
        b"alice",
        (
            ("server_id", 1),
            ("gpt0", 7),
            ("bytes_in_cnt", 93),
            ("server_key", "s1"),
            ("gpc", (0, 1, 0)),
            ("gpc_rate", (m.RateValue(age0, 0, 0), m.RateValue(age1, 1, 0))),
        ),
    )
    encoder = codec.Encoder()
    assert encoder.encode(define) == captured.rows[1].raw
    assert encoder.encode(alice) == captured.rows[2].raw
    # the same value again in this session is a 1-byte reference to slot 1
    assert encoder.encode(alice).count(bytes.fromhex("0101")) >= 1
