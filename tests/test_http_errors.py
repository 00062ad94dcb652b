"""minilb's built-in error responses against those captured from HAProxy 2.6.12.

tests/data/haproxy_error_pages.json was produced by running haproxy 2.6.12 with
one `http-request deny deny_status N if { path /N }` rule per status and saving
the raw bytes each request got back.
"""

import json
from pathlib import Path

import pytest

from minilb.http.errors import error_reply, error_response

PAGES = json.loads((Path(__file__).parent / "data" / "haproxy_error_pages.json").read_text())


@pytest.mark.parametrize("status", sorted(PAGES))
def test_error_page_matches_haproxy_byte_for_byte(status):
    assert error_response(int(status)) == PAGES[status].encode("latin-1")


def test_close_variant_adds_connection_close_once():
    raw = error_response(429, close=True)
    assert raw.count(b"connection: close\r\n") == 1
    assert error_response(400, close=True) == error_response(400)


def test_errorfile_replaces_builtin_page():
    custom = b"HTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n"
    assert error_reply(503, {503: custom}).raw == custom
    assert error_reply(429, {503: custom}).raw == error_response(429)


#: what haproxy 2.6.12 sent on 127.0.0.1 (captured with a socket): to b"GARBAGE\x01\r\n\r\n",
#: and to a request head left unfinished past `timeout http-request 1s`.
HAPROXY_MUX_400 = (
    b"HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\n"
    b"Connection: close\r\nContent-Type: text/html\r\n\r\n"
    b"<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n"
)
HAPROXY_MUX_408 = (
    b"HTTP/1.1 408 Request Time-out\r\nContent-length: 110\r\nCache-Control: no-cache\r\n"
    b"Connection: close\r\nContent-Type: text/html\r\n\r\n"
    b"<html><body><h1>408 Request Time-out</h1>\n"
    b"Your browser didn't send a complete request in time.\n</body></html>\n"
)


def test_mux_error_pages_match_haproxy_byte_for_byte():
    from minilb.http.errors import mux_error

    assert mux_error(400) == HAPROXY_MUX_400
    assert mux_error(408) == HAPROXY_MUX_408
