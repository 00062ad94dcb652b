"""The handshake state machine against HAProxy's captured hellos and status lines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minilb.peers import messages as m
from minilb.peers import session as s
from tests.support.peers import captured_streams

STREAMS = {st.id: st for st in captured_streams()}
EXP4_PEERS = ("hapA", "hapB")


def exp4(conn: int, side: str) -> bytes:
    name = (
        f"conn{conn:02d}_client_probe-to-haproxy.hex"
        if side == "client"
        else f"conn{conn:02d}_server_haproxy-to-probe.hex"
    )
    return STREAMS[f"exp4-probe/{name}"].data()


@pytest.mark.parametrize(
    ("conn", "status"),
    [(2, 501), (3, 502), (4, 502), (5, 503), (6, 504), (7, 501), (8, 200), (10, 200)],
)
def test_acceptor_answers_captured_hellos_as_haproxy_did(conn: int, status: int) -> None:
    hello = exp4(conn, "client")
    end = hello.index(b"\n", hello.index(b"\n", hello.index(b"\n") + 1) + 1) + 1
    acceptor = s.Session.accept("hapA", EXP4_PEERS)
    acceptor.receive_data(hello[:end])
    answer = acceptor.data_to_send()
    assert answer == f"{status}\n".encode()
    assert exp4(conn, "server").startswith(answer)
    assert acceptor.status == status
    assert acceptor.established is (status == 200)
    assert acceptor.closed is (status != 200)


def test_second_local_peer_session_gets_300() -> None:
    hello = exp4(11, "client")  # hapA -> hapA while conn 10 (also hapA) is open
    acceptor = s.Session.accept("hapA", EXP4_PEERS, busy=lambda name: name == "hapA")
    acceptor.receive_data(hello)
    assert acceptor.data_to_send() == exp4(11, "server") == b"300\n"
    assert acceptor.closed


def test_acceptor_parses_hello_and_version_2_0_marks_downgrade() -> None:
    acceptor = s.Session.accept("hapA", EXP4_PEERS)
    msgs = acceptor.receive_data(exp4(9, "client"))
    assert acceptor.hello == m.Hello("hapA", "hapB", 4242, 1, "2.0")
    assert acceptor.remote_is_2_0
    assert msgs == [m.ResyncRequest(), m.ResyncConfirm()]  # bytes after the hello are messages


def test_acceptor_handshake_byte_by_byte_with_crlf() -> None:
    data = exp4(8, "client")
    acceptor = s.Session.accept("hapA", EXP4_PEERS)
    for i in range(len(data)):
        acceptor.receive_data(data[i : i + 1])
    assert acceptor.data_to_send() == b"200\n"
    assert acceptor.remote_name == "hapB"


def test_reload_hello_names_ourselves_and_is_accepted() -> None:
    stream = STREAMS["exp3-reload/stream10_client_46442-to-20001.hex"].data()
    acceptor = s.Session.accept("hapA", EXP4_PEERS)
    msgs = acceptor.receive_data(stream)
    assert acceptor.data_to_send() == b"200\n"
    assert acceptor.hello.sender == "hapA" and acceptor.hello.pid == 10642
    assert isinstance(msgs[0], m.Define) and msgs[-1] == m.ResyncFinished()


def test_too_long_hello_line_is_a_protocol_error() -> None:
    acceptor = s.Session.accept("hapA", EXP4_PEERS)
    acceptor.receive_data(b"HAProxyS 2.1\n" + b"x" * (s.MAX_LINE + 1))
    assert acceptor.data_to_send() == b"501\n"
    assert acceptor.closed


def test_connector_sends_the_exact_hello() -> None:
    connector = s.Session.connect("hapA", "hapB", 8867)
    captured = STREAMS["exp1-ip-table/stream9_client_42960-to-20002.hex"].data()
    hello = connector.data_to_send()
    assert captured.startswith(hello) and hello == b"HAProxyS 2.1\nhapB\nhapA 8867 1\n"
    assert connector.state == s.HELLO_SENT
    with pytest.raises(RuntimeError):
        connector.send(m.Heartbeat())


def test_connector_established_by_200_then_decodes_the_same_segment() -> None:
    connector = s.Session.connect("hapB", "hapA", 9140)
    server = STREAMS["exp1-ip-table/stream7_server_20001-to-58542.hex"].data()
    msgs = connector.receive_data(server[:10]) + connector.receive_data(server[10:])
    assert connector.established and connector.status == 200
    assert isinstance(msgs[0], m.Define) and msgs[0].name == "st_ip"
    assert msgs[7] == m.ResyncFinished()
    connector.send(m.ResyncConfirm())
    assert connector.data_to_send().endswith(b"\x00\x03")


@pytest.mark.parametrize("code", [300, 501, 502, 503, 504])
def test_connector_closes_on_other_status(code: int) -> None:
    connector = s.Session.connect("hapA", "hapB", 1)
    connector.data_to_send()
    connector.receive_data(b"%d\n" % code)
    assert connector.closed and connector.status == code
    assert str(code) in connector.close_reason
    assert connector.downgrade_next is (code == 502)


def test_connector_with_downgrade_announces_2_0() -> None:
    assert s.Session.connect("hapA", "hapB", 7, version="2.0").data_to_send().startswith(b"HAProxyS 2.0\n")


def test_connector_rejects_garbage_status() -> None:
    connector = s.Session.connect("hapA", "hapB", 1)
    connector.receive_data(b"HTTP/1.1 400 Bad request\r\n")
    assert connector.closed and connector.status is None


def test_protocol_error_after_handshake_queues_the_answer_and_closes() -> None:
    acceptor = s.Session.accept("hapA", EXP4_PEERS)
    msgs = acceptor.receive_data(exp4(12, "client"))  # ... then class 255
    assert msgs == []
    assert acceptor.data_to_send() == b"200\n\x01\x00"
    assert acceptor.closed
    assert acceptor.receive_data(b"\x00\x04") == []


def test_size_limit_after_handshake() -> None:
    acceptor = s.Session.accept("hapA", EXP4_PEERS)
    acceptor.receive_data(exp4(13, "client"))
    assert acceptor.data_to_send() == b"200\n\x01\x01"
    assert acceptor.closed


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_handshake_bytes_end_in_a_known_state(data: bytes) -> None:
    acceptor = s.Session.accept("hapA", EXP4_PEERS)
    acceptor.receive_data(data)
    out = acceptor.data_to_send()
    assert out == b"" or out[:4] in (b"200\n", b"300\n", b"501\n", b"502\n", b"503\n", b"504\n")
    connector = s.Session.connect("hapA", "hapB", 1)
    connector.receive_data(data)
    assert connector.state in (s.HELLO_SENT, s.ESTABLISHED, s.CLOSED)
