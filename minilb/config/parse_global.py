"""Owns the ``global`` section: process settings, the stats socket, tuning values,
TLS defaults and ``setenv``-style environment changes (which affect the lines
that follow, as in HAProxy).

`GlobalBuilder` collects `model.Global` field values; `handle_global_line` parses
one line of a global section through the keyword registry.
"""

from __future__ import annotations

import attrs

from minilb.config.addresses import parse_address
from minilb.config.common import dispatch, no_more_args, parse_int, parse_log, parse_ms
from minilb.config.context import ParseContext, Problem
from minilb.config.lexer import Line
from minilb.config.model import Global, StatsSocket
from minilb.config.options import parse_bind_options, parse_tls_default_options


class GlobalBuilder:
    def __init__(self) -> None:
        self.fields: dict = {f.name: getattr(Global(), f.name) for f in attrs.fields(Global)}
        self.started = False

    def build(self) -> Global:
        return Global(**self.fields)


def _flag(field: str):
    def handler(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
        keyword = line.words[0]
        if field == "master_worker" and args[:1] == ("no-exit-on-failure",):
            args = args[1:]
        no_more_args(keyword, args)
        b.fields[field] = True

    return handler


def _string(field: str):
    def handler(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
        keyword = line.words[0]
        if not args:
            raise Problem(f"'{keyword}' expects an argument.")
        no_more_args(keyword, args, 1)
        b.fields[field] = args[0]
        if field == "crt_base":
            ctx.crt_base = args[0]
        elif field == "ca_base":
            ctx.ca_base = args[0]

    return handler


def _integer(field: str, low: int = 0, high: int = 2**31 - 1):
    def handler(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
        keyword = " ".join(line.words[: len(line.words) - len(args)])
        no_more_args(keyword, args, 1)
        b.fields[field] = parse_int(args[0] if args else None, keyword, low, high)
        if field == "tune_bufsize":
            ctx.tune_bufsize = b.fields[field]

    return handler


def _tls_default_options(field: str):
    """Checked as haproxy does; several lines add up (validate merges the words into
    each TLS bind/server, see `options.with_tls_defaults`)."""

    def handler(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
        keyword = line.words[0]
        if not args:
            raise Problem(f"global statement '{keyword}' expects an option as an argument.")
        try:
            parse_tls_default_options(args, keyword)
        except ValueError as exc:
            raise Problem(str(exc)) from None
        b.fields[field] = (*b.fields.get(field, ()), *args)

    return handler


def _nbthread(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    no_more_args("nbthread", args, 1)
    value = parse_int(args[0] if args else None, "nbthread", -(2**31))
    if not 1 <= value <= 64:
        raise Problem(f"'nbthread' value must be between 1 and 64 (was {value})")
    b.fields["nbthread"] = value


def _localpeer(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if len(args) != 1:
        raise Problem("'localpeer' expects exactly one argument (the local peer name).")
    if ctx.cli_localpeer is not None:
        ctx.warn(
            line.location,
            "'localpeer' ignored since it is already set by using the '-L' command line argument.",
        )
        return
    if ctx.seen_peers_section:
        ctx.warn(line.location, "'localpeer' ignored since it is used after 'peers' section.")
        return
    b.fields["localpeer"] = args[0]
    ctx.environ["HAPROXY_LOCALPEER"] = args[0]
    b.fields["localpeer_origin"] = line.location


def _hard_stop_after(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    no_more_args("hard-stop-after", args, 1)
    b.fields["hard_stop_after"] = parse_ms(
        args[0] if args else None,
        "hard-stop-after",
        bad="unexpected character '{c}' in argument to <{kw}>.",
    )


def _stats_socket(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if not args:
        raise Problem(
            "'stats socket' requires a path or an address (e.g. /run/haproxy.sock or ipv4@127.0.0.1:9999)."
        )
    try:
        address = parse_address(args[0], ctx.environ)
    except ValueError as exc:
        raise Problem(f"'stats socket' : {exc}") from None
    opts: dict = {}
    try:
        parse_bind_options(args[1:], opts, lambda msg: ctx.warn(line.location, msg))
    except ValueError as exc:
        raise Problem(f"'stats socket' : {exc}") from None
    socket = StatsSocket(
        origin=line.location,
        address=address,
        mode=opts.get("mode"),
        level=opts.get("level", "operator"),
        expose_fd_listeners=opts.get("expose_fd_listeners", False),
    )
    b.fields["stats_sockets"] = (*b.fields["stats_sockets"], socket)


def _stats_timeout(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    no_more_args("stats timeout", args, 1)
    b.fields["stats_timeout"] = parse_ms(args[0] if args else None, "stats timeout")


def _log(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if prefix == "no":
        b.fields["log_targets"] = ()
        return
    target = parse_log(line, args, allow_global=False)
    b.fields["log_targets"] = (*b.fields["log_targets"], target)


def _ssl_server_verify(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if len(args) != 1 or args[0] not in ("none", "required"):
        raise Problem("'ssl-server-verify' expects 'none' or 'required' as argument.")
    b.fields["ssl_server_verify"] = args[0]


def _setenv(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    keyword = line.words[0]
    if len(args) != 2:
        raise Problem(f"'{keyword}' expects exactly 2 arguments (name and value).")
    name, value = args
    if keyword == "presetenv" and name in ctx.environ:
        return
    ctx.environ[name] = value
    b.fields["setenv"] = (*b.fields["setenv"], (name, value))


def _unsetenv(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if not args:
        raise Problem("'unsetenv' expects at least one variable name.")
    for name in args:
        ctx.environ.pop(name, None)


def _resetenv(b: GlobalBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    keep = set(args)
    for name in list(ctx.environ):
        if name not in keep:
            del ctx.environ[name]


HANDLERS = {
    "daemon": _flag("daemon"),
    "master-worker": _flag("master_worker"),
    "quiet": _flag("quiet"),
    "zero-warning": _flag("zero_warning"),
    "pidfile": _string("pidfile"),
    "ca-base": _string("ca_base"),
    "crt-base": _string("crt_base"),
    "nbthread": _nbthread,
    "maxconn": _integer("maxconn", 1),
    "localpeer": _localpeer,
    "hard-stop-after": _hard_stop_after,
    "stats socket": _stats_socket,
    "stats timeout": _stats_timeout,
    "stats maxconn": _integer("stats_maxconn", 1),
    "log": _log,
    "tune.bufsize": _integer("tune_bufsize", 1024),
    "tune.maxrewrite": _integer("tune_maxrewrite", 0),
    "tune.http.maxhdr": _integer("tune_http_maxhdr", 1, 32767),
    "tune.peers.max-updates-at-once": _integer("tune_peers_max_updates_at_once", 1),
    "ssl-default-bind-ciphers": _string("ssl_default_bind_ciphers"),
    "ssl-default-bind-ciphersuites": _string("ssl_default_bind_ciphersuites"),
    "ssl-default-server-ciphers": _string("ssl_default_server_ciphers"),
    "ssl-default-server-ciphersuites": _string("ssl_default_server_ciphersuites"),
    "ssl-default-bind-options": _tls_default_options("ssl_default_bind_options"),
    "ssl-default-server-options": _tls_default_options("ssl_default_server_options"),
    "ssl-server-verify": _ssl_server_verify,
    "setenv": _setenv,
    "presetenv": _setenv,
    "unsetenv": _unsetenv,
    "resetenv": _resetenv,
}


def handle_global_line(b: GlobalBuilder, line: Line, ctx: ParseContext) -> None:
    dispatch("global", "global section", line, HANDLERS, ctx, b)
