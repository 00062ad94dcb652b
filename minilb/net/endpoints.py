"""Owns sockets: listening on and connecting to every HAProxy address form, and TLS contexts.

* `listen(reactor, bind, factory)` opens a ``bind`` line's listener: IPv4, IPv6,
  ``*``/empty host (all addresses) with SO_REUSEPORT as HAProxy, UNIX paths (with ``mode``), Linux abstract
  sockets (``abns@``) and ``fd@N`` (adopting a socket that is already listening,
  inherited from the parent process); TLS is terminated in front of ``factory``
  when the bind has ``ssl``.
* `connect_address` / `connect_server` dial a server (plain or TLS) and return a
  Deferred that fires with the connected protocol.
* `server_tls_context(tls)` builds the pyOpenSSL context of a TLS listener from
  HAProxy-style PEM files (certificate, chain and key in one file; several ``crt``
  chosen by SNI); `client_tls_context(tls, hostname)` the connection creator of a
  TLS client (``verify none|required``, ``ca-file``, ``sni``, client ``crt``).

Contexts are built once per distinct `TLSOptions` (they are frozen and hashable) and
reused for every connection.  TLS files that cannot be read raise `TLSConfigError`
with the file named, never a bare OpenSSL traceback.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import socket
import stat
from collections.abc import Callable, Iterable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from twisted.internet import defer, endpoints, error, interfaces, ssl, tcp, unix
from twisted.internet._sslverify import ClientTLSOptions
from twisted.internet.address import UNIXAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from minilb.config.model import Address, Bind, TLSOptions
from minilb.config.options import tls_versions

__all__ = [
    "TLSConfigError",
    "listen",
    "connect_address",
    "connect_server",
    "server_tls_context",
    "client_tls_context",
    "sni_literal",
    "check_inherited_listener",
]


class TLSConfigError(Exception):
    """A certificate, key or CA file cannot be used; the message names the file."""


# --------------------------------------------------------------------------- listening


def resolve_listen_host(address: Address) -> tuple[str, int]:
    """The (interface, socket family) a bind address listens on."""
    host = address.host.strip("[]")
    if address.family == "ipv6":
        return (host if host not in ("", "*") else "::"), socket.AF_INET6
    if host in ("", "*"):
        return "0.0.0.0", socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise OSError(f"cannot resolve bind address '{address.text or host}': {e}") from e
    return infos[0][4][0], socket.AF_INET


def bound_inet_socket(
    interface: str, port: int, family: int, v6only: bool = False, v4v6: bool = False, backlog: int = 1024
) -> socket.socket:
    """A listening TCP socket with SO_REUSEADDR and SO_REUSEPORT, as HAProxy binds on
    Linux: a new process (``-sf``, a reload) can bind the address while the old one
    still listens, so no connection is refused in between."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and (v6only or v4v6):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
        sock.bind((interface, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"cannot bind socket ({e.strerror}) for [{interface}:{port}]") from e
    return sock


def check_inherited_listener(fd: int) -> int:
    """Make an inherited socket usable by the reactor and return its family: it must
    be a listening stream socket; it is switched to non-blocking mode (systemd and
    other parents hand over blocking sockets, and the reactor accepts in a loop)."""
    try:
        probe = socket.socket(fileno=os.dup(fd))
    except OSError as e:
        raise OSError(e.errno, f"fd@{fd} is not an open socket ({e.strerror})") from e
    try:
        if probe.type != socket.SOCK_STREAM or not probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            raise OSError(errno.EINVAL, f"fd@{fd} is not a listening stream socket")
        probe.setblocking(False)  # the flag lives on the shared open file: fd is non-blocking too
        return probe.family
    finally:
        probe.close()


def bound_unix_socket(path: str, mode: int | None, backlog: int = 1024) -> socket.socket:
    """A listening UNIX socket at ``path``, made the way HAProxy makes them: bound on a
    temporary name, given its ``mode``, then renamed over ``path``.  A socket left by
    a dead process, or one an older minilb still listens on (``-sf``, a reload), is
    replaced atomically: clients never find the path missing, and the old process
    keeps its own socket until it stops.  A file that is not a socket is refused."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise OSError(errno.EADDRINUSE, f"'{path}' exists and is not a socket")
    tmp = f"{path}.{os.getpid()}.tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        sock.listen(backlog)
        sock.setblocking(False)
        os.rename(tmp, path)
    except OSError as e:
        sock.close()
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise OSError(e.errno, f"cannot bind UNIX socket ({e.strerror}) [{path}]") from e
    return sock


class UnixListener(unix.Port):
    """A UNIX listener on a socket made by `bound_unix_socket`.  Unlike Twisted's own
    port it neither chmods nor unlinks the path: when it stops after a reload, the
    path already belongs to the newer process's socket."""

    def adopt(self, sock: socket.socket) -> None:
        self.factory.doStart()
        # the socket may be shared (the master, the next worker): stopping closes this
        # copy only, where shutdown() would stop the listening socket for all of them
        self._shouldShutdown = False
        self.socket = sock
        self.fileno = sock.fileno
        self.numberAccepts = 100  # Twisted's starting accept batch
        self.connected = True
        self.startReading()

    def startListening(self) -> None:  # pragma: no cover - adopt() is the way in
        raise NotImplementedError("UnixListener only adopts sockets made by bound_unix_socket")

    def connectionLost(self, reason) -> None:
        tcp.Port.connectionLost(self, reason)

    def getHost(self):
        # the kernel still names the socket by its temporary path; the path is what counts
        return UNIXAddress(self._bindPath)


def listen(reactor, bind: Bind, factory: Factory, backlog: int = 1024) -> interfaces.IListeningPort:
    """Open the listener of a ``bind`` line; TLS-wrap ``factory`` when the bind has ``ssl``.
    With ``accept-proxy`` too, the PROXY header comes first on the wire: it is read
    before the TLS layer starts, which then sees (and reports) the header's addresses.
    (A bind with ``accept-proxy`` alone is wrapped by the caller, see
    `minilb.worker.service.bind_factory`.)"""
    if bind.tls.enabled:
        factory = TLSMemoryBIOFactory(ServerContextFactory(bind.tls), False, factory)
        if bind.accept_proxy:
            from minilb.tcp.proxyproto import ProxyHeaderFactory

            factory = ProxyHeaderFactory(factory)
    address = bind.address
    family = address.family
    if family in ("ipv4", "ipv6"):
        if address.port is None:
            raise OSError(f"missing port in bind address '{address}'")
        interface, sock_family = resolve_listen_host(address)
        sock = bound_inet_socket(interface, address.port, sock_family, bind.v6only, bind.v4v6, backlog)
        try:
            return reactor.adoptStreamPort(sock.fileno(), sock_family, factory)
        finally:
            sock.close()  # the port holds its own duplicate
    if family == "unix":
        port = UnixListener(address.path.encode(), factory, reactor=reactor)
        port.adopt(bound_unix_socket(address.path, bind.mode, backlog))
        return port
    if family == "abns":
        return reactor.listenUNIX("\0" + address.path, factory, backlog=backlog, wantPID=False)
    if family == "fd":
        if address.fd is None:
            raise OSError(f"missing file descriptor number in '{address}'")
        return adopt_listener(reactor, address.fd, factory)
    raise OSError(f"unsupported address family '{family}' for '{address}'")


def adopt_listener(reactor, fd: int, factory: Factory) -> interfaces.IListeningPort:
    """Listen on the inherited listening socket ``fd`` (a master's, systemd's).  A UNIX
    socket with a file name is adopted by a `UnixListener`: Twisted's own port would
    chmod the name the socket was bound on, which `bound_unix_socket` renamed away."""
    family = check_inherited_listener(fd)
    if family == socket.AF_UNIX:
        sock = socket.socket(fileno=os.dup(fd))
        name = sock.getsockname()
        if isinstance(name, str) and name and not name.startswith("\0"):
            port = UnixListener(name.encode(), factory, reactor=reactor)
            port.adopt(sock)
            return port
        sock.close()
    return reactor.adoptStreamPort(fd, family, factory)


# --------------------------------------------------------------------------- connecting


def _client_endpoint(reactor, address: Address, timeout_s: float, port: int | None = None):
    family = address.family
    if family in ("ipv4", "ipv6"):
        host = address.host.strip("[]") or ("::1" if family == "ipv6" else "127.0.0.1")
        port = port if port is not None else address.port
        if port is None:
            raise OSError(f"missing port in server address '{address}'")
        if _is_ip(host, socket.AF_INET):
            return endpoints.TCP4ClientEndpoint(reactor, host, port, timeout=timeout_s)
        if _is_ip(host, socket.AF_INET6):
            return endpoints.TCP6ClientEndpoint(reactor, host, port, timeout=timeout_s)
        return endpoints.HostnameEndpoint(reactor, host, port, timeout=timeout_s)
    if family == "unix":
        return endpoints.UNIXClientEndpoint(reactor, address.path, timeout=timeout_s)
    if family == "abns":
        return endpoints.UNIXClientEndpoint(reactor, "\0" + address.path, timeout=timeout_s)
    raise OSError(f"cannot connect to address family '{family}' ('{address}')")


@functools.lru_cache(maxsize=4096)
def _is_ip(host: str, family: int) -> bool:
    try:
        socket.inet_pton(family, host)
    except OSError:
        return False
    return True


def connect_address(
    reactor,
    address: Address,
    factory: Factory,
    timeout_s: float,
    tls: TLSOptions | None = None,
    sni: str | None = None,
    port: int | None = None,
) -> defer.Deferred:
    """Dial ``address`` (``port`` overrides its port); TLS when ``tls.enabled``.

    Returns a Deferred firing with the protocol built by ``factory`` once the
    connection is usable, or failing with ``ConnectError`` / ``TimeoutError``.  With
    TLS, "usable" means after the handshake: a certificate that fails verification
    is a connection failure (the data path retries or answers 503, as HAProxy does),
    and the handshake must finish within ``timeout_s`` too.
    """
    endpoint = _client_endpoint(reactor, address, timeout_s, port)
    if tls is None or not tls.enabled:
        return endpoint.connect(factory)
    endpoint = endpoints.wrapClientTLS(client_tls_context(tls, sni), endpoint)
    connected: defer.Deferred = defer.Deferred()
    gate = _HandshakeGateFactory(reactor, factory, connected, timeout_s)
    endpoint.connect(gate).addErrback(gate.tcp_failed)
    return connected


class HandshakeTimeout(Exception):
    """The TLS handshake with a server did not finish in time."""


@implementer(interfaces.IHandshakeListener)
class _HandshakeGate(Protocol):
    """Holds a TLS client connection until its handshake completes, then hands the
    TLS transport to the caller's protocol (built only then) and fires the Deferred."""

    def __init__(self, owner: _HandshakeGateFactory, addr):
        self.owner = owner
        self.addr = addr

    def connectionMade(self):
        self.owner.timer = self.owner.reactor.callLater(self.owner.timeout_s, self._too_slow)

    def _too_slow(self):
        self.owner.timer = None
        self.owner.fail(Failure(HandshakeTimeout("TLS handshake timeout")))
        self.transport.abortConnection()

    def handshakeCompleted(self):
        owner = self.owner
        owner.cancel_timer()
        if owner.result.called:
            return
        real = owner.factory.buildProtocol(self.addr)
        tls = self.transport
        if real is None:
            owner.fail(Failure(error.ConnectError("connection refused by the local factory")))
            tls.loseConnection()
            return
        tls.wrappedProtocol = real
        real.makeConnection(tls)
        owner.result.callback(real)

    def connectionLost(self, reason=None):
        self.owner.cancel_timer()
        self.owner.fail(reason if reason is not None else Failure(error.ConnectionLost()))


class _HandshakeGateFactory(Factory):
    noisy = False

    def __init__(self, reactor, factory, result: defer.Deferred, timeout_s: float):
        self.reactor = reactor
        self.factory = factory
        self.result = result
        self.timeout_s = timeout_s
        self.timer = None

    def buildProtocol(self, addr):
        return _HandshakeGate(self, addr)

    def cancel_timer(self):
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def fail(self, failure: Failure) -> None:
        if not self.result.called:
            self.result.errback(failure)

    def tcp_failed(self, failure: Failure) -> None:
        self.fail(failure)


def connect_server(
    reactor, server, factory: Factory, timeout_s: float, sni: str | None = None
) -> defer.Deferred:
    """Dial a `ServerState` with its TLS settings.  ``sni`` is the server name computed
    by the data path when ``sni`` is a request expression; a literal ``sni str(NAME)``
    is used when ``sni`` is not given."""
    if sni is None and server.tls.enabled:
        sni = sni_literal(server.tls.sni)
    return connect_address(
        reactor, server.address, factory, timeout_s, server.tls if server.tls.enabled else None, sni
    )


def sni_literal(expression: str | None) -> str | None:
    """The constant host name of an ``sni`` sample expression (``str(example.com)``),
    or None when the expression depends on the request."""
    if not expression:
        return None
    if expression.startswith("str(") and expression.endswith(")"):
        return expression[4:-1]
    return None


# --------------------------------------------------------------------------- TLS: files


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TLSConfigError(f"unable to load {what} file '{path}': {e.strerror}") from e


def _crt_files(paths: Iterable[str]) -> list[str]:
    """Expand ``crt`` arguments: a directory stands for the PEM files it holds."""
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.endswith((".key", ".ocsp", ".issuer", ".sctl")) or name.startswith("."):
                    continue
                full = os.path.join(path, name)
                if os.path.isfile(full):
                    out.append(full)
        else:
            out.append(path)
    return out


def _pem_blocks(data: bytes, kind: bytes) -> list[bytes]:
    """Every ``-----BEGIN KIND-----`` ... ``-----END KIND-----`` block of a PEM bundle."""
    pattern = re.compile(
        b"-----BEGIN " + re.escape(kind) + b"-----.*?-----END " + re.escape(kind) + b"-----", re.S
    )
    return [m.group(0) + b"\n" for m in pattern.finditer(data)]


class _LoadedCert:
    """One PEM bundle: certificate, its chain, its key, and the names it serves."""

    def __init__(self, path: str):
        data = _read(path, "certificate")
        certs = _pem_blocks(data, b"CERTIFICATE")
        if not certs:
            raise TLSConfigError(
                f"unable to load SSL certificate from PEM file '{path}': no certificate found"
            )
        key_pem = None
        for kind in (b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY"):
            found = _pem_blocks(data, kind)
            if found:
                key_pem = found[0]
                break
        if key_pem is None:
            key_path = path + ".key"  # HAProxy also looks for a separate .key file
            if os.path.exists(key_path):
                key_pem = _read(key_path, "key")
            else:
                raise TLSConfigError(f"unable to load SSL private key from PEM file '{path}'")
        try:
            self.cert = x509.load_pem_x509_certificate(certs[0])
            self.chain = [x509.load_pem_x509_certificate(c) for c in certs[1:]]
            self.key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as e:
            raise TLSConfigError(f"unable to load SSL certificate or key from PEM file '{path}': {e}") from e
        self.path = path
        self.names = certificate_names(self.cert)


def certificate_names(c: x509.Certificate) -> list[str]:
    """The DNS names a certificate serves: its subjectAltName DNS entries, else its CN."""
    try:
        san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [
            a.value.lower()
            for a in c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
            if isinstance(a.value, str)
        ]
    return names


def name_matches(pattern: str, name: str) -> bool:
    """Certificate name matching: exact, or ``*.example.com`` for one label."""
    if pattern == name:
        return True
    if pattern.startswith("*."):
        head, dot, rest = name.partition(".")
        return bool(dot) and bool(head) and rest == pattern[2:]
    return False


# --------------------------------------------------------------------------- TLS: server side

_PROTO_VERSIONS = {
    "SSLv3": getattr(SSL, "SSL3_VERSION", 0x300),
    "TLSv1.0": SSL.TLS1_VERSION,
    "TLSv1.1": SSL.TLS1_1_VERSION,
    "TLSv1.2": SSL.TLS1_2_VERSION,
    "TLSv1.3": SSL.TLS1_3_VERSION,
}


_NO_VERSION_OPTIONS = {
    "SSLv3": SSL.OP_NO_SSLv3,
    "TLSv1.0": SSL.OP_NO_TLSv1,
    "TLSv1.1": SSL.OP_NO_TLSv1_1,
    "TLSv1.2": SSL.OP_NO_TLSv1_2,
    "TLSv1.3": SSL.OP_NO_TLSv1_3,
}


def _base_context(tls: TLSOptions, method=SSL.TLS_SERVER_METHOD) -> SSL.Context:
    """A context with what binds and servers share: the versions (`tls_versions`:
    ssl-min-ver/ssl-max-ver/force-*/no-*, TLSv1.2 at least on binds), ciphers,
    ``no-tls-tickets`` and, on binds, the server's cipher order unless
    ``prefer-client-ciphers``."""
    bind = method == SSL.TLS_SERVER_METHOD
    ctx = SSL.Context(method)
    options = SSL.OP_NO_SSLv2 | SSL.OP_NO_SSLv3 | SSL.OP_NO_COMPRESSION
    if not tls.tls_tickets:
        options |= SSL.OP_NO_TICKET
    if bind and not tls.prefer_client_ciphers:
        options |= SSL.OP_CIPHER_SERVER_PREFERENCE
    versions = tls_versions(tls, bind)
    if not versions:
        raise TLSConfigError("all SSL/TLS versions are disabled")
    low, high = _PROTO_VERSIONS[versions[0]], _PROTO_VERSIONS[versions[-1]]
    for name, option in _NO_VERSION_OPTIONS.items():  # a hole (no-tlsv11 on a server)
        if low <= _PROTO_VERSIONS[name] <= high and name not in versions:
            options |= option
    ctx.set_options(options)
    try:
        ctx.set_min_proto_version(low)
        ctx.set_max_proto_version(high)
        if tls.ciphers:
            ctx.set_cipher_list(tls.ciphers.encode("ascii"))
        if tls.ciphersuites:
            ctx.set_tls13_ciphersuites(tls.ciphersuites.encode("ascii"))
    except SSL.Error as e:
        raise TLSConfigError(f"invalid cipher settings: {e}") from e
    return ctx


def _verify_mode(tls: TLSOptions, server_side: bool) -> int:
    verify = tls.verify
    if verify is None:
        # a bind asks for no client certificate unless told to, even with a ca-file
        # (haproxy's "none" default); a server line verifies when a CA is given (one
        # without CA or `verify none` is refused by validate unless ssl-server-verify none)
        verify = "none" if server_side or not tls.ca_file else "required"
    if verify == "none":
        return SSL.VERIFY_NONE
    if verify == "optional":
        return SSL.VERIFY_PEER
    return SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if server_side else 0)


def _accept_verified(conn, cert, errnum, depth, ok) -> bool:
    return bool(ok)


def _context_for_cert(tls: TLSOptions, loaded: _LoadedCert) -> SSL.Context:
    ctx = _base_context(tls)
    try:
        ctx.use_certificate(loaded.cert)
        for extra in loaded.chain:
            ctx.add_extra_chain_cert(extra)
        ctx.use_privatekey(loaded.key)
        ctx.check_privatekey()
    except SSL.Error as e:
        raise TLSConfigError(f"certificate and key of '{loaded.path}' do not match: {e}") from e
    if tls.ca_file:
        try:
            ctx.load_verify_locations(tls.ca_file)
        except SSL.Error as e:
            raise TLSConfigError(f"unable to load CA file '{tls.ca_file}': {e}") from e
    ctx.set_verify(_verify_mode(tls, server_side=True), _accept_verified)
    if tls.alpn:
        offered = [p.encode("ascii") for p in tls.alpn]

        def select(conn, client_protocols):
            for proto in offered:
                if proto in client_protocols:
                    return proto
            return SSL.NO_OVERLAPPING_PROTOCOLS

        ctx.set_alpn_select_callback(select)
    ctx.set_session_id(b"minilb")
    return ctx


@functools.lru_cache(maxsize=256)
def server_tls_context(tls: TLSOptions) -> SSL.Context:
    """The context of a TLS listener.  The first certificate is the default; with
    several, the client's SNI picks the one whose names match (exact names before
    wildcards), as HAProxy does with several ``crt``."""
    files = _crt_files(tls.crt)
    if not files:
        raise TLSConfigError("no certificate configured ('crt' is required with 'ssl' on a bind line)")
    loaded = [_LoadedCert(f) for f in files]
    contexts = [_context_for_cert(tls, c) for c in loaded]
    default = contexts[0]
    if len(contexts) > 1:
        exact: dict[str, SSL.Context] = {}
        wildcards: list[tuple[str, SSL.Context]] = []
        for cert, ctx in zip(loaded, contexts, strict=True):
            for name in cert.names:
                if name.startswith("*."):
                    wildcards.append((name, ctx))
                else:
                    exact.setdefault(name, ctx)
        default.set_tlsext_servername_callback(_sni_selector(exact, wildcards))
    return default


def _sni_selector(exact: dict[str, SSL.Context], wildcards: list[tuple[str, SSL.Context]]) -> Callable:
    def on_servername(conn: SSL.Connection) -> None:
        raw = conn.get_servername()
        if not raw:
            return
        name = raw.decode("ascii", "replace").lower().rstrip(".")
        ctx = exact.get(name)
        if ctx is None:
            for pattern, candidate in wildcards:
                if name_matches(pattern, name):
                    ctx = candidate
                    break
        if ctx is not None:
            conn.set_context(ctx)

    return on_servername


def select_context_for_name(tls: TLSOptions, name: str) -> SSL.Context:
    """The context a client asking for ``name`` by SNI gets (used by tests and the CLI)."""
    files = _crt_files(tls.crt)
    loaded = [_LoadedCert(f) for f in files]
    for cert in loaded:
        if name.lower() in cert.names:
            return _context_for_cert(tls, cert)
    for cert in loaded:
        if any(name_matches(p, name.lower()) for p in cert.names):
            return _context_for_cert(tls, cert)
    return _context_for_cert(tls, loaded[0])


@implementer(interfaces.IOpenSSLServerConnectionCreator)
class ServerContextFactory:
    """What TLSMemoryBIOFactory asks for a TLS connection on each accepted socket."""

    def __init__(self, tls: TLSOptions):
        self.tls = tls
        self._ctx = server_tls_context(tls)

    def serverConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        return SSL.Connection(self._ctx, None)


# --------------------------------------------------------------------------- TLS: client side


@functools.lru_cache(maxsize=1024)
def client_tls_context(tls: TLSOptions, hostname: str | None = None):
    """The connection creator of a TLS client (a ``server ... ssl`` line, a peer).

    ``verify required`` checks the chain against ``ca-file`` and, when a name is
    known (``verifyhost``, else the SNI ``hostname``), the certificate's name with
    service_identity.  ``verify none`` checks nothing.  ``hostname`` is sent as SNI.
    """
    client_cert = None
    if tls.crt:
        files = _crt_files(tls.crt)
        pem = _read(files[0], "certificate")
        try:
            client_cert = ssl.PrivateCertificate.loadPEM(pem)
        except Exception as e:
            raise TLSConfigError(f"unable to load client certificate '{files[0]}': {e}") from e
    verify_chain = _verify_mode(tls, server_side=False) != SSL.VERIFY_NONE
    ctx = _client_context(tls, client_cert, verify_chain)
    verify_name = tls.verifyhost or hostname
    if verify_chain and verify_name:
        # Twisted's creator sends the name as SNI and checks the certificate against it
        return ClientTLSOptions(lambda _tls_protocol: SSL.Connection(ctx, None), verify_name)
    return _UnverifiedOrChainOnlyCreator(ctx, hostname)


def _client_context(tls: TLSOptions, client_cert, verify_chain: bool) -> SSL.Context:
    """The context of a TLS client: `_base_context` (versions, ciphers, tickets as on
    the server line) with the client certificate, the trusted CAs and ALPN."""
    ctx = _base_context(tls, SSL.TLS_CLIENT_METHOD)
    if client_cert is not None:
        ctx.use_certificate(client_cert.original.to_cryptography())
        ctx.use_privatekey(client_cert.privateKey.original.to_cryptography_key())
    if verify_chain:
        if tls.ca_file:
            if not _pem_blocks(_read(tls.ca_file, "CA"), b"CERTIFICATE"):
                raise TLSConfigError(f"unable to load CA file '{tls.ca_file}': no certificate found")
            try:
                ctx.load_verify_locations(tls.ca_file)
            except SSL.Error as e:
                raise TLSConfigError(f"unable to load CA file '{tls.ca_file}': {e}") from e
        else:
            ctx.set_default_verify_paths()
        ctx.set_verify(SSL.VERIFY_PEER, _accept_verified)
    else:
        ctx.set_verify(SSL.VERIFY_NONE, _accept_verified)
    if tls.alpn:
        ctx.set_alpn_protos([p.encode("ascii") for p in tls.alpn])
    return ctx


@implementer(interfaces.IOpenSSLClientConnectionCreator)
class _UnverifiedOrChainOnlyCreator:
    """A client connection creator that sends SNI and checks either nothing
    (``verify none``) or the chain only (``verify required`` without a name)."""

    def __init__(self, ctx: SSL.Context, hostname: str | None):
        self._ctx = ctx
        self._sni = hostname.encode("idna") if hostname and not _looks_like_ip(hostname) else None

    def clientConnectionForTLS(self, tlsProtocol):
        conn = SSL.Connection(self._ctx, None)
        if self._sni:
            conn.set_tlsext_host_name(self._sni)
        conn.set_app_data(tlsProtocol)
        return conn


def _looks_like_ip(host: str) -> bool:
    return _is_ip(host, socket.AF_INET) or _is_ip(host.strip("[]"), socket.AF_INET6)
