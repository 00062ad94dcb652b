"""The harness's tiny HTTP client reading responses from a byte stream."""

from __future__ import annotations

import io

import pytest

from tests.support.bench import probe


def test_reads_two_keep_alive_responses_with_content_length():
    stream = io.BytesIO(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
        b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\nConnection: keep-alive\r\n\r\n"
    )
    first = probe.read_response(stream)
    second = probe.read_response(stream)
    assert (first.status, first.body, first.asks_close) == (200, b"hello", False)
    assert (second.status, second.body, second.asks_close) == (429, b"", False)


def test_reads_chunked_body_and_connection_close():
    stream = io.BytesIO(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
    )
    response = probe.read_response(stream)
    assert response.body == b"abcde"
    assert response.asks_close


def test_body_until_close_counts_as_a_closing_response():
    response = probe.read_response(io.BytesIO(b"HTTP/1.0 200 OK\r\n\r\nuntil the end"))
    assert response.body == b"until the end"
    assert response.asks_close


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"SSH-2.0-OpenSSH\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nbad\r\n\r\n",
    ],
)
def test_malformed_or_truncated_responses_raise_probe_error(data):
    with pytest.raises(probe.ProbeError):
        probe.read_response(io.BytesIO(data))


def test_request_bytes():
    assert probe.build_request("/x", ("Connection: close",)) == (
        b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
