"""Request/response framing and the heads written back out (minilb.http.parse)."""

from __future__ import annotations

import pytest

from minilb.errors import HTTPError
from minilb.http.parse import (
    Limits,
    RequestParser,
    ResponseParser,
    chunk,
    last_chunk,
    request_head_bytes,
    response_head_bytes,
    split_uri,
)


class Recorder:
    def __init__(self):
        self.events = []

    def request_head(self, head):
        self.events.append(("head", head))

    def request_body(self, data):
        self.events.append(("body", data))

    def request_end(self, trailers):
        self.events.append(("end", trailers))

    response_head = request_head
    response_body = request_body
    response_end = request_end

    def heads(self):
        return [e[1] for e in self.events if e[0] == "head"]

    def body(self):
        return b"".join(e[1] for e in self.events if e[0] == "body")


def parse(data: bytes, limits=None):
    rec = Recorder()
    RequestParser(rec, limits).feed(data)
    return rec


def test_simple_get_head_fields():
    rec = parse(b"GET /a?b=1 HTTP/1.1\r\nHost: a\r\nX-Y: z\r\n\r\n")
    (head,) = rec.heads()
    assert head.method == "GET"
    assert head.uri == b"/a?b=1"
    assert head.version == "1.1"
    assert head.headers == [[b"Host", b"a"], [b"X-Y", b"z"]]
    assert head.keep_alive and not head.upgrade and not head.has_body
    assert rec.events[-1] == ("end", None)


def test_http10_defaults_to_close_and_keep_alive_token_keeps_it_open():
    assert parse(b"GET / HTTP/1.0\r\n\r\n").heads()[0].keep_alive is False
    head = parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").heads()[0]
    assert head.keep_alive is True
    assert head.conn_tokens == (b"keep-alive",)
    assert parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").heads()[0].keep_alive is False


def test_pipelined_requests_are_framed_in_order():
    rec = parse(
        b"GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\n\r\n"
    )
    assert [h.uri for h in rec.heads()] == [b"/1", b"/2", b"/3"]
    assert rec.body() == b"abc"
    assert [e[0] for e in rec.events] == ["head", "end", "head", "body", "end", "head", "end"]


def test_chunked_body_is_dechunked_with_trailers():
    rec = parse(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 9\r\n\r\n"
    )
    head = rec.heads()[0]
    assert head.chunked and head.has_body
    assert rec.body() == b"abcde"
    assert rec.events[-1] == ("end", [[b"X-Sum", b"9"]])


def test_body_split_over_feeds():
    rec = Recorder()
    p = RequestParser(rec)
    p.feed(b"POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\nab")
    p.feed(b"cd")
    assert ("end", None) not in rec.events
    p.feed(b"ef")
    assert rec.body() == b"abcdef"
    assert rec.events[-1] == ("end", None)


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ],
)
def test_malformed_requests_are_400(raw):
    with pytest.raises(HTTPError) as info:
        parse(raw)
    assert info.value.status == 400


def test_too_many_headers_is_400():
    raw = b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 11 + b"\r\n"
    parse(raw, Limits(max_headers=11))
    with pytest.raises(HTTPError) as info:
        parse(raw, Limits(max_headers=10))
    assert info.value.status == 400


def test_head_larger_than_limit_is_400_in_one_read_or_many():
    raw = b"GET / HTTP/1.1\r\nX: " + b"a" * 2000 + b"\r\n\r\n"
    with pytest.raises(HTTPError):
        parse(raw, Limits(max_head=1024))
    rec = Recorder()
    p = RequestParser(rec, Limits(max_head=1024))
    p.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(HTTPError):
        for _ in range(200):
            p.feed(b"X-Filler: 0123456789\r\n")
    assert rec.heads() == []


def test_expect_continue_and_upgrade_are_seen():
    head = parse(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").heads()[0]
    assert head.expect_continue
    rec = Recorder()
    offset = RequestParser(rec).feed(
        b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nFRAME"
    )
    assert rec.heads()[0].upgrade
    assert offset == len(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")


def test_absolute_form_uri_path_and_query():
    assert split_uri(b"http://x.com/a/b?c=1") == ("/a/b", "c=1")
    assert split_uri(b"http://x.com") == ("/", None)
    assert split_uri(b"/p") == ("/p", None)
    assert split_uri(b"/p?") == ("/p", "")


def test_request_head_bytes_lowercases_and_strips_connection_tokens():
    out = request_head_bytes(
        "GET",
        b"/a",
        "1.0",
        [[b"Host", b"x"], [b"Connection", b"keep-alive, X-Drop"], [b"Keep-Alive", b"300"]],
        add=[(b"x-forwarded-for", b"1.2.3.4")],
        connection=b"keep-alive",
    )
    assert out == (
        b"GET /a HTTP/1.0\r\nhost: x\r\nconnection: X-Drop\r\nkeep-alive: 300\r\n"
        b"x-forwarded-for: 1.2.3.4\r\nconnection: keep-alive\r\n\r\n"
    )
    # only close/keep-alive tokens: the header disappears
    assert request_head_bytes("GET", b"/", "1.1", [[b"Connection", b"close"]]) == b"GET / HTTP/1.1\r\n\r\n"


def test_response_head_bytes():
    out = response_head_bytes(
        200, b"OK", [[b"Content-Type", b"t"], [b"Connection", b"keep-alive"]], connection=b"close"
    )
    assert out == b"HTTP/1.1 200 OK\r\ncontent-type: t\r\nconnection: close\r\n\r\n"
    out = response_head_bytes(200, b"OK", [], add_chunked=True)
    assert out == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"


def test_chunk_helpers():
    assert chunk(b"a" * 26) == b"1a\r\n" + b"a" * 26 + b"\r\n"
    assert chunk(b"") == b""
    assert last_chunk() == b"0\r\n\r\n"
    assert last_chunk([[b"X-T", b"1"]]) == b"0\r\nx-t: 1\r\n\r\n"


def test_response_framing_interim_length_chunked_and_eof():
    rec = Recorder()
    p = ResponseParser(rec)
    p.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    heads = rec.heads()
    assert [h.status for h in heads] == [100, 200]
    assert heads[1].reason == b"OK"
    assert rec.body() == b"hi"
    rec = Recorder()
    ResponseParser(rec).feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
    assert rec.body() == b"x" and rec.events[-1][0] == "end"
    rec = Recorder()
    ResponseParser(rec).feed(b"HTTP/1.0 200 OK\r\n\r\nuntil close")
    head = rec.heads()[0]
    assert not head.keep_alive
    assert rec.body() == b"until close"


def test_bad_response_is_502():
    with pytest.raises(HTTPError) as info:
        ResponseParser(Recorder()).feed(b"HTTP/1.1 abc\r\n\r\n")
    assert info.value.status == 502


def test_101_response_returns_tunnel_offset():
    rec = Recorder()
    raw = b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    assert ResponseParser(rec).feed(raw + b"DATA") == len(raw)
