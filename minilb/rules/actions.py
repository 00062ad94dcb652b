"""Owns rule actions: the registry of action keywords per rule set and the generic
actions (allow, deny, tarpit, return, redirect, reject, header/path/query/URI
edits, set-status, set-var/unset-var, accept/reject in tcp rule sets).

Registering an action (from a feature module, e.g. ``minilb.stick.fetches``)::

    from minilb.rules import actions as A

    def parse_track_sc(spec: A.ActionSpec, ctx) -> A.ActionFn:
        # spec.word = "track-sc0", spec.name = "track-sc0", spec.paren_args = None,
        # spec.args = ["src", "table", "rl"]  (the words before if/unless)
        expr = ctx.parse_expr(spec.args[0])
        table = ctx.table(spec.args[2]) if len(spec.args) > 2 else ctx.own_table
        def track(sess, txn):            # txn is None in tcp rule sets
            key = expr.eval(sess, txn)
            ...
            return None                  # continue with the next rule
        return track, 3                  # or just `track` when every arg was used

    A.register_action(A.TCP_RULESETS + ("http-request", "http-response"), "track-sc0", parse_track_sc)
    A.register_action(("http-request",), "sc-inc-gpc", parse_inc, paren=True)  # sc-inc-gpc(1,0)

- ``parser(spec, ctx)`` runs once at compile time; it raises `ActionError` (the message
  goes after ``... while parsing 'http-request track-sc0' rule : ``) and returns
  ``fn`` or ``(fn, consumed_args)``; unconsumed words are reported like HAProxy does.
- ``fn(sess, txn)`` runs per request and returns ``None`` (continue), `STOP` (allow /
  accept: stop this rule set, carry on), `REJECT` (close without answer), or a `Reply`.
- ``paren=True``: the keyword takes ``(args)`` glued to it, found in ``spec.paren_args``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from minilb.http.parse import split_uri
from minilb.rules import samples as S
from minilb.rules.replies import HeaderFmt, ReplyTemplate, make_reply
from minilb.rules.txn import Reply

ActionError = S.SampleError

HTTP_REQUEST = "http-request"
HTTP_RESPONSE = "http-response"
HTTP_AFTER_RESPONSE = "http-after-response"
TCP_CONNECTION = "tcp-request connection"
TCP_SESSION = "tcp-request session"
TCP_CONTENT = "tcp-request content"
TCP_RESPONSE = "tcp-response content"
TCP_RULESETS = (TCP_CONNECTION, TCP_SESSION, TCP_CONTENT)
HTTP_RULESETS = (HTTP_REQUEST, HTTP_RESPONSE, HTTP_AFTER_RESPONSE)
RULESETS = HTTP_RULESETS + TCP_RULESETS + (TCP_RESPONSE,)


class Verdict:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: allow / accept: stop evaluating this rule set, go on with the request
STOP = Verdict("STOP")
#: reject / silent-drop: close the connection without an answer
REJECT = Verdict("REJECT")
#: what an HTTP rule set returns for REJECT: empty raw answer, close
REJECT_REPLY = Reply(status=403, raw=b"", close=True, kind="reject")

ActionFn = Callable[[Any, Any], Any]


class ActionSpec:
    """The words of one action as its parser sees them."""

    __slots__ = ("ruleset", "word", "name", "paren_args", "args")

    def __init__(self, ruleset: str, word: str, name: str, paren_args: list[str] | None, args: list[str]):
        self.ruleset = ruleset
        self.word = word
        self.name = name
        self.paren_args = paren_args
        self.args = args


class ActionDef:
    __slots__ = ("name", "parser", "paren")

    def __init__(self, name: str, parser: Callable[[ActionSpec, Any], Any], paren: bool):
        self.name = name
        self.parser = parser
        self.paren = paren


ACTIONS: dict[str, dict[str, ActionDef]] = {r: {} for r in RULESETS}


def register_action(
    rulesets: tuple[str, ...] | list[str] | str,
    name: str,
    parser: Callable[[ActionSpec, Any], Any],
    paren: bool = False,
) -> None:
    """Register (or replace) action ``name`` in each of ``rulesets``."""
    if isinstance(rulesets, str):
        rulesets = (rulesets,)
    for r in rulesets:
        ACTIONS.setdefault(r, {})[name] = ActionDef(name, parser, paren)


def lookup_action(ruleset: str, word: str) -> tuple[ActionDef | None, str, list[str] | None]:
    """(definition or None, name, parenthesised args or None) for an action word."""
    name, paren, rest = word.partition("(")
    table = ACTIONS.get(ruleset, {})
    d = table.get(name)
    if d is None:
        return None, name, None
    if paren:
        if not rest.endswith(")"):
            raise ActionError(f"missing ')' in '{word}'")
        return d, name, S.split_args(rest[:-1])
    return d, name, None


def action_names(ruleset: str) -> list[str]:
    return [f"{n}(*)" if d.paren else n for n, d in ACTIONS.get(ruleset, {}).items()]


# --------------------------------------------------------------------------- helpers


def _no_args(fn: ActionFn) -> Callable[[ActionSpec, Any], Any]:
    def parse(spec: ActionSpec, ctx: Any) -> Any:
        return fn, 0

    return parse


def _fmt(ctx: Any, text: str):
    return ctx.parse_format(text) if ctx is not None else _plain_format(text)


def _plain_format(text: str):
    from minilb.rules.logformat import parse_log_format

    return parse_log_format(text, None)


def _status_arg(text: str, low: int = 200, high: int = 599) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ActionError(f"Unexpected status code '{text}'")
    return int(text)


def _errorfiles(ctx: Any) -> dict[int, bytes]:
    proxy = getattr(ctx, "proxy", None)
    if proxy is None:
        return {}
    return {ef.status: ef.content for ef in proxy.errorfiles}


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        raise ActionError(f"error opening file '{path}'") from None


#: statuses HAProxy has an error page for (what default-errorfiles can answer)
ERROR_PAGE_STATUSES = frozenset(
    {200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504}
)


def parse_http_reply(
    spec: ActionSpec,
    ctx: Any,
    default_status: int,
    deny_style: bool,
    delay_ms: int = 0,
    reply_kind: str = "return",
) -> tuple[ReplyTemplate, int]:
    """``[status|deny_status N] [content-type T] [errorfile F | default-errorfiles |
    string S | lf-string F | file F | lf-file F] [hdr N V]*`` -> (template, consumed);
    the template's replies carry ``reply_kind`` as `Reply.kind`."""
    args = spec.args
    status = default_status
    ctype: str | None = None
    payload: str | None = None  # kind of payload
    payload_arg = ""
    headers: list[HeaderFmt] = []
    i, n = 0, len(args)
    while i < n:
        w = args[i]
        if w in ("status", "deny_status"):
            if w == "deny_status" and not deny_style:
                break
            if i + 1 >= n:
                raise ActionError(f"'{w}' expects <status_code> as argument")
            status = _status_arg(args[i + 1])
            i += 2
        elif w == "content-type":
            if i + 1 >= n:
                raise ActionError("'content-type' expects <type> as argument")
            ctype = args[i + 1]
            i += 2
        elif w in ("errorfile", "errorfiles", "file", "lf-file", "string", "lf-string"):
            if i + 1 >= n:
                raise ActionError(
                    f"'{w}' expects <{'fmt' if w.startswith('lf') else 'file' if 'file' in w else 'str'}> as argument"
                )
            if payload is not None:
                raise ActionError(f"unexpected '{w}' argument, '{payload}' already defined")
            payload, payload_arg = w, args[i + 1]
            i += 2
        elif w == "default-errorfiles":
            if payload is not None:
                raise ActionError(f"unexpected '{w}' argument, '{payload}' already defined")
            payload = w
            i += 1
        elif w == "hdr":
            if i + 2 >= n:
                raise ActionError("'hdr' expects <name> and <value> as arguments")
            name = args[i + 1].lower()
            if name in ("content-length", "content-type", "transfer-encoding"):
                ctx.warn(f"header '{name}' always ignored by the http reply.") if ctx is not None else None
            else:
                f = _fmt(ctx, args[i + 2])
                headers.append((S.to_bytes(S.cfg_str(name)), f.render, f.constant))
            i += 3
        else:
            break
    errorfiles = _errorfiles(ctx)
    if payload in ("errorfile",):
        raw = _read_file(payload_arg)
        return ReplyTemplate(status, "errorfile", raw=raw, delay_ms=delay_ms, reply_kind=reply_kind), i
    if payload == "errorfiles":
        raise ActionError(f"unknown http-errors section '{payload_arg}' referenced by an http reply")
    if payload is None or payload == "default-errorfiles":
        if ctype is not None and ctx is not None:
            ctx.warn(
                f"content-type '{ctype}' ignored by the http reply because neither errorfile nor payload defined."
            )
        if payload == "default-errorfiles" or (deny_style and not headers):
            if status not in ERROR_PAGE_STATUSES and status not in errorfiles:
                raise ActionError(
                    f"status code '{status}' not handled by default with 'default-errorfiles' argument."
                )
            return ReplyTemplate(
                status, "default", errorfiles=errorfiles, delay_ms=delay_ms, reply_kind=reply_kind
            ), i
        return ReplyTemplate(status, "payload", headers=headers, delay_ms=delay_ms, reply_kind=reply_kind), i
    if payload in ("string", "file"):
        body: Any = S.to_bytes(S.cfg_str(payload_arg)) if payload == "string" else _read_file(payload_arg)
    else:
        text = payload_arg if payload == "lf-string" else _read_file(payload_arg).decode("latin-1")
        f = _fmt(ctx, text)
        body = S.to_bytes(f.constant) if f.constant is not None else f.render
    if (body if isinstance(body, bytes) else True) and ctype is None:
        raise ActionError("a content type must be defined when non-empty payload is configured")
    if status in (204, 304) and (body if isinstance(body, bytes) else True):
        raise ActionError(f"No body expected for {status} responses")
    return ReplyTemplate(
        status,
        "payload",
        content_type=ctype,
        body=body,
        headers=headers,
        delay_ms=delay_ms,
        reply_kind=reply_kind,
    ), i


def _tarpit_delay(ctx: Any) -> int:
    proxy = getattr(ctx, "proxy", None)
    if proxy is None:
        return 0
    t = proxy.timeouts
    return t.tarpit if t.tarpit is not None else (t.connect or 0)


def _reply_action(default_status: int, deny_style: bool, reply_kind: str):
    tarpit = reply_kind == "tarpit"

    def parse(spec: ActionSpec, ctx: Any) -> Any:
        delay = _tarpit_delay(ctx) if tarpit else 0
        tpl, used = parse_http_reply(spec, ctx, default_status, deny_style, delay, reply_kind)
        build = tpl.build
        return build, used

    return parse


# --------------------------------------------------------------------------- redirect

REDIRECT_CODES = (301, 302, 303, 307, 308)
_REDIRECT_WORDS = "'code', 'prefix', 'location', 'scheme', 'set-cookie', 'clear-cookie', 'drop-query', 'ignore-empty' or 'append-slash'"


def parse_redirect(args: list[str], ctx: Any) -> tuple[ActionFn, int]:
    kind = target = None
    code = 302
    cookie: str | None = None
    drop_query = append_slash = ignore_empty = False
    i, n = 0, len(args)
    while i < n:
        w = args[i]
        if w in ("location", "prefix", "scheme"):
            if i + 1 >= n:
                raise ActionError(f"missing argument for '{w}'")
            kind, target = w, args[i + 1]
            i += 2
        elif w == "code":
            if i + 1 >= n:
                raise ActionError("missing argument for 'code'")
            c = args[i + 1]
            if not c.isdigit() or int(c) not in REDIRECT_CODES:
                raise ActionError(
                    f"'code': unsupported HTTP code '{c}' (must be one of 301, 302, 303, 307 or 308)"
                )
            code = int(c)
            i += 2
        elif w in ("set-cookie", "clear-cookie"):
            if i + 1 >= n:
                raise ActionError(f"missing argument for '{w}'")
            c = args[i + 1]
            if "=" not in c:
                c += "="
            cookie = f"{c}; path=/;" if w == "set-cookie" else f"{c}; path=/; Max-Age=0;"
            i += 2
        elif w == "drop-query":
            drop_query = True
            i += 1
        elif w == "append-slash":
            append_slash = True
            i += 1
        elif w == "ignore-empty":
            ignore_empty = True
            i += 1
        elif w in ("if", "unless"):
            break
        else:
            raise ActionError(f"expects {_REDIRECT_WORDS} (was '{w}')")
    if kind is None or target is None:
        raise ActionError("redirect rule must have either a 'prefix', a 'location' or a 'scheme'")
    fmt = _fmt(ctx, target)
    extra: list[tuple[bytes, bytes]] = []
    if code in (302, 303, 307):
        extra.append((b"cache-control", b"no-cache"))
    if cookie is not None:
        extra.append((b"set-cookie", S.to_bytes(S.cfg_str(cookie))))
    tail = tuple(extra)

    def reply(location: str) -> Reply:
        hdrs = ((b"content-length", b"0"), (b"location", location.encode("latin-1", "replace"))) + tail
        return make_reply(code, hdrs, b"", kind="redirect")

    if kind == "location":
        if fmt.constant is not None and not ignore_empty:
            const = reply(fmt.constant)
            return (lambda s, t: const), i
        render = fmt.render

        def location(s, t):
            loc = render(s, t)
            if not loc and ignore_empty:
                return None
            return reply(loc)

        return location, i

    def path_part(t) -> str:
        path = t.path
        if not drop_query and t.query is not None:
            path = f"{path}?{t.query}"
        if append_slash and not path.endswith("/"):
            path += "/"
        return path

    if kind == "prefix":
        render = fmt.render

        def prefix(s, t):
            pfx = render(s, t)
            if not pfx and ignore_empty:
                return None
            path = path_part(t)
            return reply(path if pfx == "/" else pfx + path)

        return prefix, i

    render = fmt.render

    def scheme(s, t):
        sch = render(s, t)
        if not sch and ignore_empty:
            return None
        host = S.first_host(t)
        return reply(f"{sch}://{host or ''}{path_part(t)}")

    return scheme, i


def _parse_redirect_action(spec: ActionSpec, ctx: Any) -> Any:
    return parse_redirect(spec.args, ctx)


# --------------------------------------------------------------------------- headers


def _headers_of(ruleset: str) -> Callable[[Any], list]:
    if ruleset == HTTP_REQUEST:
        return lambda t: t.headers
    return lambda t: t.resp_headers


def _name_arg(spec: ActionSpec, count: int, plural: str) -> None:
    if len(spec.args) < count:
        raise ActionError(f"expects exactly {count} {plural}")


def _parse_set_header(spec: ActionSpec, ctx: Any) -> Any:
    _name_arg(spec, 2, "arguments")
    name = S.to_bytes(S.cfg_str(spec.args[0].lower()))
    fmt = _fmt(ctx, spec.args[1])
    render = fmt.render
    get = _headers_of(spec.ruleset)
    replace = spec.name == "set-header"

    def set_header(s, t):
        value = render(s, t).encode("latin-1", "replace")
        hs = get(t)
        if replace:
            hs[:] = [h for h in hs if h[0].lower() != name]
        hs.append([name, value])
        return None

    return set_header, 2


def _name_matcher(name: str, method: str) -> Callable[[bytes], bool]:
    """Header-name matching of ``del-header -m``: haproxy compares str/beg/end/sub without
    case, and runs a regex on the lower-cased name (HTX stores names in lower case)."""
    n = S.to_bytes(S.cfg_str(name.lower()))
    if method == "str":
        return lambda k: k.lower() == n
    if method == "beg":
        return lambda k: k.lower().startswith(n)
    if method == "end":
        return lambda k: k.lower().endswith(n)
    if method == "sub":
        return lambda k: n in k.lower()
    if method == "reg":
        try:
            rx = re.compile(S.to_bytes(S.cfg_str(name)))
        except re.error as e:
            raise ActionError(f"regex '{name}' is invalid ({e})") from None
        return lambda k: rx.search(k.lower()) is not None
    raise ActionError(f"-m with unsupported matching method '{method}'")


def _parse_del_header(spec: ActionSpec, ctx: Any) -> Any:
    if not spec.args:
        raise ActionError("expects at least 1 argument")
    method = "str"
    used = 1
    if len(spec.args) >= 3 and spec.args[1] == "-m":
        method = spec.args[2]
        used = 3
    match = _name_matcher(spec.args[0], method)
    get = _headers_of(spec.ruleset)

    def del_header(s, t):
        hs = get(t)
        hs[:] = [h for h in hs if not match(h[0])]
        return None

    return del_header, used


_BACKREF = re.compile(r"\\(\d|\\)")


def expand_backrefs(template: str, m: re.Match) -> str:
    """HAProxy's replacement: ``\\N`` inserts group N (empty when unmatched)."""
    if "\\" not in template:
        return template

    def sub(r: re.Match) -> str:
        g = r.group(1)
        if g == "\\":
            return "\\"
        idx = int(g)
        if idx > (m.re.groups or 0):
            return ""
        return m.group(idx) or ""

    return _BACKREF.sub(sub, template)


def _regex(text: str) -> re.Pattern:
    try:
        return re.compile(S.cfg_str(text))
    except re.error as e:
        raise ActionError(f"regex '{text}' is invalid ({e})") from None


def _parse_replace_header(spec: ActionSpec, ctx: Any) -> Any:
    _name_arg(spec, 3, "arguments")
    name = S.to_bytes(S.cfg_str(spec.args[0].lower()))
    rx = _regex(spec.args[1])
    fmt = _fmt(ctx, spec.args[2])
    render = fmt.render
    get = _headers_of(spec.ruleset)
    per_value = spec.name == "replace-value"

    def replace_one(v: str, repl: str) -> str:
        m = rx.search(v)
        return v if m is None else expand_backrefs(repl, m)

    def replace_header(s, t):
        repl = render(s, t)
        for h in get(t):
            if h[0].lower() != name:
                continue
            v = h[1].decode("latin-1")
            if per_value:
                # a replaced value loses the blanks around it, the others keep theirs (haproxy 2.6.12)
                parts = []
                for seg in S.split_segments(h[1]):
                    text = seg.decode("latin-1")
                    m = rx.search(text.strip(" \t"))
                    parts.append(text if m is None else expand_backrefs(repl, m))
                new = ",".join(parts)
            else:
                new = replace_one(v, repl)
            h[1] = new.encode("latin-1", "replace")
        return None

    return replace_header, 3


# --------------------------------------------------------------------------- request line


def rebuild_uri(txn: Any) -> None:
    """Recompute ``txn.uri`` from ``txn.path``/``txn.query`` (keeping an absolute URI's
    scheme and authority)."""
    uri = txn.uri
    prefix = b""
    if uri[:1] != b"/" and b"://" in uri:
        start = uri.index(b"://") + 3
        slash = uri.find(b"/", start)
        prefix = uri if slash < 0 else uri[:slash]
        if slash < 0:
            q = prefix.find(b"?")
            prefix = prefix if q < 0 else prefix[:q]
    tail = txn.path if txn.query is None else f"{txn.path}?{txn.query}"
    txn.uri = prefix + tail.encode("latin-1", "replace")


def _one_format(spec: ActionSpec, ctx: Any) -> Any:
    if not spec.args:
        raise ActionError("expects exactly 1 argument <format>")
    return _fmt(ctx, spec.args[0]).render


def _parse_set_path(spec: ActionSpec, ctx: Any) -> Any:
    render = _one_format(spec, ctx)
    what = spec.name

    def set_path(s, t):
        v = render(s, t)
        if what == "set-path":
            t.path = v
        elif what == "set-query":
            t.query = v
        elif what == "set-pathq":
            t.path, _, q = v.partition("?")
            t.query = q if _ else None
        rebuild_uri(t)
        return None

    return set_path, 1


def _parse_set_uri(spec: ActionSpec, ctx: Any) -> Any:
    render = _one_format(spec, ctx)

    def set_uri(s, t):
        t.uri = render(s, t).encode("latin-1", "replace")
        t.path, t.query = split_uri(t.uri)
        return None

    return set_uri, 1


def _parse_set_method(spec: ActionSpec, ctx: Any) -> Any:
    render = _one_format(spec, ctx)

    def set_method(s, t):
        t.method = render(s, t)
        return None

    return set_method, 1


def _parse_replace_path(spec: ActionSpec, ctx: Any) -> Any:
    if len(spec.args) < 2:
        raise ActionError("expects exactly 2 arguments")
    rx = _regex(spec.args[0])
    render = _fmt(ctx, spec.args[1]).render
    what = spec.name

    def replace(s, t):
        if what == "replace-uri":
            cur = t.uri.decode("latin-1")
        elif what == "replace-pathq":
            cur = t.path if t.query is None else f"{t.path}?{t.query}"
        else:
            cur = t.path
        m = rx.search(cur)
        if m is None:
            return None
        new = expand_backrefs(render(s, t), m)
        if what == "replace-uri":
            t.uri = new.encode("latin-1", "replace")
            t.path, t.query = split_uri(t.uri)
        elif what == "replace-pathq":
            t.path, q, query = new.partition("?")
            t.query = query if q else None
            rebuild_uri(t)
        else:
            t.path = new
            rebuild_uri(t)
        return None

    return replace, 2


# --------------------------------------------------------------------------- status


def _parse_set_status(spec: ActionSpec, ctx: Any) -> Any:
    args = spec.args
    if not args or not args[0].isdigit() or not 100 <= int(args[0]) <= 999:
        raise ActionError("expects an integer status code between 100 and 999")
    status = int(args[0])
    reason: str | None = None
    used = 1
    if len(args) >= 3 and args[1] == "reason":
        reason = S.cfg_str(args[2])
        used = 3

    def set_status(s, t):
        t.status = status
        t.resp_reason = reason
        return None

    return set_status, used


# --------------------------------------------------------------------------- variables


def store_var(ref: S.VarRef, sess: Any, txn: Any, value: Any) -> None:
    store = S.var_store(ref, sess, txn)
    if store is not None:
        store[ref.full] = value


def _var_ref(spec: ActionSpec) -> S.VarRef:
    if not spec.paren_args or len(spec.paren_args) < 1 or not spec.paren_args[0]:
        raise ActionError(f"missing variable name in '{spec.word}'")
    return S.parse_var_name(spec.paren_args[0])


def _parse_set_var(spec: ActionSpec, ctx: Any) -> Any:
    ref = _var_ref(spec)
    if not spec.args:
        raise ActionError("missing fetch method")
    expr = ctx.parse_expr(spec.args[0], spec.word) if ctx is not None else S.parse_expr(spec.args[0])
    ev = expr.eval
    conds = S.parse_var_conditions(spec.paren_args[1:]) if spec.paren_args else ()
    set_value = S.set_var_value

    def set_var(s, t):
        v = ev(s, t)
        if v is not None:
            set_value(ref, conds, s, t, v)
        return None

    return set_var, 1


def _parse_set_var_fmt(spec: ActionSpec, ctx: Any) -> Any:
    ref = _var_ref(spec)
    if not spec.args:
        raise ActionError("missing format string")
    render = _fmt(ctx, spec.args[0]).render

    def set_var_fmt(s, t):
        store_var(ref, s, t, render(s, t))
        return None

    return set_var_fmt, 1


def _parse_unset_var(spec: ActionSpec, ctx: Any) -> Any:
    ref = _var_ref(spec)

    def unset_var(s, t):
        store = S.var_store(ref, s, t)
        if store is not None:
            store.pop(ref.full, None)
        return None

    return unset_var, 0


# --------------------------------------------------------------------------- misc


def _stop(s: Any, t: Any) -> Verdict:
    return STOP


def _reject(s: Any, t: Any) -> Verdict:
    return REJECT


def _parse_ignored(spec: ActionSpec, ctx: Any) -> Any:
    if ctx is not None:
        ctx.warn(f"'{spec.ruleset} {spec.word}' is not supported by minilb and is ignored.")
    return (lambda s, t: None), len(spec.args)


def _parse_unsupported(spec: ActionSpec, ctx: Any) -> Any:
    raise ActionError(
        f"'{spec.ruleset} {spec.name}' is a HAProxy 2.6 action that minilb does not implement; "
        "ignoring it would change what the proxy does"
    )


#: HAProxy 2.6 actions that would change behaviour if ignored: a clear error
UNSUPPORTED_HTTP = (
    "auth",
    "use-service",
    "do-resolve",
    "set-map",
    "del-map",
    "add-acl",
    "del-acl",
    "send-spoe-group",
    "early-hint",
)
UNSUPPORTED_TCP = ("expect-proxy", "expect-netscaler-cip", "switch-mode", "use-service")
#: address rewrites: ignored with a warning (haproxy's own example option-http_proxy.cfg uses them)
ADDRESS_REWRITES = ("set-src", "set-src-port", "set-dst", "set-dst-port")

#: HAProxy 2.6 actions that minilb accepts and ignores (with a warning)
IGNORED_HTTP = (
    "set-log-level",
    "set-nice",
    "set-tos",
    "set-mark",
    "capture",
    "wait-for-handshake",
    "wait-for-body",
    "disable-l7-retry",
    "strict-mode",
    "normalize-uri",
    "set-timeout",
    "cache-use",
    "cache-store",
    "set-priority-class",
    "set-priority-offset",
)


def _register_builtins() -> None:
    ra = register_action
    req, res, after = HTTP_REQUEST, HTTP_RESPONSE, HTTP_AFTER_RESPONSE
    ra((req, res, after), "allow", _no_args(_stop))
    ra(req, "deny", _reply_action(403, True, "deny"))
    ra(res, "deny", _reply_action(502, True, "deny"))
    ra(req, "tarpit", _reply_action(500, True, "tarpit"))
    ra((req, res), "return", _reply_action(200, False, "return"))
    ra((req, res), "redirect", _parse_redirect_action)
    ra((req, res), "reject", _no_args(_reject))
    ra((req, res), "silent-drop", _no_args(_reject))
    for name in ("set-header", "add-header"):
        ra((req, res, after), name, _parse_set_header)
    ra((req, res, after), "del-header", _parse_del_header)
    for name in ("replace-header", "replace-value"):
        ra((req, res, after), name, _parse_replace_header)
    for name in ("set-path", "set-query", "set-pathq"):
        ra(req, name, _parse_set_path)
    ra(req, "set-uri", _parse_set_uri)
    ra(req, "set-method", _parse_set_method)
    for name in ("replace-path", "replace-pathq", "replace-uri"):
        ra(req, name, _parse_replace_path)
    ra((res, after), "set-status", _parse_set_status)
    all_sets = RULESETS
    ra(all_sets, "set-var", _parse_set_var, paren=True)
    ra(all_sets, "set-var-fmt", _parse_set_var_fmt, paren=True)
    ra(all_sets, "unset-var", _parse_unset_var, paren=True)
    for r in TCP_RULESETS + (TCP_RESPONSE,):
        ra(r, "accept", _no_args(_stop))
        ra(r, "reject", _no_args(_reject))
    ra((TCP_CONNECTION, TCP_SESSION, TCP_CONTENT), "silent-drop", _no_args(_reject))
    ra(TCP_RESPONSE, "close", _no_args(_reject))
    for name in IGNORED_HTTP:
        ra((req, res), name, _parse_ignored)
    for name in UNSUPPORTED_HTTP:
        ra(
            (req, res),
            name,
            _parse_unsupported,
            paren=name in ("set-map", "del-map", "add-acl", "del-acl", "do-resolve"),
        )
    for name in UNSUPPORTED_TCP:
        ra(TCP_RULESETS, name, _parse_unsupported)
    for name in ADDRESS_REWRITES:
        ra((req, res) + TCP_RULESETS, name, _parse_ignored)
    for name in ("set-log-level", "set-nice", "set-tos", "set-mark", "capture"):
        ra(TCP_RULESETS, name, _parse_ignored)


_register_builtins()

__all__ = [
    "ACTIONS",
    "ActionError",
    "ActionSpec",
    "REJECT",
    "STOP",
    "register_action",
]
