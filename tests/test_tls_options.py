"""TLS version, ticket and cipher-order options applied to real handshakes on 127.0.0.1.

Binds: a minilb listener, and the standard library's TLS client (in a thread) pinned to
one version.  Servers: minilb dials a plain socket that reads the ClientHello, so the
test sees what the client offers (versions, session ticket extension), and a standard
library TLS server for the version actually negotiated.
"""

from __future__ import annotations

import socket
import ssl
import struct
import warnings

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor, threads

from minilb.config.model import Address, Bind, TLSOptions
from minilb.errors import BUILTIN
from minilb.net.endpoints import connect_address, listen
from tests.support.tlscerts import ScratchCA

TIMEOUT = 10
VERSIONS = {
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
WIRE = {0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tlsopts")
    ca = ScratchCA()
    return {"ca": ca.write_ca(tmp / "ca.pem"), "crt": ca.issue(tmp / "srv.pem", "srv.test", "127.0.0.1")}


class Greeter(protocol.Protocol):
    def connectionMade(self):
        self.transport.write(b"hi")


def _client_context(version: str, ciphers: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLSv1.1 is deprecated: that is what is tested
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = VERSIONS[version]
    ctx.set_ciphers(ciphers or "ALL:@SECLEVEL=0")
    return ctx


def _handshake(port: int, ctx: ssl.SSLContext) -> dict | None:
    """One TLS connection to ``port``: the negotiated version, cipher and whether a
    session ticket came (read after the greeting: TLSv1.3 tickets follow the handshake);
    None when the server refuses the handshake."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        try:
            s = ctx.wrap_socket(raw)
        except (ssl.SSLError, ConnectionResetError):
            return None
        with s:
            assert s.recv(2) == b"hi"
            return {"version": s.version(), "cipher": s.cipher()[0], "ticket": s.session.has_ticket}


@defer.inlineCallbacks
def _bind_results(pki, cases, ciphers="ALL:@SECLEVEL=0", **options):
    """What a standard library client gets from a minilb TLS bind with ``options``,
    once per case: a version, or (version, client cipher list)."""
    tls = TLSOptions(enabled=True, crt=(pki["crt"],), ciphers=ciphers, **options)
    factory = protocol.Factory.forProtocol(Greeter)
    port = listen(reactor, Bind(BUILTIN, Address("ipv4", "127.0.0.1", 0), tls=tls), factory)
    try:
        out = []
        for case in cases:
            ctx = _client_context(*case) if isinstance(case, tuple) else _client_context(case)
            out.append((yield threads.deferToThread(_handshake, port.getHost().port, ctx)))
        return out
    finally:
        yield port.stopListening()


def _versions(results) -> list:
    return [r and r["version"] for r in results]


ALL = ("TLSv1.1", "TLSv1.2", "TLSv1.3")


@pytest_twisted.inlineCallbacks
def test_bind_version_options(pki):
    # haproxy's default ssl-min-ver on binds is TLSv1.2
    assert _versions((yield _bind_results(pki, ALL))) == [None, "TLSv1.2", "TLSv1.3"]
    lowered = yield _bind_results(pki, ALL, ssl_min_ver="TLSv1.0")
    assert _versions(lowered) == ["TLSv1.1", "TLSv1.2", "TLSv1.3"]
    no13 = yield _bind_results(pki, ALL, no_versions=("TLSv1.3",))
    assert _versions(no13) == [None, "TLSv1.2", None]
    max12 = yield _bind_results(pki, ALL, ssl_max_ver="TLSv1.2")
    assert _versions(max12) == [None, "TLSv1.2", None]
    no12 = yield _bind_results(pki, ALL, no_versions=("TLSv1.2",))
    assert _versions(no12) == [None, None, "TLSv1.3"]
    forced = yield _bind_results(pki, ALL, ssl_min_ver="TLSv1.3", ssl_max_ver="TLSv1.3")  # force-tlsv13
    assert _versions(forced) == [None, None, "TLSv1.3"]


@pytest_twisted.inlineCallbacks
def test_bind_session_tickets_and_no_tls_tickets(pki):
    (with_tickets,) = yield _bind_results(pki, ["TLSv1.2"])
    assert with_tickets["version"] == "TLSv1.2" and with_tickets["ticket"] is True
    (without,) = yield _bind_results(pki, ["TLSv1.2"], tls_tickets=False)
    assert without["version"] == "TLSv1.2" and without["ticket"] is False


@pytest_twisted.inlineCallbacks
def test_bind_cipher_order_is_the_servers_unless_prefer_client_ciphers(pki):
    # the client lists AES128 first, the bind AES256 first
    client = ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384")
    bind_order = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"
    (default,) = yield _bind_results(pki, [client], ciphers=bind_order)
    assert default["cipher"] == "ECDHE-ECDSA-AES256-GCM-SHA384"
    (client_first,) = yield _bind_results(pki, [client], ciphers=bind_order, prefer_client_ciphers=True)
    assert client_first["cipher"] == "ECDHE-ECDSA-AES128-GCM-SHA256"


# --------------------------------------------------------------------------- server lines


def _client_hello(data: bytes) -> dict:
    """The versions a ClientHello offers and whether it asks for a session ticket."""
    assert data[0] == 22 and data[5] == 1, "not a ClientHello"
    body = data[9:]
    pos = 2 + 32  # legacy version, random
    pos += 1 + body[pos]  # session id
    count = struct.unpack_from("!H", body, pos)[0] // 2
    suites = set(struct.unpack_from(f"!{count}H", body, pos + 2))
    pos += 2 + 2 * count  # cipher suites
    pos += 1 + body[pos]  # compression methods
    end = pos + 2 + struct.unpack_from("!H", body, pos)[0]
    pos += 2
    versions = {WIRE.get(struct.unpack_from("!H", body)[0])}
    ticket = False
    while pos < end:
        kind, size = struct.unpack_from("!HH", body, pos)
        data_ = body[pos + 4 : pos + 4 + size]
        if kind == 43:  # supported_versions
            versions = {WIRE.get(struct.unpack_from("!H", data_, 1 + i)[0]) for i in range(0, data_[0], 2)}
        elif kind == 35:  # session_ticket
            ticket = True
        pos += 4 + size
    versions.discard(None)  # GREASE and unknown values
    return {"versions": sorted(versions), "ticket": ticket, "suites": suites}


def _read_client_hello(listener: socket.socket) -> bytes:
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(TIMEOUT)
        data = b""
        while len(data) < 5 or len(data) < 5 + struct.unpack_from("!H", data, 3)[0]:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


@defer.inlineCallbacks
def _offered(**options):
    """What minilb's TLS client (a server line with ``options``) offers in its ClientHello."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(TIMEOUT)
    try:
        hello = threads.deferToThread(_read_client_hello, listener)
        tls = TLSOptions(enabled=True, **options)
        dial = connect_address(
            reactor, Address("ipv4", "127.0.0.1", listener.getsockname()[1]), protocol.Factory(), 5, tls=tls
        )
        dial.addErrback(lambda _: None)  # the reader closes without answering
        data = yield hello
        yield dial
        return _client_hello(data)
    finally:
        listener.close()


@pytest_twisted.inlineCallbacks
def test_server_lines_offer_the_configured_versions_and_tickets(pki):
    default = yield _offered(verify="none")  # no floor of minilb's own: OpenSSL's
    assert default["versions"][-2:] == ["TLSv1.2", "TLSv1.3"] and default["ticket"] is True
    assert (yield _offered(verify="none", no_versions=("TLSv1.3",)))["versions"][-1] == "TLSv1.2"
    assert (yield _offered(verify="none", ssl_min_ver="TLSv1.3"))["versions"] == ["TLSv1.3"]
    assert (yield _offered(verify="none", tls_tickets=False))["ticket"] is False
    # the verifying client (ca-file + a name to check) takes the same options
    verified = {"verify": "required", "ca_file": pki["ca"], "verifyhost": "srv.test"}
    offered = yield _offered(ssl_max_ver="TLSv1.2", tls_tickets=False, **verified)
    assert offered["versions"][-1] == "TLSv1.2" and offered["ticket"] is False
    # and its ciphers: ECDHE-ECDSA-AES128-GCM-SHA256 is 0xC02B, TLS_AES_128_GCM_SHA256 0x1301
    ciphers = {"ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256", "ciphersuites": "TLS_AES_128_GCM_SHA256"}
    offered = yield _offered(**ciphers, **verified)
    assert offered["suites"] - {0x00FF} == {0xC02B, 0x1301}  # 0x00FF: the renegotiation signal


def _tls_server(pki, listener: socket.socket, results: list) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["crt"])
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(TIMEOUT)
        try:
            with ctx.wrap_socket(conn, server_side=True) as s:
                results.append(s.version())
                s.sendall(b"hi")
        except (ssl.SSLError, OSError):
            results.append(None)


class Reader(protocol.Protocol):
    def __init__(self):
        self.got = defer.Deferred()

    def dataReceived(self, data):
        if not self.got.called:
            self.got.callback(data)


@pytest_twisted.inlineCallbacks
def test_server_line_negotiates_within_its_versions(pki):
    verified = {"verify": "required", "ca_file": pki["ca"], "verifyhost": "srv.test"}
    for options, expected in (
        ({}, "TLSv1.3"),
        ({"no_versions": ("TLSv1.3",)}, "TLSv1.2"),
        ({"ssl_max_ver": "TLSv1.2"}, "TLSv1.2"),
    ):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(TIMEOUT)
        results: list = []
        server = threads.deferToThread(_tls_server, pki, listener, results)
        try:
            proto = yield connect_address(
                reactor,
                Address("ipv4", "127.0.0.1", listener.getsockname()[1]),
                protocol.Factory.forProtocol(Reader),
                5,
                tls=TLSOptions(enabled=True, **verified, **options),
            )
            assert (yield proto.got) == b"hi"
            proto.transport.loseConnection()
            yield server
        finally:
            listener.close()
        assert results == [expected], options


# --------------------------------------------------------------------------- accept-proxy with ssl


class PeerTeller(protocol.Protocol):
    """Says who it sees at the other end once the TLS handshake is through."""

    def connectionMade(self):
        peer = self.transport.getPeer()
        self.transport.write(f"{peer.host} {peer.port}".encode())
        self.transport.loseConnection()


def _proxied_tls_exchange(port: int, header: bytes, split: bool) -> bytes:
    """Send ``header`` then a TLS handshake (in the same segment as the ClientHello
    unless ``split``); return what the TLS server said."""
    ctx = _client_context("TLSv1.3")
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing)
    try:
        if split:
            raw.sendall(header)
            header = b""
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        raw.sendall(header + outgoing.read())
        data = b""
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if chunk := outgoing.read():
                    raw.sendall(chunk)
                got = raw.recv(65536)
                if not got:
                    return b""
                incoming.write(got)
        raw.sendall(outgoing.read())
        while True:
            try:
                chunk = tls.read(4096)
                if not chunk:
                    return data
                data += chunk
            except ssl.SSLWantReadError:
                got = raw.recv(65536)
                if not got:
                    return data
                incoming.write(got)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return data
    finally:
        raw.close()


def _v2_header(src: str, sport: int, dst: str, dport: int) -> bytes:
    addresses = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x11" + struct.pack("!H", len(addresses)) + addresses


@pytest_twisted.inlineCallbacks
def test_accept_proxy_with_ssl_reads_the_header_before_the_handshake(pki):
    tls = TLSOptions(enabled=True, crt=(pki["crt"],))
    b = Bind(BUILTIN, Address("ipv4", "127.0.0.1", 0), tls=tls, accept_proxy=True)
    port = listen(reactor, b, protocol.Factory.forProtocol(PeerTeller))
    number = port.getHost().port
    try:
        v1 = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 443\r\n"
        assert (yield threads.deferToThread(_proxied_tls_exchange, number, v1, True)) == b"192.0.2.7 5555"
        # the header and the ClientHello in one segment
        assert (yield threads.deferToThread(_proxied_tls_exchange, number, v1, False)) == b"192.0.2.7 5555"
        v2 = _v2_header("198.51.100.9", 4242, "127.0.0.1", 443)
        assert (yield threads.deferToThread(_proxied_tls_exchange, number, v2, False)) == b"198.51.100.9 4242"
        # no header: the connection is closed, as haproxy does
        assert (yield threads.deferToThread(_proxied_tls_exchange, number, b"", False)) == b""
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_bind_with_ca_file_and_no_verify_asks_for_no_client_certificate(pki):
    # haproxy's bind default is `verify none`, ca-file or not: a client without a certificate gets in
    (result,) = yield _bind_results(pki, ["TLSv1.2"], ca_file=pki["ca"])
    assert result is not None and result["version"] == "TLSv1.2"
    (refused,) = yield _bind_results(pki, ["TLSv1.2"], ca_file=pki["ca"], verify="required")
    assert refused is None


# --------------------------------------------------------------------------- peers


@pytest_twisted.inlineCallbacks
def test_peers_bind_and_peer_lines_apply_their_tls_options(pki):
    import random

    from minilb.config.model import Peer, PeersSection
    from minilb.peers.service import PeersService
    from minilb.stick.table import StickTable
    from tests.support.peers import ST_IP_SPEC

    capture = socket.socket()
    capture.bind(("127.0.0.1", 0))
    capture.listen(1)
    capture.settimeout(TIMEOUT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        local_port = s.getsockname()[1]
    hello = threads.deferToThread(_read_client_hello, capture)
    bind_tls = TLSOptions(
        enabled=True, crt=(pki["crt"],), ciphers="ALL:@SECLEVEL=0", no_versions=("TLSv1.3",)
    )
    peer_tls = TLSOptions(enabled=True, verify="none", ssl_max_ver="TLSv1.2", tls_tickets=False)
    section = PeersSection(
        BUILTIN,
        "mypeers",
        peers=(
            Peer(BUILTIN, "me", Address("ipv4", "127.0.0.1", local_port)),
            Peer(BUILTIN, "other", Address("ipv4", "127.0.0.1", capture.getsockname()[1]), tls=peer_tls),
        ),
        bind=Bind(BUILTIN, Address("ipv4", "127.0.0.1", local_port), tls=bind_tls, name="me"),
        local_peer="me",
    )
    service = PeersService(reactor, section, "me", [StickTable(ST_IP_SPEC, reactor)], rng=random.Random(1))
    service.startService()
    try:
        offered = _client_hello((yield hello))
        assert offered["versions"][-1] == "TLSv1.2" and offered["ticket"] is False
        for version, expected in (("TLSv1.2", "TLSv1.2"), ("TLSv1.3", None)):
            got = yield threads.deferToThread(_peers_handshake, local_port, _client_context(version))
            assert got == expected
    finally:
        capture.close()
        yield service.stopService()


def _peers_handshake(port: int, ctx: ssl.SSLContext) -> str | None:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        try:
            with ctx.wrap_socket(raw) as s:
                return s.version()
        except (ssl.SSLError, ConnectionResetError):
            return None
