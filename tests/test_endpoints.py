"""Listening and connecting on every address family, and TLS contexts (SNI, ALPN, verification)."""

from __future__ import annotations

import os
import socket
import sys

import pytest
import pytest_twisted
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet import defer, protocol, reactor

from minilb.config.model import Address, Bind, TLSOptions
from minilb.errors import BUILTIN
from minilb.net.endpoints import (
    TLSConfigError,
    bound_unix_socket,
    client_tls_context,
    connect_address,
    listen,
    name_matches,
    server_tls_context,
    sni_literal,
)
from tests.support.procs import has_ipv6
from tests.support.tlscerts import ScratchCA


class Greeter(protocol.Protocol):
    def connectionMade(self):
        self.transport.write(b"hello from minilb\n")
        self.transport.loseConnection()


class Collector(protocol.Protocol):
    def __init__(self):
        self.data = b""
        self.done = defer.Deferred()

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.done.callback(self.data)


def greeter_factory():
    return protocol.Factory.forProtocol(Greeter)


def bind(address: Address, tls: TLSOptions | None = None, mode=None) -> Bind:
    return Bind(BUILTIN, address, tls=tls or TLSOptions(), mode=mode)


@defer.inlineCallbacks
def fetch_greeting(address: Address, tls=None, sni=None):
    proto = yield connect_address(
        reactor, address, protocol.Factory.forProtocol(Collector), 5, tls=tls, sni=sni
    )
    data = yield proto.done
    return data


@pytest_twisted.inlineCallbacks
def test_ipv4_listen_and_connect():
    port = listen(reactor, bind(Address("ipv4", "127.0.0.1", 0, text="127.0.0.1:0")), greeter_factory())
    try:
        n = port.getHost().port
        assert port.getHost().host == "127.0.0.1"
        data = yield fetch_greeting(Address("ipv4", "127.0.0.1", n))
        assert data == b"hello from minilb\n"
    finally:
        yield port.stopListening()


@pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
@pytest_twisted.inlineCallbacks
def test_ipv6_listen_and_connect():
    port = listen(reactor, bind(Address("ipv6", "::1", 0)), greeter_factory())
    try:
        data = yield fetch_greeting(Address("ipv6", "::1", port.getHost().port))
        assert data == b"hello from minilb\n"
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_unix_socket_with_mode_and_stale_file_replaced(tmp_path):
    path = str(tmp_path / "lb.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)  # a socket file nobody listens on, as a crashed process leaves
    stale.close()
    port = listen(reactor, bind(Address("unix", path=path), mode=0o600), greeter_factory())
    try:
        assert oct(os.stat(path).st_mode & 0o777) == oct(0o600)
        assert port.getHost().name == path.encode()
        assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
        data = yield fetch_greeting(Address("unix", path=path))
        assert data == b"hello from minilb\n"
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_unix_socket_taken_over_by_a_new_listener_like_a_reload(tmp_path):
    path = str(tmp_path / "lb.sock")
    old = listen(reactor, bind(Address("unix", path=path)), greeter_factory())
    new = listen(reactor, bind(Address("unix", path=path)), protocol.Factory.forProtocol(Greeter))
    try:
        yield old.stopListening()  # the old process stopping must not remove the new socket
        assert os.path.exists(path)
        data = yield fetch_greeting(Address("unix", path=path))
        assert data == b"hello from minilb\n"
    finally:
        yield new.stopListening()


def test_unix_path_that_is_not_a_socket_is_refused(tmp_path):
    path = tmp_path / "config.txt"
    path.write_text("precious")
    with pytest.raises(OSError, match="exists and is not a socket"):
        listen(reactor, bind(Address("unix", path=str(path))), greeter_factory())
    assert path.read_text() == "precious"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux-only")
@pytest_twisted.inlineCallbacks
def test_abns_listen_and_connect():
    name = f"minilb-test-{os.getpid()}"
    port = listen(reactor, bind(Address("abns", path=name)), greeter_factory())
    try:
        raw = socket.socket(socket.AF_UNIX)
        raw.connect("\0" + name)  # really in the abstract namespace
        raw.close()
        data = yield fetch_greeting(Address("abns", path=name))
        assert data == b"hello from minilb\n"
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_fd_adopts_an_inherited_listening_socket():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # left blocking, as systemd hands sockets over
    n = sock.getsockname()[1]
    port = listen(
        reactor, bind(Address("fd", fd=sock.fileno(), text=f"fd@{sock.fileno()}")), greeter_factory()
    )
    try:
        data = yield fetch_greeting(Address("ipv4", "127.0.0.1", n))
        assert data == b"hello from minilb\n"
    finally:
        yield port.stopListening()
        sock.close()


@pytest_twisted.inlineCallbacks
def test_fd_adopts_a_unix_socket_bound_and_renamed_by_a_master(tmp_path):
    path = str(tmp_path / "lb.sock")
    sock = bound_unix_socket(path, 0o600)  # as the master binds it: a temporary name renamed
    port = listen(
        reactor, bind(Address("fd", fd=sock.fileno(), text=f"fd@{sock.fileno()}")), greeter_factory()
    )
    try:
        assert oct(os.stat(path).st_mode & 0o777) == oct(0o600)  # not chmodded again
        data = yield fetch_greeting(Address("unix", path=path))
        assert data == b"hello from minilb\n"
    finally:
        yield port.stopListening()
    # the master's socket still listens: stopping closed the worker's copy only
    assert os.path.exists(path)
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(path)
    sock.close()


def test_fd_that_is_not_a_listener_is_refused():
    a, b = socket.socketpair()
    try:
        with pytest.raises(OSError, match=f"fd@{a.fileno()} is not a listening stream socket"):
            listen(reactor, bind(Address("fd", fd=a.fileno())), greeter_factory())
    finally:
        a.close()
        b.close()
    with pytest.raises(OSError, match="fd@9999 is not an open socket"):
        listen(reactor, bind(Address("fd", fd=9999)), greeter_factory())


def test_bad_addresses_are_reported():
    with pytest.raises(OSError, match="missing port"):
        listen(reactor, bind(Address("ipv4", "127.0.0.1", None, text="127.0.0.1")), greeter_factory())
    with pytest.raises(OSError, match="cannot resolve"):
        listen(reactor, bind(Address("ipv4", "no-such-host.invalid", 80)), greeter_factory())


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = ScratchCA()
    return {
        "ca": ca.write_ca(d / "ca.pem"),
        "other_ca": ScratchCA("other CA").write_ca(d / "other-ca.pem"),
        "default": ca.issue(d / "default.pem", "default.test"),
        "a": ca.issue(d / "a.pem", "a.example.com"),
        "wild": ca.issue(d / "wild.pem", "*.wild.test"),
        "localhost": ca.issue(d / "localhost.pem", "localhost", "127.0.0.1"),
        "client": ca.issue(d / "client.pem", "client.test"),
        "dir": d,
    }


def handshake(server_ctx: SSL.Context, client_ctx: SSL.Context, sni: bytes | None = None):
    """Run a TLS handshake in memory; return (server conn, client conn)."""
    server = SSL.Connection(server_ctx, None)
    server.set_accept_state()
    client = SSL.Connection(client_ctx, None)
    client.set_connect_state()
    if sni:
        client.set_tlsext_host_name(sni)
    done = {server: False, client: False}
    for _ in range(20):
        for conn, other in ((client, server), (server, client)):
            if not done[conn]:
                try:
                    conn.do_handshake()
                    done[conn] = True
                except SSL.WantReadError:
                    pass
            try:
                data = conn.bio_read(65536)
            except SSL.WantReadError:
                data = b""
            if data:
                other.bio_write(data)
        if all(done.values()):
            break
    return server, client


def client_ctx(alpn=None, cert=None) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if alpn:
        ctx.set_alpn_protos(alpn)
    if cert:
        ctx.use_certificate_chain_file(cert)
        ctx.use_privatekey_file(cert)
    return ctx


def peer_cn(conn: SSL.Connection) -> str:
    cert = conn.get_peer_certificate(as_cryptography=True)
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_sni_selects_the_matching_certificate(pki):
    tls = TLSOptions(enabled=True, crt=(pki["default"], pki["a"], pki["wild"]))
    ctx = server_tls_context(tls)
    assert peer_cn(handshake(ctx, client_ctx(), b"a.example.com")[1]) == "a.example.com"
    assert peer_cn(handshake(ctx, client_ctx(), b"x.wild.test")[1]) == "*.wild.test"
    assert peer_cn(handshake(ctx, client_ctx(), b"unknown.test")[1]) == "default.test"
    assert peer_cn(handshake(ctx, client_ctx())[1]) == "default.test"
    assert server_tls_context(tls) is ctx  # built once


def test_crt_directory_loads_every_pem(pki, tmp_path):
    ca = ScratchCA()
    ca.issue(tmp_path / "1-one.pem", "one.test")
    ca.issue(tmp_path / "2-two.pem", "two.test")
    ctx = server_tls_context(TLSOptions(enabled=True, crt=(str(tmp_path),)))
    assert peer_cn(handshake(ctx, client_ctx(), b"two.test")[1]) == "two.test"
    assert peer_cn(handshake(ctx, client_ctx(), b"one.test")[1]) == "one.test"


def test_alpn_selects_http11(pki):
    ctx = server_tls_context(TLSOptions(enabled=True, crt=(pki["default"],), alpn=("http/1.1",)))
    server, client = handshake(ctx, client_ctx(alpn=[b"h2", b"http/1.1"]))
    assert client.get_alpn_proto_negotiated() == b"http/1.1"


def test_client_certificates_required_with_ca_file(pki):
    tls = TLSOptions(enabled=True, crt=(pki["default"],), ca_file=pki["ca"], verify="required")
    ctx = server_tls_context(tls)
    server, client = handshake(ctx, client_ctx(cert=pki["client"]))
    assert peer_cn(server) == "client.test"
    with pytest.raises(SSL.Error):
        handshake(ctx, client_ctx())


def test_min_version_and_bad_files_are_clear_errors(pki, tmp_path):
    ctx = server_tls_context(TLSOptions(enabled=True, crt=(pki["default"],), ssl_min_ver="TLSv1.3"))
    server, client = handshake(ctx, client_ctx())
    assert client.get_protocol_version_name() == "TLSv1.3"
    with pytest.raises(TLSConfigError, match="missing.pem"):
        server_tls_context(TLSOptions(enabled=True, crt=(str(tmp_path / "missing.pem"),)))
    only_cert = tmp_path / "nokey.pem"
    only_cert.write_bytes(open(pki["default"], "rb").read().split(b"-----BEGIN PRIVATE KEY")[0])
    with pytest.raises(TLSConfigError, match="private key"):
        server_tls_context(TLSOptions(enabled=True, crt=(str(only_cert),)))


def test_name_matching_and_sni_literal():
    assert name_matches("*.a.test", "x.a.test")
    assert not name_matches("*.a.test", "a.test")
    assert not name_matches("*.a.test", "x.y.a.test")
    assert sni_literal("str(api.test)") == "api.test"
    assert sni_literal("req.hdr(host)") is None


@pytest_twisted.inlineCallbacks
def test_tls_listener_and_verified_client(pki):
    tls = TLSOptions(enabled=True, crt=(pki["localhost"],))
    port = listen(reactor, bind(Address("ipv4", "127.0.0.1", 0), tls=tls), greeter_factory())
    try:
        addr = Address("ipv4", "127.0.0.1", port.getHost().port)
        verified = TLSOptions(enabled=True, ca_file=pki["ca"], verify="required")
        data = yield fetch_greeting(addr, tls=verified, sni="localhost")
        assert data == b"hello from minilb\n"
        unverified = TLSOptions(enabled=True, verify="none")
        data = yield fetch_greeting(addr, tls=unverified)
        assert data == b"hello from minilb\n"
        # wrong name: hostname verification fails the connection attempt itself
        from service_identity import VerificationError

        with pytest.raises(VerificationError):
            yield fetch_greeting(addr, tls=verified, sni="other.test")
        # a CA that did not sign the certificate: the handshake fails
        other_ca = TLSOptions(enabled=True, ca_file=pki["other_ca"], verify="required")
        with pytest.raises(SSL.Error):
            yield fetch_greeting(addr, tls=other_ca, sni="localhost")
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_tls_handshake_timeout_is_a_connect_failure():
    from minilb.net.endpoints import HandshakeTimeout

    silent = socket.socket()  # accepts (kernel backlog) but never answers the handshake
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        addr = Address("ipv4", "127.0.0.1", silent.getsockname()[1])
        d = connect_address(
            reactor,
            addr,
            protocol.Factory.forProtocol(Collector),
            0.2,
            tls=TLSOptions(enabled=True, verify="none"),
        )
        with pytest.raises(HandshakeTimeout):
            yield d
    finally:
        silent.close()


def test_client_context_is_cached(pki):
    tls = TLSOptions(enabled=True, ca_file=pki["ca"], verify="required")
    assert client_tls_context(tls, "a.test") is client_tls_context(tls, "a.test")


@pytest_twisted.inlineCallbacks
def test_two_listeners_share_a_port_like_haproxy_reuseport():
    first = listen(reactor, bind(Address("ipv4", "127.0.0.1", 0)), greeter_factory())
    n = first.getHost().port
    second = listen(reactor, bind(Address("ipv4", "127.0.0.1", n)), greeter_factory())
    try:
        yield first.stopListening()
        data = yield fetch_greeting(Address("ipv4", "127.0.0.1", n))
        assert data == b"hello from minilb\n"  # the new listener took over
    finally:
        yield second.stopListening()


def test_port_taken_without_reuseport_is_a_clear_error():
    plain = socket.socket()
    plain.bind(("127.0.0.1", 0))
    plain.listen(1)
    try:
        with pytest.raises(OSError, match=r"cannot bind socket .* for \[127.0.0.1:"):
            listen(reactor, bind(Address("ipv4", "127.0.0.1", plain.getsockname()[1])), greeter_factory())
    finally:
        plain.close()
