"""Owns ``peers`` sections (configuration.txt 3.5).

Two syntaxes, as HAProxy 2.6: ``peer NAME [ADDR] [server options]`` lines (the
line naming the local peer also gives its listener), or ``bind ADDR [bind
options]`` + ``server NAME [ADDR] [server options]`` (the local peer's ``server``
line has no address), with ``default-bind`` / ``default-server``.  ``table NAME
type ...`` declares a table referenced as ``SECTION/NAME`` and named ``/NAME`` on
the wire.  Mixing ``peer`` and ``bind`` is an error, as in HAProxy.

The local peer name must be known while parsing (HAProxy uses ``-L``, else the
global ``localpeer``, else the host name, at this point too); whether the section
holds it is checked by `config.validate`.
"""

from __future__ import annotations

from minilb.config.addresses import parse_address
from minilb.config.common import dispatch, no_more_args
from minilb.config.context import ParseContext, Problem
from minilb.config.lexer import Line
from minilb.config.model import Address, Bind, Peer, PeersSection, TLSOptions
from minilb.config.options import build_tls, copy_fields, parse_bind_options, parse_server_options
from minilb.config.sticktable import parse_table


class PeersBuilder:
    def __init__(self, name: str, origin, localpeer: str):
        self.name = name
        self.origin = origin
        self.localpeer = localpeer
        self.peers: list[Peer] = []
        self.peer_origins: dict[str, object] = {}
        self.bind: Bind | None = None
        self.default_bind: tuple[str, ...] = ()
        self.default_server: tuple[str, ...] = ()
        self.server_defaults: dict = {"tls": {}}
        self.bind_defaults: dict = {"tls": {}}
        self.tables: list = []
        self.disabled = False
        self.used_peer_syntax: object = None
        self.used_bind_syntax: object = None
        self.local_server_tls: tuple[object, TLSOptions] | None = None

    def build(self) -> PeersSection:
        local = self.localpeer if self.localpeer in self.peer_origins else None
        return PeersSection(
            origin=self.origin,
            name=self.name,
            peers=tuple(self.peers),
            bind=self.bind,
            default_bind=self.default_bind,
            default_server=self.default_server,
            tables=tuple(self.tables),
            disabled=self.disabled,
            local_peer=local,
        )


def _add_peer(
    b: PeersBuilder, line: Line, name: str, address, tls: TLSOptions, syntax: str, ctx: ParseContext
) -> None:
    previous = b.peer_origins.get(name)
    if previous is not None:
        if name == b.localpeer:
            raise Problem(f"'{syntax} {name}' : local peer name already referenced at {previous}.")
        # HAProxy 2.6 accepts this silently; the second line could never be reached.
        ctx.warn(
            line.location, f"'{syntax} {name}' : peer name already referenced at {previous}, line ignored."
        )
        return
    b.peer_origins[name] = line.location
    b.peers.append(Peer(origin=line.location, name=name, address=address, tls=tls, syntax=syntax))


def _address_and_options(
    b: PeersBuilder, line: Line, args, where: str, ctx: ParseContext, address_allowed: bool
) -> tuple[Address | None, TLSOptions]:
    """The optional address after a peer's name, then its server options."""
    opts = args[1:]
    address = None
    if opts and not _looks_like_option(opts[0]):
        if not address_allowed:
            raise Problem(
                f"{where} : unknown keyword '{opts[0]}'. Hint: no address was expected for this server."
            )
        try:
            address = parse_address(opts[0], ctx.environ)
        except ValueError as exc:
            raise Problem(f"{where} : {exc}") from None
        opts = opts[1:]
    values = copy_fields(b.server_defaults)
    try:
        parse_server_options(
            opts,
            values,
            lambda m: ctx.warn(line.location, f"{where} : {m}"),
            args[0],
            ctx.crt_base,
            ctx.ca_base,
        )
    except ValueError as exc:
        raise Problem(f"{where} : {exc}") from None
    return address, build_tls(values.get("tls", {}))


def _peer(b: PeersBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if b.used_bind_syntax is not None:
        raise Problem('mixing "peer" and "bind" line is forbidden')
    if not args:
        raise Problem("'peer' expects <name> and <addr>[:<port>] as arguments.")
    b.used_peer_syntax = line.location
    name = args[0]
    address, tls = _address_and_options(b, line, args, f"'peer {name}'", ctx, address_allowed=True)
    _add_peer(b, line, name, address, tls, "peer", ctx)
    if name == b.localpeer and address is not None:
        b.bind = Bind(origin=line.location, address=address, tls=tls, name=name)


def _bind(b: PeersBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if b.used_peer_syntax is not None:
        raise Problem('mixing "peer" and "bind" line is forbidden')
    if not args:
        raise Problem("'bind' expects {<path>|[addr1]:port1[-end1]}{,[addr]:port[-end]}... as arguments.")
    if b.bind is not None:
        raise Problem(
            f"'bind' : only one 'bind' line is allowed in a peers section (first one at {b.bind.origin})."
        )
    b.used_bind_syntax = line.location
    values = copy_fields(b.bind_defaults)
    try:
        address = parse_address(args[0], ctx.environ)
        parse_bind_options(args[1:], values, lambda m: ctx.warn(line.location, m), ctx.crt_base, ctx.ca_base)
    except ValueError as exc:
        raise Problem(f"'bind {args[0]}' in section 'peers' : {exc}") from None
    tls = build_tls(values.pop("tls", {}))
    values.pop("expose_fd_listeners", None)
    b.bind = Bind(origin=line.location, address=address, tls=tls, **values)


def _server(b: PeersBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if not args:
        raise Problem("'server' expects <name> and [<addr>[:<port>]] as arguments.")
    name = args[0]
    local = name == b.localpeer
    where = f"'server {b.name}/{name}'"
    address, tls = _address_and_options(b, line, args, where, ctx, address_allowed=not local)
    _add_peer(b, line, name, address, tls, "server", ctx)
    if local and tls.enabled:
        b.local_server_tls = (line.location, tls)


def _default_server(b: PeersBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    values = copy_fields(b.server_defaults)
    try:
        parse_server_options(args, values, lambda m: ctx.warn(line.location, m), "default-server")
    except ValueError as exc:
        raise Problem(f"'default-server' : {exc}") from None
    b.server_defaults = values
    b.default_server = (*b.default_server, *args)


def _default_bind(b: PeersBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    values = copy_fields(b.bind_defaults)
    try:
        parse_bind_options(args, values, lambda m: ctx.warn(line.location, m), ctx.crt_base, ctx.ca_base)
    except ValueError as exc:
        raise Problem(f"'default-bind' : {exc}") from None
    b.bind_defaults = values
    b.default_bind = (*b.default_bind, *args)


def _table(b: PeersBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if not args:
        raise Problem("'table' expects a table name.")
    name = args[0]
    full = f"{b.name}/{name}"
    for t in b.tables:
        if t.name == full:
            raise Problem(f"'table {name}' : table already declared at {t.origin}.")
    try:
        spec = parse_table(
            args[1:],
            origin=line.location,
            name=full,
            wire_name=f"/{name}",
            warn=lambda m: ctx.warn(line.location, m),
            allow_peers=False,
            peers=b.name,
        )
    except ValueError as exc:
        raise Problem(str(exc)) from None
    b.tables.append(spec)


def _disabled(value: bool):
    def handler(b: PeersBuilder, line: Line, args, prefix, ctx) -> None:
        no_more_args(line.words[0], args)
        b.disabled = value

    return handler


def _looks_like_option(word: str) -> bool:
    from minilb.config.options import server_option_names

    return word in server_option_names()


HANDLERS = {
    "peer": _peer,
    "bind": _bind,
    "server": _server,
    "default-server": _default_server,
    "default-bind": _default_bind,
    "table": _table,
    "disabled": _disabled(True),
    "enabled": _disabled(False),
}


def handle_peers_line(b: PeersBuilder, line: Line, ctx: ParseContext) -> None:
    dispatch("peers", f"peers '{b.name}'", line, HANDLERS, ctx, b)
