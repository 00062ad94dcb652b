"""Owns the frozen configuration values: what a loaded haproxy.cfg *says*.

Every object knows where it came from (`origin`).  Objects *name* each other
(a frontend's ``default_backend`` is a string); `config.validate` resolves every
name once and reports all problems together.  Rule lines (``acl``,
``http-request``, ``use_backend`` conditions...) are kept as their words here and
compiled by `minilb.rules`, so that the configuration model does not depend on the
rule engine.

Conventions: times are integer milliseconds (``None`` = not set), sizes are
integers, collections are tuples, and ``kind``/``mode`` strings use HAProxy's
own words.
"""

from __future__ import annotations

import attrs

from minilb.errors import BUILTIN, SourceLocation

frozen = attrs.frozen


# --------------------------------------------------------------------------- addresses


@frozen
class Address:
    """A parsed HAProxy address (``bind``, ``server``, ``peer``, ``stats socket``...).

    family: ``ipv4`` | ``ipv6`` | ``unix`` | ``abns`` | ``fd``.  ``host`` is the
    literal text for IP families ("" or "*" means any address, a host name is
    kept as written and resolved by the adapter), ``port`` is None when absent.
    """

    family: str
    host: str = ""
    port: int | None = None
    path: str = ""
    fd: int | None = None
    text: str = ""

    @property
    def is_inet(self) -> bool:
        return self.family in ("ipv4", "ipv6")

    def __str__(self) -> str:
        return self.text or f"{self.host}:{self.port}"


# --------------------------------------------------------------------------- TLS


@frozen
class TLSOptions:
    """TLS settings of a bind (server side) or of a server line (client side)."""

    enabled: bool = False
    crt: tuple[str, ...] = ()  # PEM files: certificate + key (bind), client certificate (server)
    ca_file: str | None = None
    verify: str | None = None  # "none" | "optional" | "required"; None = HAProxy default
    verifyhost: str | None = None
    sni: str | None = None  # sample expression text on server lines
    alpn: tuple[str, ...] = ()
    ciphers: str | None = None
    ciphersuites: str | None = None
    ssl_min_ver: str | None = None
    ssl_max_ver: str | None = None
    # from `no-sslv3`, `no-tlsv10`...: versions refused ("SSLv3", "TLSv1.0", ... "TLSv1.3")
    no_versions: tuple[str, ...] = ()
    tls_tickets: bool = True  # False with `no-tls-tickets`
    prefer_client_ciphers: bool = False  # binds only


# --------------------------------------------------------------------------- listeners and servers


@frozen
class Bind:
    """One ``bind`` line (or the listener made by a local ``peer`` line)."""

    origin: SourceLocation
    address: Address
    tls: TLSOptions = TLSOptions()
    name: str | None = None
    accept_proxy: bool = False
    v4v6: bool = False
    v6only: bool = False
    maxconn: int | None = None
    # unix socket options (mode/user/group/level) for stats sockets and unix binds
    mode: int | None = None
    level: str | None = None


@frozen
class Server:
    """One ``server`` line, with the ``default-server`` options already applied."""

    origin: SourceLocation
    name: str
    address: Address | None  # None for a peers-section local `server NAME` without address
    weight: int = 1
    backup: bool = False
    disabled: bool = False
    maxconn: int | None = None
    maxqueue: int | None = None
    check: bool = False
    inter: int = 2000
    fastinter: int | None = None
    downinter: int | None = None
    rise: int = 2
    fall: int = 3
    check_port: int | None = None
    check_addr: str | None = None
    tls: TLSOptions = TLSOptions()
    check_ssl: bool = False
    send_proxy: bool = False
    cookie: str | None = None
    id: int | None = None  # numeric id (`id N`), assigned by validate when absent
    observe: str | None = None


@frozen
class ServerDefaults:
    """The options of a ``default-server`` line, applied to later ``server`` lines."""

    origin: SourceLocation = BUILTIN
    words: tuple[str, ...] = ()


# --------------------------------------------------------------------------- proxy settings


@frozen
class Timeouts:
    connect: int | None = None
    client: int | None = None
    server: int | None = None
    http_request: int | None = None
    http_keep_alive: int | None = None
    queue: int | None = None
    tunnel: int | None = None
    check: int | None = None
    client_fin: int | None = None
    server_fin: int | None = None
    tarpit: int | None = None


@frozen
class Balance:
    """``balance ALGO [ARG]``: roundrobin, static-rr, leastconn, first, source, uri,
    url_param, hdr, random.  ``arg`` is the url_param/hdr name; ``options`` holds
    extra words (``len``, ``depth``, ``whole``, ``check_post``, ``use_domain_only``)."""

    algorithm: str = "roundrobin"
    arg: str | None = None
    options: tuple[str, ...] = ()
    origin: SourceLocation = BUILTIN


@frozen
class ForwardFor:
    """``option forwardfor [except NET] [header NAME] [if-none]``."""

    except_net: str | None = None
    header: str = "X-Forwarded-For"
    if_none: bool = False


@frozen
class HttpCheck:
    """``option httpchk [METHOD] [URI] [VERSION]`` plus ``http-check`` lines."""

    method: str = "OPTIONS"
    uri: str = "/"
    version: str = "HTTP/1.0"
    host: str | None = None
    expect: tuple[str, ...] = ()  # e.g. ("status", "200") or ("rstatus", "^2")
    headers: tuple[tuple[str, str], ...] = ()


@frozen
class LogTarget:
    """``log ADDRESS [len N] [format F] FACILITY [LEVEL [MINLEVEL]]`` or ``log global``."""

    origin: SourceLocation
    target: str  # "global", "stdout", "stderr", an address text
    facility: str = "local0"
    level: str | None = None
    minlevel: str | None = None
    format: str | None = None


@frozen
class ErrorFile:
    """``errorfile CODE FILE``: the file's raw bytes (a complete HTTP response)."""

    origin: SourceLocation
    status: int
    path: str
    content: bytes


# --------------------------------------------------------------------------- rules, kept as words


@frozen
class AclLine:
    """``acl NAME CRITERION [FLAGS] [OPERATOR] [VALUES...]``; several lines of one
    name are OR'ed by the rule compiler."""

    origin: SourceLocation
    name: str
    words: tuple[str, ...]  # everything after the name


@frozen
class RuleLine:
    """A rule line kept as words: ``http-request deny if { ... }``.

    keyword: ``http-request`` | ``http-response`` | ``http-after-response`` |
    ``tcp-request connection`` | ``tcp-request content`` | ``tcp-response content`` |
    ``stick on`` | ``stick match`` | ``stick store-request`` | ``stick store-response``
    | ``use_backend`` | ``use-server`` | ``redirect``.
    words: the words after the keyword (action, arguments and condition).
    """

    origin: SourceLocation
    keyword: str
    words: tuple[str, ...]


@frozen
class UseBackend:
    """``use_backend NAME [if|unless COND]``; ``cond`` is the words from if/unless on."""

    origin: SourceLocation
    backend: str
    cond: tuple[str, ...] = ()


# --------------------------------------------------------------------------- stick tables


@frozen
class StoreItem:
    """One ``store`` data type: ``http_req_rate(10s)`` → name=http_req_rate, period=10000;
    ``gpc(3)`` → count=3; ``gpc_rate(2,10s)`` → count=2, period=10000."""

    name: str
    period: int | None = None
    count: int | None = None


@frozen
class TableSpec:
    """A ``stick-table`` line in a proxy, or a ``table`` line in a peers section.

    name: how the rest of the config refers to it (the proxy name, or
    ``SECTION/NAME`` for a peers-section table).  wire_name: the name on the peers
    wire (proxy name, or ``/NAME``).  key_len is HAProxy's key storage size, which
    is also what a peers DEFINE announces: see `minilb.stick.datatypes.key_size`
    (string ``len 32`` → 33, string default → 32, binary ``len N`` → N, ip 4, ipv6 16,
    integer 4).
    """

    origin: SourceLocation
    name: str
    wire_name: str
    key_type: str  # ip | ipv6 | integer | string | binary
    key_len: int
    size: int
    expire: int | None = None
    nopurge: bool = False
    peers: str | None = None
    store: tuple[StoreItem, ...] = ()
    srvkey: str = "name"  # "name" | "addr"


# --------------------------------------------------------------------------- sections


@frozen
class Proxy:
    """A ``frontend``, ``backend``, ``listen`` or ``defaults`` section.

    ``kind`` tells which; a listen section is both a frontend and a backend.
    """

    origin: SourceLocation
    name: str
    kind: str  # frontend | backend | listen | defaults
    mode: str = "tcp"  # HAProxy's default mode is tcp
    disabled: bool = False
    id: int | None = None
    from_defaults: str | None = None  # `defaults NAME` this section inherits from
    binds: tuple[Bind, ...] = ()
    servers: tuple[Server, ...] = ()
    balance: Balance = Balance()
    hash_type: tuple[str, ...] = ()
    timeouts: Timeouts = Timeouts()
    retries: int = 3
    redispatch: bool = False
    maxconn: int | None = None
    fullconn: int | None = None
    # HTTP connection mode: keep-alive (default), server-close, close (httpclose)
    http_connection_mode: str = "keep-alive"
    http_reuse: str = "safe"
    forwardfor: ForwardFor | None = None
    httpchk: HttpCheck | None = None
    log_targets: tuple[LogTarget, ...] = ()
    log_format: str | None = None
    httplog: bool = False
    tcplog: bool = False
    dontlognull: bool = False
    log_separate_errors: bool = False
    abortonclose: bool = False
    default_backend: str | None = None
    default_backend_origin: SourceLocation | None = None
    use_backends: tuple[UseBackend, ...] = ()
    acls: tuple[AclLine, ...] = ()
    rules: tuple[RuleLine, ...] = ()  # every rule line in file order; filter by keyword
    stick_table: TableSpec | None = None
    errorfiles: tuple[ErrorFile, ...] = ()
    monitor_uri: str | None = None
    # other `option` words that were set (True) or negated with `no option` (False)
    options: tuple[tuple[str, bool], ...] = ()
    # added by the config work:
    tcp_inspect_delay: int | None = None  # `tcp-request inspect-delay`
    tcp_response_inspect_delay: int | None = None  # `tcp-response inspect-delay`
    description: str | None = None
    default_server: ServerDefaults = ServerDefaults()  # the last `default-server` line in effect
    httpchk_origin: SourceLocation | None = None

    @property
    def is_frontend(self) -> bool:
        return self.kind in ("frontend", "listen")

    @property
    def is_backend(self) -> bool:
        return self.kind in ("backend", "listen")

    def rules_for(self, keyword: str) -> tuple[RuleLine, ...]:
        return tuple(r for r in self.rules if r.keyword == keyword)

    def option(self, name: str, default: bool = False) -> bool:
        for opt, value in reversed(self.options):
            if opt == name:
                return value
        return default


@frozen
class StatsSocket:
    """``stats socket ADDRESS [mode M] [level L] ...`` in global."""

    origin: SourceLocation
    address: Address
    mode: int | None = None
    level: str = "operator"  # HAProxy 2.6 default (configuration.txt 5.1, "level")
    expose_fd_listeners: bool = False


@frozen
class Global:
    origin: SourceLocation = BUILTIN
    daemon: bool = False
    master_worker: bool = False
    pidfile: str | None = None
    nbthread: int = 1
    maxconn: int | None = None
    localpeer: str | None = None
    localpeer_origin: SourceLocation | None = None
    hard_stop_after: int | None = None
    stats_sockets: tuple[StatsSocket, ...] = ()
    master_cli: tuple[Address, ...] = ()
    log_targets: tuple[LogTarget, ...] = ()
    tune_bufsize: int = 16384
    tune_maxrewrite: int = 1024
    tune_http_maxhdr: int = 101
    tune_peers_max_updates_at_once: int = 200
    ssl_default_bind_ciphers: str | None = None
    ssl_default_server_ciphers: str | None = None
    ssl_default_bind_options: tuple[str, ...] = ()
    ssl_default_server_options: tuple[str, ...] = ()
    quiet: bool = False
    setenv: tuple[tuple[str, str], ...] = ()
    # added by the config work:
    ca_base: str | None = None
    crt_base: str | None = None
    stats_timeout: int | None = None  # `stats timeout` (ms)
    stats_maxconn: int | None = None  # `stats maxconn`
    zero_warning: bool = False
    ssl_default_bind_ciphersuites: str | None = None
    ssl_default_server_ciphersuites: str | None = None
    ssl_server_verify: str = "required"  # `ssl-server-verify none|required`


@frozen
class Peer:
    """A peer of a peers section: a ``peer NAME ADDR`` line, or a ``server NAME [ADDR]``
    line in the bind/server syntax.  ``address`` is None for a local ``server`` line
    without address (the section's ``bind`` gives the listener)."""

    origin: SourceLocation
    name: str
    address: Address | None
    tls: TLSOptions = TLSOptions()
    syntax: str = "peer"  # "peer" | "server"


@frozen
class PeersSection:
    origin: SourceLocation
    name: str
    peers: tuple[Peer, ...] = ()
    bind: Bind | None = None
    default_bind: tuple[str, ...] = ()
    default_server: tuple[str, ...] = ()
    tables: tuple[TableSpec, ...] = ()
    disabled: bool = False
    # added by the config work:
    local_peer: str | None = None  # the local peer's name when this section declares it


@frozen
class Config:
    """A whole loaded configuration (one or several files, in order)."""

    files: tuple[str, ...] = ()
    global_: Global = Global()
    defaults: tuple[Proxy, ...] = ()
    proxies: tuple[Proxy, ...] = ()  # frontends, backends and listens in file order
    peers: tuple[PeersSection, ...] = ()
    localpeer: str = ""  # the effective local peer name (-L, localpeer, or hostname)
    # tables of peers sections removed for lack of the local peer (HAProxy keeps them
    # usable locally, without replication): ``peers`` is None on each
    local_tables: tuple[TableSpec, ...] = ()

    @property
    def frontends(self) -> tuple[Proxy, ...]:
        return tuple(p for p in self.proxies if p.is_frontend)

    @property
    def backends(self) -> tuple[Proxy, ...]:
        return tuple(p for p in self.proxies if p.is_backend)

    def proxy(self, name: str) -> Proxy | None:
        for p in self.proxies:
            if p.name == name:
                return p
        return None

    def peers_section(self, name: str) -> PeersSection | None:
        for s in self.peers:
            if s.name == name:
                return s
        return None

    def tables(self) -> tuple[TableSpec, ...]:
        """Every stick table: proxies' first, then peers sections' tables, then the
        tables of removed peers sections (`local_tables`)."""
        out = [p.stick_table for p in self.proxies if p.stick_table is not None]
        for s in self.peers:
            out.extend(s.tables)
        out.extend(self.local_tables)
        return tuple(out)
