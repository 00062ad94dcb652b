"""Owns the fetches over the raw bytes a client sent before any protocol was decided
(``tcp-request content`` inspection): ``req.len``, ``req.payload``,
``req.payload_lv``, ``req.ssl_hello_type`` and ``req.ssl_sni`` (SNI routing of TLS
passed through in TCP mode), ``req.rdp_cookie`` and ``req.rdp_cookie_cnt`` (the
RDP_COOKIE ACL), with their old names.

Contract with the TCP adapter: while ``tcp-request inspect-delay`` runs, it keeps the
bytes received so far in ``sess.req_data`` with ``sess.req_final = False`` and calls
``ProxyRules.tcp_content_wait(sess)``: None means "a rule needs more data, call me
again when more arrives"; True/False is the verdict.  When the delay expires, the
buffer is full or the client shuts its side, it sets ``req_final = True`` and calls
``tcp_content(sess)`` for the final verdict (an incomplete sample then simply does not
match).  A fetch that cannot decide yet raises `NeedMore` only while ``req_final`` is
False, so nothing changes for adapters that never inspect.
"""

from __future__ import annotations

from typing import Any

from minilb.rules import samples as S


class NeedMore(Exception):
    """The sample could still change: wait for more request data."""


_NEED_MORE = NeedMore()


def _incomplete(sess: Any) -> None:
    if not sess.req_final:
        raise _NEED_MORE


def _data(sess: Any) -> bytes:
    return sess.req_data


def fetch_req_len(s: Any, t: Any) -> int | None:
    if t is not None:
        cl = t.header(b"content-length")
        return (S.as_int(cl.decode("latin-1")) or 0) if cl else 0
    return len(s.req_data)


def fetch_payload(s: Any, t: Any, offset: int, length: int) -> bytes | None:
    data = _data(s)
    if offset < 0 or length < 0:
        return None
    end = len(data) if length == 0 else offset + length
    if end > len(data) or offset > len(data):
        _incomplete(s)
        return None
    return data[offset:end]


def fetch_payload_lv(s: Any, t: Any, off1: int, length: int, off2: str | None) -> bytes | None:
    data = _data(s)
    if off1 < 0 or not 0 < length <= 8:
        return None
    if off1 + length > len(data):
        _incomplete(s)
        return None
    size = int.from_bytes(data[off1 : off1 + length], "big")
    if off2 is None:
        start = off1 + length
    elif off2[:1] in "+-":
        start = off1 + length + int(off2)
    else:
        start = int(off2)
    if start < 0:
        return None
    if start + size > len(data):
        _incomplete(s)
        return None
    return data[start : start + size]


def _client_hello(s: Any) -> bytes | None:
    """The handshake body of a TLS ClientHello at the start of the buffer, or None
    (NeedMore while it is incomplete and more data may come)."""
    data = _data(s)
    if len(data) < 5:
        _incomplete(s)
        return None
    if data[0] != 0x16 or data[1] < 3:  # handshake record, SSLv3 or later
        return None
    rec_len = int.from_bytes(data[3:5], "big")
    if len(data) < 5 + rec_len or rec_len < 4:
        _incomplete(s)
        return None
    return data[5 : 5 + rec_len]


def fetch_ssl_hello_type(s: Any, t: Any) -> int | None:
    hs = _client_hello(s)
    return None if hs is None else hs[0]


def parse_sni(hs: bytes) -> str | None:
    """The host_name of the server_name extension of a ClientHello handshake message."""
    if hs[0] != 1:
        return None
    try:
        pos = 4 + 2 + 32  # handshake header, client_version, random
        pos += 1 + hs[pos]  # session_id
        pos += 2 + int.from_bytes(hs[pos : pos + 2], "big")  # cipher_suites
        pos += 1 + hs[pos]  # compression_methods
        ext_end = pos + 2 + int.from_bytes(hs[pos : pos + 2], "big")
        pos += 2
        while pos + 4 <= ext_end:
            ext_type = int.from_bytes(hs[pos : pos + 2], "big")
            ext_len = int.from_bytes(hs[pos + 2 : pos + 4], "big")
            body = hs[pos + 4 : pos + 4 + ext_len]
            pos += 4 + ext_len
            if ext_type != 0:
                continue
            # server_name_list: total length, then (type, length, name) entries
            p = 2
            while p + 3 <= len(body):
                name_type = body[p]
                name_len = int.from_bytes(body[p + 1 : p + 3], "big")
                name = body[p + 3 : p + 3 + name_len]
                if name_type == 0 and len(name) == name_len:
                    return name.decode("latin-1")
                p += 3 + name_len
            return None
    except IndexError:
        return None
    return None


def fetch_ssl_sni(s: Any, t: Any) -> str | None:
    hs = _client_hello(s)
    return None if hs is None else parse_sni(hs)


def _rdp_cookie(s: Any) -> tuple[str, str] | None:
    """(name, value) of the cookie of an RDP connection request (TPKT + X.224 header,
    then ``Cookie: name=value\r\n``); None when the buffer is not one."""
    data = _data(s)
    if len(data) < 11 + 8:
        _incomplete(s)
        return None
    if data[0] != 0x03 or data[1] != 0x00:  # TPKT version 3
        return None
    body = data[11:]
    if body[:8].lower() != b"cookie: ":
        return None
    end = body.find(b"\r\n", 8)
    if end < 0:
        _incomplete(s)
        return None
    name, eq, value = body[8:end].partition(b"=")
    if not eq:
        return None
    return name.decode("latin-1"), value.decode("latin-1")


def fetch_rdp_cookie(s: Any, t: Any, name: str | None) -> str | None:
    found = _rdp_cookie(s)
    if found is None or (name is not None and found[0].lower() != name.lower()):
        return None
    return found[1]


def fetch_rdp_cookie_cnt(s: Any, t: Any, name: str | None) -> int:
    return 0 if fetch_rdp_cookie(s, t, name) is None else 1


def _register() -> None:
    r = S.register_fetch
    for prefix in ("req.", "req_"):
        d = r(f"{prefix}len", fetch_req_len, out=S.SINT, needs=S.NEEDS_REQ_BUF)
        d.may_change = True  # "does not return false as long as the buffer is changing"
        r(f"{prefix}ssl_hello_type", fetch_ssl_hello_type, out=S.SINT, needs=S.NEEDS_REQ_BUF)
        r(f"{prefix}ssl_sni", fetch_ssl_sni, out=S.STR, needs=S.NEEDS_REQ_BUF)
    for name in ("req.rdp_cookie", "rdp_cookie"):
        r(name, fetch_rdp_cookie, (S.ARG_STR,), 0, S.STR, S.NEEDS_REQ_BUF)
    for name in ("req.rdp_cookie_cnt", "rdp_cookie_cnt"):
        d = r(name, fetch_rdp_cookie_cnt, (S.ARG_STR,), 0, S.SINT, S.NEEDS_REQ_BUF)
        d.may_change = True
    r("req.payload", fetch_payload, (S.ARG_SINT, S.ARG_SINT), out=S.BIN, needs=S.NEEDS_REQ_BUF)
    r("payload", fetch_payload, (S.ARG_SINT, S.ARG_SINT), out=S.BIN, needs=S.NEEDS_REQ_BUF)
    r("req.payload_lv", fetch_payload_lv, (S.ARG_SINT, S.ARG_SINT, S.ARG_STR), 2, S.BIN, S.NEEDS_REQ_BUF)
    r("payload_lv", fetch_payload_lv, (S.ARG_SINT, S.ARG_SINT, S.ARG_STR), 2, S.BIN, S.NEEDS_REQ_BUF)


_register()
