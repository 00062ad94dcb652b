"""Owns the ``defaults``, ``frontend``, ``backend`` and ``listen`` sections.

`ProxyBuilder` starts from the defaults section in effect (HAProxy copies the
defaults into each following proxy: mode, timeouts, options, balance, logs,
errorfiles, default-server...) and collects the lines of one proxy section;
`ProxyBuilder.build` freezes it into a `model.Proxy`.  Names (backends, tables,
peers sections) are kept as written and resolved by `config.validate`.
"""

from __future__ import annotations

import ipaddress
import os
import re

import attrs

from minilb.config.addresses import parse_address
from minilb.config.common import dispatch, no_more_args, parse_int, parse_log, parse_ms
from minilb.config.context import ParseContext, Problem
from minilb.config.keywords import Keyword
from minilb.config.lexer import Line
from minilb.config.model import (
    AclLine,
    Balance,
    Bind,
    ErrorFile,
    ForwardFor,
    HttpCheck,
    Proxy,
    RuleLine,
    Server,
    ServerDefaults,
    Timeouts,
    UseBackend,
)
from minilb.config.options import build_tls, copy_fields, parse_bind_options, parse_server_options
from minilb.config.sticktable import parse_table

#: Status codes `errorfile` accepts in HAProxy 2.6.
ERRORFILE_CODES = (200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504)
#: Largest errorfile read (HAProxy needs it to fit in a buffer; tune.bufsize bounds it further).
MAX_ERRORFILE = 1 << 20

# Proxy fields that a defaults section hands to the sections that follow it.
_NOT_INHERITED = (
    "origin",
    "name",
    "kind",
    "binds",
    "servers",
    "use_backends",
    "stick_table",
    "id",
    "from_defaults",
)


class ProxyBuilder:
    def __init__(
        self, kind: str, name: str, origin, defaults: Proxy | None, from_name: str | None, ctx: ParseContext
    ):
        self.kind = kind
        self.name = name
        self.origin = origin
        self.fields: dict = {}
        if defaults is not None:
            for f in attrs.fields(Proxy):
                if f.name not in _NOT_INHERITED:
                    self.fields[f.name] = getattr(defaults, f.name)
        self.fields["from_defaults"] = from_name
        self.binds: list[Bind] = []
        self.servers: list[Server] = []
        self.server_origins: dict[str, object] = {}
        self.use_backends: list[UseBackend] = []
        self.acls = list(self.fields.pop("acls", ()))
        self.rules = list(self.fields.pop("rules", ()))
        self.errorfiles = list(self.fields.pop("errorfiles", ()))
        self.log_targets = list(self.fields.pop("log_targets", ()))
        self.options = list(self.fields.pop("options", ()))
        self.timeouts = attrs.asdict(self.fields.pop("timeouts", Timeouts()), recurse=False)
        self.check = self.fields.pop("httpchk", None)
        self.check_enabled = self.check is not None
        if self.check is None:
            self.check = HttpCheck()
        self.default_server: ServerDefaults = self.fields.pop("default_server", ServerDefaults())
        self.server_defaults: dict = {"tls": {}}
        if self.default_server.words:
            # already checked (and warned about) where the defaults section declared them
            parse_server_options(
                self.default_server.words,
                self.server_defaults,
                lambda m: None,
                "default-server",
                ctx.crt_base,
                ctx.ca_base,
            )
        self.stick_table = None
        self.check_rules_origin = None  # first `http-check` line of this section
        self.ctx = ctx

    @property
    def label(self) -> str:
        return f"{self.kind} '{self.name}'" if self.name else f"{self.kind} section"

    def build(self) -> Proxy:
        if self.check_rules_origin is not None and not self.check_enabled and self.kind != "defaults":
            self.ctx.warn(
                self.origin,
                f"{self.kind} '{self.name}' uses http-check rules without 'option httpchk', so the rules are ignored.",
            )
        fields = dict(self.fields)
        fields.update(
            origin=self.origin,
            name=self.name,
            kind=self.kind,
            binds=tuple(self.binds),
            servers=tuple(self.servers),
            use_backends=tuple(self.use_backends),
            acls=tuple(self.acls),
            rules=tuple(self.rules),
            errorfiles=tuple(self.errorfiles),
            log_targets=tuple(self.log_targets),
            options=tuple(self.options),
            timeouts=Timeouts(**self.timeouts),
            httpchk=self.check if self.check_enabled else None,
            default_server=self.default_server,
            stick_table=self.stick_table,
        )
        return Proxy(**fields)


# --------------------------------------------------------------------------- handlers


def _mode(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
    if not args or args[0] not in ("http", "tcp", "log", "health"):
        raise Problem(f"unknown proxy mode '{args[0] if args else ''}'.")
    if args[0] in ("log", "health"):
        raise Problem(f"mode '{args[0]}' is not supported by minilb.")
    no_more_args("mode", args, 1)
    b.fields["mode"] = args[0]


def _bind(b: ProxyBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if not args or not args[0]:
        raise Problem("'bind' expects {<path>|[addr1]:port1[-end1]}{,[addr]:port[-end]}... as arguments.")
    opts: dict = {}
    try:
        parse_bind_options(args[1:], opts, lambda m: ctx.warn(line.location, m), ctx.crt_base, ctx.ca_base)
    except ValueError as exc:
        raise Problem(f"'bind {args[0]}' in section '{b.kind}' : {exc}") from None
    tls = build_tls(opts.pop("tls", {}))
    opts.pop("expose_fd_listeners", None)
    for text in args[0].split(","):
        try:
            address = parse_address(text, ctx.environ)
        except ValueError as exc:
            raise Problem(f"'bind' : {exc}") from None
        b.binds.append(Bind(origin=line.location, address=address, tls=tls, **opts))


def _server_fields(values: dict) -> dict:
    out = dict(values)
    tls = out.pop("tls", {})
    return {**out, "tls": build_tls(tls)}


def _server(b: ProxyBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if len(args) < 2:
        raise Problem("'server' expects <name> and <addr>[:<port>] as arguments.")
    name = args[0]
    where = f"'server {b.name}/{name}'"
    try:
        address = parse_address(args[1], ctx.environ, port_required=False)
    except ValueError as exc:
        raise Problem(f"{where} : {exc}") from None
    values = copy_fields(b.server_defaults)
    try:
        parse_server_options(
            args[2:],
            values,
            lambda m: ctx.warn(line.location, f"{where} : {m}"),
            name,
            ctx.crt_base,
            ctx.ca_base,
        )
    except ValueError as exc:
        raise Problem(f"{where} : {exc}") from None
    previous = b.server_origins.get(name)
    if previous is not None:
        raise Problem(
            f"{b.kind} '{b.name}', another server named '{name}' was already defined at line "
            f"{previous.line}, please use distinct names."
        )
    sid = values.get("id")
    if sid is not None:
        for other in b.servers:
            if other.id == sid:
                raise Problem(
                    f"{where} : 'id' : custom id {sid} already used at {other.origin} ('server {other.name}')."
                )
    b.server_origins[name] = line.location
    b.servers.append(Server(origin=line.location, name=name, address=address, **_server_fields(values)))


def _default_server(b: ProxyBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    values = copy_fields(b.server_defaults)
    try:
        parse_server_options(
            args,
            values,
            lambda m: ctx.warn(line.location, f"'default-server' : {m}"),
            "default-server",
            ctx.crt_base,
            ctx.ca_base,
        )
    except ValueError as exc:
        raise Problem(f"'default-server' : {exc}") from None
    b.server_defaults = values
    b.default_server = ServerDefaults(origin=line.location, words=(*b.default_server.words, *args))


_BALANCE_SIMPLE = ("roundrobin", "static-rr", "leastconn", "first", "source")


def _balance(b: ProxyBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if not args:
        raise Problem("'balance' expects an algorithm.")
    algo = args[0]
    rest = tuple(args[1:])
    if algo in _BALANCE_SIMPLE:
        balance = Balance(algo, origin=line.location)  # haproxy ignores extra words here
    elif algo == "uri":
        _check_uri_options(rest)
        balance = Balance("uri", options=rest, origin=line.location)
    elif algo == "url_param":
        if not rest:
            raise Problem("balance url_param requires an URL parameter name.")
        balance = Balance("url_param", arg=rest[0], options=rest[1:], origin=line.location)
    elif algo.startswith("hdr(") and algo.endswith(")"):
        header = algo[4:-1]
        if not header:
            raise Problem("hdr requires an http header field name.")
        if rest and rest != ("use_domain_only",):
            raise Problem(f"balance {algo} only accepts 'use_domain_only' modifier (got '{rest[0]}').")
        balance = Balance("hdr", arg=header, options=rest, origin=line.location)
    elif algo == "random" or (algo.startswith("random(") and algo.endswith(")")):
        draws = algo[7:-1] if algo != "random" else "2"
        parse_int(draws, "balance random", 1)
        balance = Balance("random", arg=draws, options=rest, origin=line.location)
    elif algo.startswith("rdp-cookie") or algo == "hash":
        ctx.warn(line.location, f"'balance {algo}' is not supported by minilb and is ignored.")
        return
    else:
        raise Problem(
            "balance only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', 'url_param', "
            "'hdr(name)' and 'rdp-cookie(name)' options."
        )
    b.fields["balance"] = balance


def _check_uri_options(words: tuple[str, ...]) -> None:
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("len", "depth"):
            value = words[i + 1] if i + 1 < len(words) else ""
            if not value.isdigit() or int(value) <= 0:
                raise Problem(f"balance uri : '{w}' expects a positive integer (got '{value}').")
            i += 2
        elif w in ("whole", "path-only"):
            i += 1
        else:
            raise Problem(
                f"balance uri only accepts parameters 'len', 'depth', 'path-only', and 'whole' (got '{w}')."
            )


def _hash_type(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
    if not args or args[0] not in ("map-based", "consistent"):
        raise Problem("'hash-type' expects 'map-based' or 'consistent'.")
    for word in args[1:]:
        if word not in ("sdbm", "djb2", "wt6", "crc32", "none", "avalanche"):
            raise Problem(f"'hash-type' : unknown hash function or modifier '{word}'.")
    b.fields["hash_type"] = tuple(args)


def _timeout(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
    name = line.words[1] if line.words[0] == "timeout" else ""
    keyword = f"timeout {name}"
    no_more_args(keyword, args, 1)
    b.timeouts[name.replace("-", "_")] = parse_ms(
        args[0] if args else None,
        keyword,
        missing="'{kw}' expects an integer value (in milliseconds)",
        bad="unexpected character '{c}' in '{kw}'",
    )


def _int_field(field: str, low: int = 0):
    def handler(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
        no_more_args(line.words[0], args, 1)
        b.fields[field] = parse_int(args[0] if args else None, line.words[0], low)

    return handler


def _tcp_inspect_delay(field: str):
    def handler(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
        keyword = f"{line.words[0]} inspect-delay"
        no_more_args(keyword, args, 1)
        b.fields[field] = parse_ms(
            args[0] if args else None,
            keyword,
            missing=f"'{{kw}}' expects a positive delay in milliseconds, in {b.label}",
            bad=f"'{{kw}}' expects a positive delay in milliseconds, in {b.label} (unexpected character '{{c}}')",
        )

    return handler


def _log(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
    if prefix == "no":
        no_more_args("no log", args)
        b.log_targets = []
        return
    b.log_targets.append(parse_log(line, args, allow_global=True))


def _log_format(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
    if not args:
        raise Problem("'log-format' expects a format string as argument.")
    if len(args) > 1:
        raise Problem(
            f"'log-format' cannot handle unexpected argument '{args[1]}'. "
            "Use quotes if the format contains spaces."
        )
    b.fields["log_format"] = args[0]
    ctx.warn(
        line.location,
        "'log-format' is not rendered by minilb: its log lines keep the 'option httplog' / "
        "'option tcplog' format.",
    )


def _default_backend(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
    if len(args) != 1:
        raise Problem("'default_backend' expects a backend name.")
    b.fields["default_backend"] = args[0]
    b.fields["default_backend_origin"] = line.location


def _condition(keyword: str, words) -> tuple[str, ...]:
    if words and words[0] not in ("if", "unless"):
        raise Problem(
            f"unexpected keyword '{words[0]}' after switching rule, only 'if' and 'unless' are allowed."
        )
    if words and len(words) == 1:
        raise Problem(f"'{keyword}' : missing condition after '{words[0]}'.")
    return tuple(words)


def _use_backend(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
    if not args:
        raise Problem("'use_backend' expects a backend name.")
    cond = _condition("use_backend", args[1:])
    b.use_backends.append(UseBackend(origin=line.location, backend=args[0], cond=cond))
    b.rules.append(RuleLine(origin=line.location, keyword="use_backend", words=tuple(args)))


def _acl(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
    if not args:
        raise Problem("'acl' expects an ACL name.")
    name = args[0]
    bad = [c for c in name if not (c.isalnum() or c in "-_.:")]
    if bad:
        raise Problem(f"'acl' : invalid character '{bad[0]}' in ACL name '{name}'.")
    if len(args) < 2:
        raise Problem(f"'acl' : missing fetch method for ACL '{name}'.")
    b.acls.append(AclLine(origin=line.location, name=name, words=tuple(args[1:])))


def _rule(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
    keyword = " ".join(line.words[: len(line.words) - len(args)])
    if not args:
        raise Problem(f"'{keyword}' expects an action.")
    b.rules.append(RuleLine(origin=line.location, keyword=keyword, words=tuple(args)))


def _stick_table(b: ProxyBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if b.stick_table is not None:
        raise Problem(
            f"stick-table name '{b.name}' conflicts with table declared in {b.kind} '{b.name}' "
            f"at {b.stick_table.origin}."
        )
    try:
        b.stick_table = parse_table(
            args,
            origin=line.location,
            name=b.name,
            wire_name=b.name,
            warn=lambda m: ctx.warn(line.location, m),
        )
    except ValueError as exc:
        raise Problem(str(exc)) from None


def _errorfile(b: ProxyBuilder, line: Line, args, prefix, ctx: ParseContext) -> None:
    if len(args) != 2:
        raise Problem("errorfile : <code> and <file> are expected.")
    code_text, path = args
    if not code_text.isdigit() or int(code_text) not in ERRORFILE_CODES:
        raise Problem(f"errorfile : status code '{code_text}' not handled.")
    try:
        with open(path, "rb") as f:
            content = f.read(MAX_ERRORFILE + 1)
    except OSError:
        raise Problem(f"errorfile : error opening file '{path}'.") from None
    if len(content) > min(MAX_ERRORFILE, ctx.tune_bufsize):
        raise Problem(
            f"errorfile : file '{path}' is too large ({len(content)} bytes, tune.bufsize is {ctx.tune_bufsize})."
        )
    bad_offset = _unparsable_response(content)
    if bad_offset is not None:
        raise Problem(f"errorfile : '{path}': unable to parse headers (error offset: {bad_offset})")
    code = int(code_text)
    b.errorfiles = [e for e in b.errorfiles if e.status != code]
    b.errorfiles.append(
        ErrorFile(origin=line.location, status=code, path=os.path.abspath(path), content=content)
    )


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] [1-5][0-9][0-9](?: [^\r\n]*)?\r?\n")
_HEADER_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*\r?\n")
_END_OF_HEADERS = re.compile(rb"\r?\n")


def _unparsable_response(content: bytes) -> int | None:
    """Where an errorfile stops being an HTTP/1 response head (None when it is one)."""
    m = _STATUS_LINE.match(content)
    if m is None:
        return 0
    pos = m.end()
    while True:
        end = _END_OF_HEADERS.match(content, pos)
        if end is not None:
            return None
        header = _HEADER_LINE.match(content, pos)
        if header is None:
            return pos
        pos = header.end()


def _simple_string(field: str, choices: tuple[str, ...] = ()):
    def handler(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
        keyword = line.words[0]
        if not args:
            raise Problem(f"'{keyword}' expects an argument.")
        no_more_args(keyword, args, 1)
        if choices and args[0] not in choices:
            raise Problem(
                f"'{keyword}' expects one of {', '.join(repr(c) for c in choices)} (got '{args[0]}')."
            )
        b.fields[field] = args[0]

    return handler


def _id(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
    no_more_args("id", args, 1)
    b.fields["id"] = parse_int(args[0] if args else None, "id", 1)


def _disabled(value: bool):
    def handler(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
        no_more_args(line.words[0], args)
        b.fields["disabled"] = value

    return handler


def _description(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
    if not args:
        raise Problem("'description' expects a string argument.")
    b.fields["description"] = " ".join(args)


_EXPECT_KINDS = ("string", "rstring", "string-lf", "status", "rstatus", "hdr", "fhdr")
_STATUS_LIST = re.compile(r"^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$")


def _check_expectation(core: list[str], line: Line, ctx: ParseContext) -> None:
    """Validate ``http-check expect`` (haproxy 2.6.12's messages)."""
    what = "'http-check expect'"
    if not core or core[0] not in _EXPECT_KINDS:
        got = core[0] if core else ""
        raise Problem(
            f"{what} : 'only supports min-recv, [!]string', '[!]rstring', '[!]string-lf', '[!]status', "
            f"'[!]rstatus', [!]hdr, [!]fhdr or comment but got '{got}' as argument."
        )
    kind = core[0]
    if len(core) < 2:
        raise Problem(f"{what} : '{kind}' expects a <pattern> as argument.")
    if kind == "status" and not _STATUS_LIST.match(core[1]):
        bad = next((c for c in core[1] if not (c.isdigit() or c in ",-")), core[1][:1])
        raise Problem(f"{what} : invalid character '{bad}' in the list of status codes.")
    if kind in ("rstatus", "rstring"):
        try:
            re.compile(core[1])
        except re.error as exc:
            raise Problem(f"{what} : regex '{core[1]}' is invalid (error={exc.msg}).") from None
    if kind in ("hdr", "fhdr", "string-lf"):
        ctx.warn(line.location, f"'http-check expect {kind}' is not supported by minilb and is ignored.")


def _http_check(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
    sub = line.words[1]
    if sub == "expect":
        words = list(args)
        while words and words[0] in (
            "min-recv",
            "comment",
            "ok-status",
            "error-status",
            "tout-status",
            "on-success",
            "on-error",
            "status-code",
        ):
            del words[:2]
        # the expectation proper, after its optional parameters; "!" negates it
        core = words[1:] if words and words[0] == "!" else words
        _check_expectation(core, line, ctx)
        b.check = attrs.evolve(b.check, expect=tuple(words))
        b.check_rules_origin = b.check_rules_origin or line.location
        return
    # send
    changes: dict = {}
    headers = list(b.check.headers)
    i = 0
    words = list(args)
    while i < len(words):
        w = words[i]
        if w in ("meth", "uri", "ver", "uri-lf", "body", "body-lf", "comment"):
            if i + 1 >= len(words):
                raise Problem(f"'http-check send' : '{w}' expects an argument.")
            key = {"meth": "method", "uri": "uri", "uri-lf": "uri", "ver": "version"}.get(w)
            if key:
                changes[key] = words[i + 1]
            i += 2
        elif w == "hdr":
            if i + 2 >= len(words):
                raise Problem("'http-check send' : 'hdr' expects <name> and <value>.")
            headers.append((words[i + 1], words[i + 2]))
            if words[i + 1].lower() == "host":
                changes["host"] = words[i + 2]
            i += 3
        else:
            raise Problem(f"'http-check send' : unknown parameter '{w}'.")
    b.check = attrs.evolve(b.check, headers=tuple(headers), **changes)
    b.check_rules_origin = b.check_rules_origin or line.location


# options -------------------------------------------------------------------

_BOOL_OPTIONS = {
    "httplog": "httplog",
    "tcplog": "tcplog",
    "dontlognull": "dontlognull",
    "log-separate-errors": "log_separate_errors",
    "abortonclose": "abortonclose",
    "redispatch": "redispatch",
}
_CONNECTION_MODES = {
    "httpclose": "close",
    "http-server-close": "server-close",
    "http-keep-alive": "keep-alive",
}


def _option(b: ProxyBuilder, line: Line, args, prefix, ctx) -> None:
    name = line.words[1] if prefix is None else line.words[2]
    enabled = prefix != "no"
    if prefix == "default":
        enabled = False
    if name in _BOOL_OPTIONS:
        if name == "httplog" and args and args[0] == "clf":
            args = args[1:]
        if name == "redispatch" and args:
            parse_int(args[0], "option redispatch", -(2**31))
            args = args[1:]
        no_more_args(f"option {name}", args)
        if name == "httplog" and enabled and b.kind == "backend":
            ctx.warn(
                line.location, f"backend '{b.name}' : 'option httplog' directive is ignored in backends."
            )
            return
        if name == "httplog" and enabled and b.kind != "defaults" and b.fields.get("mode", "tcp") != "http":
            ctx.warn(
                line.location,
                f"'option httplog' not usable with {_kind_word(b.kind)} '{b.name}' (needs 'mode http'). "
                "Falling back to 'option tcplog'.",
            )
            name = "tcplog"
        b.fields[_BOOL_OPTIONS[name]] = enabled
    elif name in _CONNECTION_MODES:
        no_more_args(f"option {name}", args)
        b.fields["http_connection_mode"] = _CONNECTION_MODES[name] if enabled else "keep-alive"
    elif name == "forwardfor":
        b.fields["forwardfor"] = _forwardfor(args)
    elif name == "httpchk":
        method, uri, version = b.check.method, b.check.uri, b.check.version
        if len(args) == 1:
            uri = args[0]
        elif len(args) >= 2:
            method, uri = args[0], args[1]
            if len(args) >= 3:
                version = args[2]
            if len(args) > 3:
                raise Problem(f"'option httpchk' cannot handle unexpected argument '{args[3]}'.")
        b.check = attrs.evolve(b.check, method=method, uri=uri, version=version)
        b.check_enabled = True
        b.fields["httpchk_origin"] = line.location
    b.options.append((name, enabled))


def _kind_word(kind: str) -> str:
    """HAProxy calls a listen section "proxy" in its messages."""
    return "proxy" if kind == "listen" else kind


def _forwardfor(args) -> ForwardFor:
    ff: dict = {}
    i = 0
    while i < len(args):
        w = args[i]
        if w == "except":
            net = args[i + 1] if i + 1 < len(args) else ""
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise Problem("'option forwardfor except' expects <address>[/mask] as argument.") from None
            ff["except_net"] = net
            i += 2
        elif w == "header" and i + 1 < len(args):
            ff["header"] = args[i + 1]
            i += 2
        elif w == "if-none":
            ff["if_none"] = True
            i += 1
        else:
            raise Problem(
                f"'option forwardfor' : unknown parameter '{w}'. Expects 'except', 'header' or 'if-none'."
            )
    return ForwardFor(**ff)


HANDLERS = {
    "mode": _mode,
    "bind": _bind,
    "server": _server,
    "default-server": _default_server,
    "balance": _balance,
    "hash-type": _hash_type,
    "retries": _int_field("retries"),
    "maxconn": _int_field("maxconn"),
    "fullconn": _int_field("fullconn"),
    "log": _log,
    "log-format": _log_format,
    "default_backend": _default_backend,
    "use_backend": _use_backend,
    "acl": _acl,
    "http-request": _rule,
    "http-response": _rule,
    "http-after-response": _rule,
    "tcp-request connection": _rule,
    "tcp-request content": _rule,
    "tcp-request session": _rule,
    "tcp-response content": _rule,
    "tcp-request inspect-delay": _tcp_inspect_delay("tcp_inspect_delay"),
    "tcp-response inspect-delay": _tcp_inspect_delay("tcp_response_inspect_delay"),
    "stick on": _rule,
    "stick match": _rule,
    "stick store-request": _rule,
    "stick store-response": _rule,
    "redirect": _rule,
    "use-server": _rule,
    "stick-table": _stick_table,
    "errorfile": _errorfile,
    "monitor-uri": _simple_string("monitor_uri"),
    "http-reuse": _simple_string("http_reuse", ("never", "safe", "aggressive", "always")),
    "id": _id,
    "disabled": _disabled(True),
    "enabled": _disabled(False),
    "description": _description,
    "http-check expect": _http_check,
    "http-check send": _http_check,
}
for _name in (
    "check",
    "client",
    "client-fin",
    "connect",
    "http-keep-alive",
    "http-request",
    "queue",
    "server",
    "server-fin",
    "tarpit",
    "tunnel",
):
    HANDLERS[f"timeout {_name}"] = _timeout
for _name in (
    "abortonclose",
    "dontlognull",
    "forwardfor",
    "http-keep-alive",
    "http-server-close",
    "httpchk",
    "httpclose",
    "httplog",
    "log-separate-errors",
    "redispatch",
    "tcplog",
):
    HANDLERS[f"option {_name}"] = _option


def _capability(b: ProxyBuilder, line: Line, ctx: ParseContext):
    def allowed(kw: Keyword, prefix: str | None) -> bool:
        if kw.name.startswith("option ") and kw.name not in HANDLERS:
            # record every option word, even those minilb does not act upon
            b.options.append((kw.name[7:], prefix != "no"))
        if b.kind == "defaults":
            if "defaults" not in kw.sections:
                verb = "is not supported in" if kw.name == "stick-table" else "not allowed in"
                ctx.alert(line.location, f"'{kw.name}' {verb} 'defaults' section.")
                return False
            if kw.named_defaults_only and not b.name:
                ctx.alert(
                    line.location, f"'{kw.name.split()[0]}' not allowed in anonymous 'defaults' section."
                )
                return False
            return True
        if b.kind in kw.sections:
            return True
        missing = "backend" if b.kind == "frontend" else "frontend"
        if kw.name == "server":
            ctx.alert(line.location, f"'server' not allowed because {b.label} has no {missing} capability.")
            return False
        if kw.name in ("tcp-request connection", "tcp-request session"):
            # haproxy 2.6.12 refuses these in a backend (an error, not an ignored line)
            ctx.alert(line.location, f"{kw.name} is not allowed because {b.kind} {b.name} is not a frontend")
            return False
        if kw.name.startswith("option "):
            shown = kw.name[7:]
        elif kw.name.startswith("timeout "):
            shown = kw.name
        else:
            shown = kw.name.split()[0]
        ctx.warn(line.location, f"'{shown}' ignored because {b.label} has no {missing} capability.")
        return False

    return allowed


def handle_proxy_line(b: ProxyBuilder, line: Line, ctx: ParseContext) -> None:
    dispatch(b.kind, f"{b.kind} '{b.name}'", line, HANDLERS, ctx, b, _capability(b, line, ctx))
