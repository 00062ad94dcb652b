"""Owns sample fetches and converters: their registries, typed values, casts, and
the parsing of sample expressions ``fetch(arg1,arg2),conv1(arg),conv2`` into
precompiled evaluators.

Values
------
A sample is a plain Python value whose type is its sample type (HAProxy's):

===========  ==============================================================
``bool``     ``BOOL``
``int``      ``SINT`` (signed 64-bit)
``str``      ``STR`` -- one character per byte (latin-1), so header bytes
             round-trip; config literals are stored the same way (UTF-8 bytes)
``bytes``    ``BIN``
IPv4Address  ``IPV4`` (`ipaddress` objects, cached: see `ip_value`)
IPv6Address  ``IPV6``
===========  ==============================================================

``None`` means "no sample" (the fetch found nothing or a converter failed).

Registering a fetch (from any feature module, e.g. ``minilb.stick.fetches``)::

    from minilb.rules import samples as S

    def fetch_sc_http_req_rate(sess, txn, ctr, table):   # args already resolved
        ...
        return 3          # or None when not found

    S.register_fetch("sc_http_req_rate", fetch_sc_http_req_rate,
                     args=(S.ARG_SINT, S.ARG_TABLE), min_args=1, out=S.SINT,
                     needs=S.NEEDS_NONE)

- ``fn(sess, txn, *args)``: ``sess`` is the `Session`, ``txn`` the `Txn` or None in
  tcp rule sets.  Missing optional arguments are passed as ``None``.
- ``args``: argument types, parsed and checked at compile time: ``ARG_STR``,
  ``ARG_SINT``, ``ARG_TABLE`` (resolved through the compile context's tables mapping:
  the fn receives ``tables[name]``, or None when omitted -- use ``resolve`` to
  substitute the proxy's own table), ``ARG_VAR`` (a `VarRef`), ``ARG_REG`` (a
  compiled regex), ``ARG_MSK4``/``ARG_MSK6`` (netmask ints), ``ARG_TIME`` (ms).
- ``resolve(args: list, ctx) -> list``: optional hook run at compile time after the
  generic parsing (raise `SampleError` to report a problem; a missing table raises
  `TableNotFound`, reported in haproxy's words).  ``ctx`` is a
  `minilb.rules.context.CompileContext` (``ctx.tables``, ``ctx.proxy``,
  ``ctx.own_table``, ``ctx.config``, ``ctx.rng``, ``ctx.backends``); it is None when
  an expression is parsed outside a config (tests, the stats socket).
- ``multi(sess, txn, *args) -> iterable``: optional; the values an ACL iterates over
  (``hdr(x)`` yields every comma-separated value, ``sample`` context gets the last).
- ``needs``: what the fetch reads, as HAProxy classifies it (``NEEDS_L4``, ``NEEDS_L5``,
  ``NEEDS_REQ_BUF``, ``NEEDS_HTTP_REQ`` (request headers, gone once the response is
  processed), ``NEEDS_HTTP_REQ_LINE`` (what outlives them: the method), ``NEEDS_HTTP_RES``,
  ``NEEDS_HTTP_RES_LINE``, ``NEEDS_BACKEND``, ``NEEDS_SERVER``, ``NEEDS_NONE``); `SOURCES`
  says where each is available.  A rule set that cannot provide it makes an expression
  an error and an ACL a "will never match" warning, and such an ACL term never matches
  at run time (`missing_need`, `usable`).
- ``match``: the ACL match method when ``-m`` is not given (default: from ``out``).

Converters: ``register_converter(name, fn, args=..., min_args=..., in_type=STR, out=...)``
with ``fn(value, *args)`` receiving the value already cast to ``in_type`` (``ANY``
means uncast) and returning the new value or None; ``with_ctx=True`` passes
``fn(value, sess, txn, *args)`` (converters reading variables or tables).

`parse_expr(text, ctx)` returns a `SampleExpr` with ``eval(sess, txn)`` and
``eval_all(sess, txn)``; both are closures prepared at compile time.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

# --------------------------------------------------------------------------- types

BOOL = "bool"
SINT = "sint"
ADDR = "addr"  # IPv4 or IPv6
IPV4 = "ipv4"
IPV6 = "ipv6"
STR = "str"
BIN = "bin"
METH = "meth"
ANY = "any"

ARG_STR = "string"
ARG_SINT = "integer"
ARG_TABLE = "table"
ARG_VAR = "variable"
ARG_REG = "regex"
ARG_MSK4 = "IPv4 mask"
ARG_MSK6 = "IPv6 mask"
ARG_TIME = "delay"

NEEDS_NONE = frozenset()
NEEDS_L4 = frozenset({"l4"})
NEEDS_L5 = frozenset({"l5"})
NEEDS_REQ_BUF = frozenset({"req-buf"})
NEEDS_HTTP_REQ = frozenset({"http-req"})
NEEDS_HTTP_REQ_LINE = frozenset({"http-req-line"})
NEEDS_HTTP_RES = frozenset({"http-res"})
NEEDS_HTTP_RES_LINE = frozenset({"http-res-line"})
NEEDS_BACKEND = frozenset({"backend"})
NEEDS_SERVER = frozenset({"server"})

# --------------------------------------------------------------------------- where fetches work
#
# HAProxy 2.6 knows, for every fetch, what it reads (its "source") and so at which
# check places a rule may use it; minilb keeps the same two tables.  A fetch is usable
# at a place when ANY of its sources is available there; a rule set's place depends on
# the proxy's capabilities (a listen section is both frontend and backend).

#: check places in haproxy's order (the first one of a set names it in messages)
CHECK_PLACES = (
    ("fe-con-acc", "frontend tcp-request connection rule"),
    ("fe-ses-acc", "frontend tcp-request session rule"),
    ("fe-req-cnt", "frontend tcp-request content rule"),
    ("fe-hrq-hdr", "frontend http-request header rule"),
    ("fe-hrq-bdy", "frontend http-request body rule"),
    ("fe-set-bck", "frontend use-backend rule"),
    ("be-req-cnt", "backend tcp-request content rule"),
    ("be-hrq-hdr", "backend http-request header rule"),
    ("be-hrq-bdy", "backend http-request body rule"),
    ("be-set-srv", "backend use-server, balance or stick-match rule"),
    ("be-srv-con", "server source selection"),
    ("be-res-cnt", "backend tcp-response content rule"),
    ("be-hrs-hdr", "backend http-response header rule"),
    ("be-hrs-bdy", "backend http-response body rule"),
    ("be-sto-rul", "backend stick-store rule"),
    ("fe-res-cnt", "frontend tcp-response content rule"),
    ("fe-hrs-hdr", "frontend http-response header rule"),
    ("fe-hrs-bdy", "frontend http-response body rule"),
    ("fe-log-end", "logs"),
)
_PLACE_BIT = {name: 1 << i for i, (name, _) in enumerate(CHECK_PLACES)}


def _places(first: int, last: int) -> int:
    """The mask of check places ``first..last`` (indexes in `CHECK_PLACES`)."""
    return ((1 << (last + 1)) - 1) & ~((1 << first) - 1)


#: fetch sources in haproxy's order: need label -> (haproxy's name for it, usable places).
#: Request data is gone once the response is processed, except what HAProxy keeps
#: (the method, the version's kind: "HTTP request", persistent); response data exists
#: only from the response on.
SOURCES = {
    "l4": ("client address", _places(0, 18)),
    "l5": ("client-side connection", _places(1, 18)),
    "track": ("track counters", _places(0, 18)),
    "req-buf": ("request buffer", _places(2, 10)),
    "http-req": ("HTTP request headers", _places(2, 10)),
    "http-req-line": ("HTTP request", _places(2, 18)),
    "backend": ("backend", _places(6, 18)),
    "server": ("server", _places(10, 18)),
    "http-res": ("HTTP response headers", _places(11, 17)),
    "http-res-line": ("HTTP response", _places(11, 18)),
}
_ALL_PLACES = _places(0, 18)

#: rule set -> (places when the proxy is a frontend, places when it is a backend)
RULE_PLACES = {
    "tcp-request connection": ("fe-con-acc", None),
    "tcp-request session": ("fe-ses-acc", None),
    "tcp-request content": ("fe-req-cnt", "be-req-cnt"),
    "http-request": ("fe-hrq-hdr", "be-hrq-hdr"),
    "redirect": ("fe-hrq-hdr", "be-hrq-hdr"),
    "http-response": ("fe-hrs-hdr", "be-hrs-hdr"),
    "http-after-response": ("fe-hrs-hdr", "be-hrs-hdr"),
    "tcp-response content": ("fe-res-cnt", "be-res-cnt"),
    "use_backend": ("fe-set-bck", None),
    "use_backend format": ("fe-hrq-hdr", None),  # the backend name's %[...] (haproxy's choice)
    "use-server": (None, "be-set-srv"),
    "stick on": (None, "be-set-srv"),
    "stick match": (None, "be-set-srv"),
    "stick store-request": (None, "be-set-srv"),
    "stick store-response": (None, "be-sto-rul"),
}


def fetch_places(needs: frozenset) -> int:
    """Where a fetch reading ``needs`` is usable (a mask of `CHECK_PLACES`)."""
    if not needs:
        return _ALL_PLACES
    mask = 0
    for need in needs:
        mask |= SOURCES[need][1]
    return mask


def rule_places(ruleset: str, proxy_kind: str) -> int:
    """Where a rule of ``ruleset`` in a ``proxy_kind`` proxy evaluates its samples;
    0 for rule sets this table does not know (nothing is checked there)."""
    fe, be = RULE_PLACES.get(ruleset, (None, None))
    mask = 0
    if fe is not None and proxy_kind in ("frontend", "listen", "defaults"):
        mask |= _PLACE_BIT[fe]
    if be is not None and proxy_kind in ("backend", "listen", "defaults"):
        mask |= _PLACE_BIT[be]
    return mask


def place_name(places: int) -> str:
    """HAProxy's name for a set of places: the first one's."""
    for i, (_, label) in enumerate(CHECK_PLACES):
        if places & (1 << i):
            return label
    return "unknown sample check place"


def needs_label(needs: frozenset) -> str:
    """What a fetch reads, in haproxy's words (every source, in its order)."""
    return ",".join(label for need, (label, _) in SOURCES.items() if need in needs)


def usable(needs: frozenset, places: int) -> bool:
    """Whether a fetch reading ``needs`` works at ``places`` (0 = unchecked)."""
    return not places or bool(fetch_places(needs) & places)


def missing_need(needs: frozenset, ruleset: str, proxy_kind: str) -> str | None:
    """None when a fetch reading ``needs`` works in ``ruleset``, else what it reads
    (haproxy's "extracts information from '...'" wording)."""
    if usable(needs, rule_places(ruleset, proxy_kind)):
        return None
    return needs_label(needs)


IPv4 = ipaddress.IPv4Address
IPv6 = ipaddress.IPv6Address


class SampleError(Exception):
    """A sample expression or argument cannot be compiled; the message is HAProxy-worded."""


class UnavailableFetch(SampleError):
    """An expression's fetch cannot work where the rule runs (`missing_need`)."""


class TableNotFound(SampleError):
    """A table argument names no table.  HAProxy reports these on their own (not inside
    the rule's parse error), naming the argument: `where` tells the compiler which
    keyword and argument position; ``fetch``/``conv`` are filled as it propagates."""

    def __init__(self, table: str, hint: str = ""):
        super().__init__(f"unable to find table '{table}'{hint}")
        self.table = table
        self.hint = hint
        self.pos = 0
        self.fetch = ""
        self.conv = ""

    def describe(self, in_acl: bool, ruleset: str, proxy: str) -> str:
        fetch_kind = "ACL keyword" if in_acl else "sample fetch keyword"
        where = f"arg {self.pos} of "
        if self.conv:
            where += f"conversion keyword '{self.conv}' for {fetch_kind} '{self.fetch}'"
        else:
            where += f"{fetch_kind} '{self.fetch}'"
        if not in_acl:
            where += f" in {ruleset} expression"
        return f"unable to find table '{self.table}' referenced in {where} in proxy '{proxy}'{self.hint}."


@functools.lru_cache(maxsize=65536)
def ip_value(text: str) -> IPv4 | IPv6 | None:
    """The address object for ``text`` (cached: the same clients come back), or None."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        if text.startswith("::ffff:") and "." in text:
            return None
        return None


def cfg_str(text: str) -> str:
    """A configuration literal in the one-char-per-byte form samples use."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def to_bytes(value: str) -> bytes:
    """Back to wire bytes (the inverse of `cfg_str` / header decoding)."""
    return value.encode("latin-1", "replace")


# --------------------------------------------------------------------------- casts


def _str2int(text: str) -> int | None:
    """HAProxy's string-to-integer cast: an optional sign and the leading digits
    (0 when there are none); an empty string does not convert."""
    if not text:
        return None
    i, n, neg = 0, len(text), False
    if text[0] in "+-":
        neg = text[0] == "-"
        i = 1
    start = i
    while i < n and "0" <= text[i] <= "9":
        i += 1
    v = int(text[start:i]) if i > start else 0
    return -v if neg else v


def as_str(v: Any) -> str | None:
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return "1" if v else "0"
    if t is int or t is IPv4 or t is IPv6:
        return str(v)
    if t is bytes:
        return v.decode("latin-1")
    return None if v is None else str(v)


def as_int(v: Any) -> int | None:
    t = type(v)
    if t is int:
        return v
    if t is bool:
        return int(v)
    if t is str:
        return _str2int(v)
    if t is bytes:
        return _str2int(v.decode("latin-1"))
    if t is IPv4:
        return int(v)
    return None


def as_ip(v: Any) -> IPv4 | IPv6 | None:
    t = type(v)
    if t is IPv4 or t is IPv6:
        return v
    if t is str:
        return ip_value(v.strip())
    if t is int and not isinstance(v, bool) and 0 <= v < 1 << 32:
        return IPv4(v)
    if t is bytes:
        if len(v) == 4:
            return IPv4(v)
        if len(v) == 16:
            return IPv6(v)
    return None


def as_bin(v: Any) -> bytes | None:
    t = type(v)
    if t is bytes:
        return v
    if t is str:
        return v.encode("latin-1", "replace")
    if t is IPv4 or t is IPv6:
        return v.packed
    if t is int:
        return (v & (1 << 64) - 1).to_bytes(8, "big")
    if t is bool:
        return b"\x01" if v else b"\x00"
    return None


def as_bool(v: Any) -> bool | None:
    if v is None:
        return None
    t = type(v)
    if t is bool:
        return v
    if t is int:
        return v != 0
    if t is str:
        i = _str2int(v)
        return None if i is None else i != 0
    return bool(v)


def _ident(v: Any) -> Any:
    return v


CASTS: dict[str, Callable[[Any], Any]] = {
    STR: as_str,
    METH: as_str,
    SINT: as_int,
    ADDR: as_ip,
    IPV4: as_ip,
    IPV6: as_ip,
    BIN: as_bin,
    BOOL: as_bool,
    ANY: _ident,
}


def type_of(v: Any) -> str:
    t = type(v)
    return {bool: BOOL, int: SINT, str: STR, bytes: BIN, IPv4: IPV4, IPv6: IPV6}.get(t, ANY)


# --------------------------------------------------------------------------- registries


class VarRef:
    """A parsed variable name ``scope.name`` (scope: proc, sess, txn, req, res, check)."""

    __slots__ = ("scope", "name", "full")

    def __init__(self, scope: str, name: str):
        self.scope = scope
        self.name = name
        self.full = f"{scope}.{name}"

    def __repr__(self) -> str:
        return f"VarRef({self.full!r})"


VAR_SCOPES = ("proc", "sess", "txn", "req", "res", "check")


def parse_var_name(text: str) -> VarRef:
    scope, dot, name = text.partition(".")
    if not dot or scope not in VAR_SCOPES or not name:
        raise SampleError(
            f"invalid variable name '{text}'. A variable name must be start by its scope. "
            "The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'"
        )
    if not re.fullmatch(r"[A-Za-z0-9._]+", name):
        raise SampleError(f"invalid variable name '{text}'. Only alphanumeric, '_' and '.' are allowed")
    return VarRef(scope, name)


#: process-wide variables (``proc.*``): owned by this module, shared by all proxies
PROC_VARS: dict[str, Any] = {}


def var_store(ref: VarRef, sess: Any, txn: Any) -> dict | None:
    """The dict holding variables of ``ref``'s scope, or None when unavailable."""
    scope = ref.scope
    if scope == "sess":
        return sess.vars if sess is not None else None
    if scope == "proc":
        return PROC_VARS
    if txn is None:
        return None
    return txn.vars


def get_var(ref: VarRef, sess: Any, txn: Any) -> Any:
    store = var_store(ref, sess, txn)
    return None if store is None else store.get(ref.full)


class FetchDef:
    __slots__ = (
        "name",
        "fn",
        "args",
        "min_args",
        "out",
        "needs",
        "multi",
        "match",
        "resolve",
        "unsupported",
        "may_change",
    )

    def __init__(self, name, fn, args, min_args, out, needs, multi, match, resolve, unsupported=False):
        self.unsupported = unsupported
        #: a failed match may turn true with more request data (see `minilb.rules.payload`)
        self.may_change = False
        self.name = name
        self.fn = fn
        self.args = tuple(args)
        self.min_args = len(self.args) if min_args is None else min_args
        self.out = out
        self.needs = needs
        self.multi = multi
        self.match = match
        self.resolve = resolve


class ConvDef:
    __slots__ = ("name", "fn", "args", "min_args", "in_type", "out", "resolve", "with_ctx")

    def __init__(self, name, fn, args, min_args, in_type, out, resolve, with_ctx=False):
        self.with_ctx = with_ctx
        self.name = name
        self.fn = fn
        self.args = tuple(args)
        self.min_args = len(self.args) if min_args is None else min_args
        self.in_type = in_type
        self.out = out
        self.resolve = resolve


FETCHES: dict[str, FetchDef] = {}
CONVERTERS: dict[str, ConvDef] = {}


def register_fetch(
    name: str,
    fn: Callable[..., Any],
    args: Iterable[str] = (),
    min_args: int | None = None,
    out: str = STR,
    needs: frozenset = NEEDS_NONE,
    multi: Callable[..., Iterable[Any]] | None = None,
    match: str | None = None,
    resolve: Callable[[list, Any], list] | None = None,
) -> FetchDef:
    """Register (or replace) sample fetch ``name``; see the module docstring."""
    d = FetchDef(name, fn, args, min_args, out, needs, multi, match, resolve)
    FETCHES[name] = d
    return d


def register_converter(
    name: str,
    fn: Callable[..., Any],
    args: Iterable[str] = (),
    min_args: int | None = None,
    in_type: str = STR,
    out: str = STR,
    resolve: Callable[[list, Any], list] | None = None,
    with_ctx: bool = False,
) -> ConvDef:
    """Register (or replace) converter ``name``: ``fn(value, *args) -> value | None``
    (``fn(value, sess, txn, *args)`` with ``with_ctx=True``, for converters that read
    variables or tables)."""
    d = ConvDef(name, fn, args, min_args, in_type, out, resolve, with_ctx)
    CONVERTERS[name] = d
    return d


# --------------------------------------------------------------------------- argument parsing


def split_args(text: str) -> list[str]:
    """Split the inside of ``(...)`` on commas, honouring quotes and backslashes."""
    out: list[str] = []
    cur: list[str] = []
    quote = ""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and quote != "'":  # no escapes inside single quotes
            cur.append(text[i + 1])
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
            else:
                cur.append(c)
        elif c in "'\"":
            quote = c
        elif c == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def _find_close(text: str, start: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``start - 1`` (quotes and escapes honoured)."""
    quote = ""
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == ")":
            return i
        i += 1
    return -1


def _parse_msk4(text: str) -> int:
    if text.isdigit():
        bits = int(text)
        if bits > 32:
            raise ValueError(text)
        return ((1 << 32) - 1) ^ ((1 << (32 - bits)) - 1)
    return int(IPv4(text))


def _parse_msk6(text: str) -> int:
    if not text.isdigit() or int(text) > 128:
        raise ValueError(text)
    bits = int(text)
    return ((1 << 128) - 1) ^ ((1 << (128 - bits)) - 1)


def _convert_arg(kind: str, text: str, ctx: Any) -> Any:
    if kind == ARG_STR:
        return cfg_str(text)
    if kind == ARG_SINT:
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(text)
        return int(text)
    if kind == ARG_TABLE:
        if ctx is None:
            return text
        return ctx.table(text)
    if kind == ARG_VAR:
        return parse_var_name(text)
    if kind == ARG_REG:
        try:
            return re.compile(text)
        except re.error as e:
            raise SampleError(f"regex '{text}' is invalid ({e})") from None
    if kind == ARG_MSK4:
        return _parse_msk4(text)
    if kind == ARG_MSK6:
        return _parse_msk6(text)
    if kind == ARG_TIME:
        from minilb.units import parse_time

        return parse_time(text)
    raise SampleError(f"unknown argument type '{kind}'")


def parse_args(what: str, name: str, spec: tuple[str, ...], min_args: int, raw: list[str], ctx: Any) -> list:
    """Parse ``raw`` argument texts against ``spec``; ``what`` is "fetch method" or "converter"."""
    if len(raw) > len(spec):
        raise SampleError(
            f"{what} '{name}' : end of arguments expected at position {len(spec) + 1}, but got '{raw[len(spec)]}'"
        )
    if len(raw) < min_args:
        raise SampleError(f"{what} '{name}' : missing arguments (got {len(raw)}/{min_args})")
    out: list = []
    for pos, (kind, text) in enumerate(zip(spec, raw, strict=False), 1):
        if text == "" and pos > min_args:
            out.append(None)
            continue
        try:
            out.append(_convert_arg(kind, text, ctx))
        except TableNotFound as e:
            e.pos = pos
            raise
        except SampleError as e:
            raise SampleError(f"invalid args in {what} '{name}' : {e}") from None
        except ValueError:
            raise SampleError(
                f"{what} '{name}' : failed to parse '{text}' as type '{kind}' at position {pos}"
            ) from None
    out.extend([None] * (len(spec) - len(out)))
    return out


# --------------------------------------------------------------------------- expressions


class SampleExpr:
    """A compiled sample expression.

    ``eval(sess, txn)`` gives the value (the last occurrence for multi-valued fetches),
    ``eval_all(sess, txn)`` every value (what an ACL iterates over).  ``out`` is the
    static output type, ``fetch`` the `FetchDef`, ``fetch_args`` its parsed arguments,
    ``converters`` the converter names (an ACL keyword's default match needs them).
    """

    __slots__ = ("text", "fetch", "fetch_args", "converters", "out", "eval", "eval_all")

    def __init__(self, text, fetch, fetch_args, converters, out, eval_fn, eval_all):
        self.text = text
        self.fetch = fetch
        self.fetch_args = fetch_args
        self.converters = converters
        self.out = out
        self.eval = eval_fn
        self.eval_all = eval_all

    def __repr__(self) -> str:
        return f"SampleExpr({self.text!r})"


def _bind_fetch(fn: Callable[..., Any], args: list) -> Callable[[Any, Any], Any]:
    if not args:
        return fn
    if len(args) == 1:
        a = args[0]
        return lambda s, t: fn(s, t, a)
    if len(args) == 2:
        a, b = args
        return lambda s, t: fn(s, t, a, b)
    return lambda s, t: fn(s, t, *args)


def _bind_conv(conv: ConvDef, args: list) -> Callable[[Any, Any, Any], Any]:
    """A step ``(value, sess, txn) -> value | None`` casting to the converter's input."""
    fn = conv.fn
    cast = CASTS.get(conv.in_type, _ident)
    if conv.in_type == STR and not conv.with_ctx:
        # the usual case: the value is already a string, skip the cast call
        if not args:

            def step_str0(v, s, t):
                if type(v) is not str:
                    v = as_str(v)
                return fn(v)

            return step_str0

        def step_str(v, s, t):
            if type(v) is not str:
                v = as_str(v)
            return fn(v, *args)

        return step_str
    if conv.with_ctx:

        def step_ctx(v, s, t):
            v = cast(v)
            return None if v is None else fn(v, s, t, *args)

        return step_ctx
    if not args:

        def step0(v, s, t):
            v = cast(v)
            return None if v is None else fn(v)

        return step0

    def step(v, s, t):
        v = cast(v)
        return None if v is None else fn(v, *args)

    return step


def _chain(
    first: Callable[[Any, Any], Any], steps: list[Callable[[Any, Any, Any], Any]]
) -> Callable[[Any, Any], Any]:
    if not steps:
        return first
    if len(steps) == 1:
        (c1,) = steps

        def ev1(s, t):
            v = first(s, t)
            return None if v is None else c1(v, s, t)

        return ev1

    def ev(s, t):
        v = first(s, t)
        for c in steps:
            if v is None:
                return None
            v = c(v, s, t)
        return v

    return ev


def _apply_all(values: Iterable[Any], steps: list, s: Any, t: Any) -> list[Any]:
    out = []
    for v in values:
        for c in steps:
            if v is None:
                break
            v = c(v, s, t)
        if v is not None:
            out.append(v)
    return out


def parse_fetch_call(text: str, pos: int = 0) -> tuple[str, list[str] | None, int]:
    """Read ``name`` or ``name(args)`` at ``pos``; returns (name, raw args or None, end)."""
    m = re.compile(r"[A-Za-z0-9_.\-+]*").match(text, pos)
    end = m.end()
    name = text[pos:end]
    if end < len(text) and text[end] == "(":
        close = _find_close(text, end + 1)
        if close < 0:
            raise SampleError(f"missing closing ')' after arguments to '{name}'")
        return name, split_args(text[end + 1 : close]), close + 1
    return name, None, end


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close choice exists, else ""."""
    import difflib

    best = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean '{best[0]}'?)" if best else ""


def parse_expr(text: str, ctx: Any = None, fetch_defs: dict[str, FetchDef] | None = None) -> SampleExpr:
    """Compile ``fetch(args),conv(args),...``; raises `SampleError` with HAProxy's wording.

    ``fetch_defs`` lets the ACL layer look a name up in its own keyword table first.
    """
    name, raw, pos = parse_fetch_call(text)
    fdef = (fetch_defs or FETCHES).get(name) or FETCHES.get(name)
    if fdef is None or not name:
        raise SampleError(f"unknown fetch method '{name}'{did_you_mean(name, FETCHES)}")
    if raw is not None and raw != [""] and not fdef.args:
        raise SampleError(f"fetch method '{name}' : expected ')' before '{text[len(name) + 1 :]}'")
    if fdef.unsupported and ctx is not None:
        ctx.warn(f"sample fetch '{name}' needs a module minilb does not have: it never returns a value.")
    try:
        fargs = parse_args("fetch method", name, fdef.args, fdef.min_args, _raw(raw, fdef.args), ctx)
    except TableNotFound as e:
        e.fetch = name
        raise
    if fdef.resolve is not None:
        try:
            fargs = fdef.resolve(fargs, ctx)
        except TableNotFound as e:
            e.fetch = e.fetch or name
            raise
        except SampleError as e:
            raise SampleError(f"invalid args in fetch method '{name}' : {e}") from None
    steps: list[Callable[[Any, Any, Any], Any]] = []
    conv_names: list[str] = []
    out = fdef.out
    while pos < len(text):
        if text[pos] != ",":
            raise SampleError(f"missing comma after fetch keyword '{text[:pos]}'")
        cname, craw, pos = parse_fetch_call(text, pos + 1)
        cdef = CONVERTERS.get(cname)
        if cdef is None:
            raise SampleError(f"unknown converter '{cname}'{did_you_mean(cname, CONVERTERS)}")
        if craw is not None and craw != [""] and not cdef.args:
            raise SampleError(
                f"invalid arg 1 in converter '{cname}' : expected ')' before '{','.join(craw)})'"
            )
        try:
            cargs = parse_args("converter", cname, cdef.args, cdef.min_args, _raw(craw, cdef.args), ctx)
        except TableNotFound as e:
            e.fetch, e.conv = name, cname
            raise
        except SampleError as e:
            msg = str(e).replace(
                f"converter '{cname}' : failed",
                f"invalid arg {_argpos(str(e))} in converter '{cname}' : failed",
                1,
            )
            raise SampleError(msg) from None
        if cdef.resolve is not None:
            try:
                cargs = cdef.resolve(cargs, ctx)
            except TableNotFound as e:
                e.fetch, e.conv = name, cname
                raise
            except SampleError as e:
                raise SampleError(f"invalid args in converter '{cname}' : {e}") from None
        steps.append(_bind_conv(cdef, cargs))
        conv_names.append(cname)
        out = cdef.out
    first = _bind_fetch(*_counter_alias(name, fdef, fargs))
    ev = _chain(first, steps)
    if fdef.multi is not None:
        multi = fdef.multi
        margs = fargs
        if steps:

            def ev_all(s, t):
                return _apply_all(multi(s, t, *margs), steps, s, t)
        else:

            def ev_all(s, t):
                return multi(s, t, *margs)
    else:

        def ev_all(s, t):
            v = ev(s, t)
            return () if v is None else (v,)

    return SampleExpr(text, fdef, fargs, tuple(conv_names), out, ev, ev_all)


def _counter_alias(name: str, fdef: FetchDef, fargs: list) -> tuple[Callable[..., Any], list]:
    """The function and arguments that evaluate a fetch.  ``sc_<x>(N[,table])`` with
    a constant counter ``N`` is ``scN_<x>([table])`` by definition: it is evaluated by
    the ``scN_`` fetch, which the stick-table module may make faster than the generic
    one (no counter argument to check, no table to pass when it is the default)."""
    if (
        name.startswith("sc_")
        and fdef.args == (ARG_SINT, ARG_TABLE)
        and len(fargs) == 2
        and type(fargs[0]) is int
    ):
        alias = FETCHES.get(f"sc{fargs[0]}_{name[3:]}")
        if alias is not None and alias.args == (ARG_TABLE,) and alias.out == fdef.out:
            table = fargs[1]
            return alias.fn, ([] if table is None else [table])
    return fdef.fn, fargs


def _raw(raw: list[str] | None, spec: tuple[str, ...]) -> list[str]:
    """``f()`` gives no argument to a keyword without any, one empty one otherwise."""
    if raw is None or (raw == [""] and not spec):
        return []
    return raw


def _argpos(msg: str) -> str:
    m = re.search(r"at position (\d+)", msg)
    return m.group(1) if m else "1"


# --------------------------------------------------------------------------- HTTP helpers


def split_segments(raw: bytes) -> list[bytes]:
    """The raw text between commas (quotes honoured), whitespace kept."""
    if b'"' not in raw:
        return raw.split(b",")
    out = []
    start = 0
    quoted = False
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == 0x5C and quoted:
            i += 2
            continue
        if c == 0x22:
            quoted = not quoted
        elif c == 0x2C and not quoted:
            out.append(raw[start:i])
            start = i + 1
        i += 1
    out.append(raw[start:])
    return out


def split_values(raw: bytes) -> list[bytes]:
    """Comma-separated header values, trimmed, honouring double quotes."""
    if b'"' not in raw:
        return [p.strip(b" \t") for p in raw.split(b",")]
    out = []
    start = 0
    quoted = False
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == 0x5C and quoted:  # backslash
            i += 2
            continue
        if c == 0x22:
            quoted = not quoted
        elif c == 0x2C and not quoted:
            out.append(raw[start:i].strip(b" \t"))
            start = i + 1
        i += 1
    out.append(raw[start:].strip(b" \t"))
    return out


def header_lines(headers: list, name: bytes) -> list[bytes]:
    """Every full value of header ``name`` (lower-case bytes), in order."""
    return [v for k, v in headers if k.lower() == name]


def header_values(headers: list, name: bytes) -> list[bytes]:
    out: list[bytes] = []
    for k, v in headers:
        if k.lower() == name:
            if b"," in v:
                out.extend(split_values(v))
            else:
                out.append(v)
    return out


def last_header_value(headers: list, name: bytes) -> bytes | None:
    """The last comma-separated value of header ``name`` (the common ``hdr(x)`` case)."""
    for i in range(len(headers) - 1, -1, -1):
        k, v = headers[i]
        if k.lower() == name:
            if b"," not in v:
                return v
            if b'"' in v:
                return split_values(v)[-1]
            return v.rpartition(b",")[2].strip(b" \t")
    return None


def count_header_values(headers: list, name: bytes | None) -> int:
    n = 0
    for k, v in headers:
        if name is None or k.lower() == name:
            if b"," not in v:
                n += 1
            elif b'"' in v:
                n += len(split_values(v))
            else:
                n += v.count(b",") + 1
    return n


def _pick(values: list, occ: int | None) -> Any:
    if not values:
        return None
    if occ is None or occ == 0:
        return values[-1]
    if occ > 0:
        return values[occ - 1] if occ <= len(values) else None
    return values[occ] if -occ <= len(values) else None


def _dec(v: bytes | None) -> str | None:
    return None if v is None else v.decode("latin-1")


def _hname(name: str | None) -> bytes | None:
    return None if name is None else to_bytes(name.lower())


def _resolve_hdr_name(args: list, ctx: Any) -> list:
    args[0] = _hname(args[0])
    return args


def _req_headers(txn):
    return None if txn is None else txn.headers


def _res_headers(txn):
    return None if txn is None else txn.resp_headers


def _make_hdr_fetches(prefix: str, headers_of: Callable[[Any], Any], needs: frozenset) -> None:
    """Register ``{prefix}.hdr``, ``.fhdr``, ``.hdr_cnt``, ``.fhdr_cnt``, ``.hdr_val``, ``.hdrs``."""

    def all_values(txn, name, full):
        hs = headers_of(txn)
        if hs is None:
            return None
        if name is None:
            if full:
                return [v for _, v in hs]
            out = []
            for _, v in hs:
                out.extend(split_values(v))
            return out
        return header_lines(hs, name) if full else header_values(hs, name)

    def hdr(s, t, name, occ):
        if not occ and name is not None:
            hs = headers_of(t)
            if hs is None:
                return None
            v = last_header_value(hs, name)
            return None if v is None else v.decode("latin-1")
        vals = all_values(t, name, False)
        return _dec(_pick(vals, occ)) if vals else None

    def multi(vals, occ):
        if not vals:
            return ()
        if occ:
            v = _pick(vals, occ)
            return () if v is None else (v.decode("latin-1"),)
        return [v.decode("latin-1") for v in vals]

    def hdr_multi(s, t, name, occ):
        return multi(all_values(t, name, False), occ)

    def fhdr(s, t, name, occ):
        vals = all_values(t, name, True)
        return _dec(_pick(vals, occ)) if vals else None

    def fhdr_multi(s, t, name, occ):
        return multi(all_values(t, name, True), occ)

    def hdr_cnt(s, t, name):
        hs = headers_of(t)
        return None if hs is None else count_header_values(hs, name)

    def fhdr_cnt(s, t, name):
        vals = all_values(t, name, True)
        return None if vals is None else len(vals)

    def hdr_val(s, t, name, occ):
        v = hdr(s, t, name, occ)
        return None if v is None else _str2int(v)

    def hdr_val_multi(s, t, name, occ):
        return [i for i in (_str2int(v) for v in hdr_multi(s, t, name, occ)) if i is not None]

    def hdr_ip(s, t, name, occ):
        v = hdr(s, t, name, occ)
        return None if v is None else ip_value(v)

    def hdr_ip_multi(s, t, name, occ):
        return [i for i in (ip_value(v) for v in hdr_multi(s, t, name, occ)) if i is not None]

    def hdrs(s, t):
        hs = headers_of(t)
        if hs is None:
            return None
        return "".join(f"{k.decode('latin-1')}: {v.decode('latin-1')}\r\n" for k, v in hs)

    def hdr_names(s, t, delim):
        hs = headers_of(t)
        if hs is None:
            return None
        return (delim if delim is not None else ",").join(k.decode("latin-1").lower() for k, _ in hs)

    r = _resolve_hdr_name
    occ = (ARG_STR, ARG_SINT)
    register_fetch(f"{prefix}.hdr", hdr, occ, 0, STR, needs, hdr_multi, resolve=r)
    register_fetch(f"{prefix}.fhdr", fhdr, occ, 0, STR, needs, fhdr_multi, resolve=r)
    register_fetch(f"{prefix}.hdr_cnt", hdr_cnt, (ARG_STR,), 0, SINT, needs, resolve=r)
    register_fetch(f"{prefix}.fhdr_cnt", fhdr_cnt, (ARG_STR,), 0, SINT, needs, resolve=r)
    register_fetch(f"{prefix}.hdr_val", hdr_val, occ, 0, SINT, needs, hdr_val_multi, resolve=r)
    register_fetch(f"{prefix}.hdr_ip", hdr_ip, occ, 0, ADDR, needs, hdr_ip_multi, resolve=r)
    register_fetch(f"{prefix}.hdrs", hdrs, (), 0, STR, needs)
    register_fetch(f"{prefix}.hdr_names", hdr_names, (ARG_STR,), 0, STR, needs)


def parse_cookies(raw: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    for part in raw.split(b";"):
        name, eq, value = part.partition(b"=")
        name = name.strip(b" \t")
        if eq and name:
            out.append((name, value.strip(b" \t")))
    return out


def _cookie_values(txn, header: bytes, name: str | None) -> list[bytes] | None:
    if txn is None:
        return None
    hs = txn.headers if header == b"cookie" else txn.resp_headers
    out = []
    want = None if name is None else to_bytes(name)
    for line in header_lines(hs, header):
        for k, v in parse_cookies(line):
            if want is None or k == want:
                out.append(v)
    return out


def _cook(s, t, name):
    vals = _cookie_values(t, b"cookie", name)
    if not vals:
        return None
    return _dec(vals[0] if name is None else vals[-1])


def _cook_multi(s, t, name):
    vals = _cookie_values(t, b"cookie", name)
    return [v.decode("latin-1") for v in vals] if vals else ()


def _cook_cnt(s, t, name):
    vals = _cookie_values(t, b"cookie", name)
    return None if vals is None else len(vals)


def _cook_val(s, t, name):
    v = _cook(s, t, name)
    return None if v is None else _str2int(v)


def _scook(s, t, name):
    if t is None:
        return None
    vals = []
    want = None if name is None else to_bytes(name)
    for line in header_lines(t.resp_headers, b"set-cookie"):
        first = line.split(b";", 1)[0]
        k, eq, v = first.partition(b"=")
        if eq and (want is None or k.strip() == want):
            vals.append(v.strip())
    return _dec(vals[-1]) if vals else None


def query_params(query: str, delim: str | None) -> Iterable[tuple[str, str]]:
    parts = query.split("&") if not delim else re.split("[&" + re.escape(delim) + "]", query)
    for p in parts:
        k, _, v = p.partition("=")
        yield k, v


def _url_param(s, t, name, delim):
    if t is None or t.query is None:
        return None
    for k, v in query_params(t.query, delim):
        if name is None or k == name:
            return v
    return None


def _url_param_multi(s, t, name, delim):
    if t is None or t.query is None:
        return ()
    return [v for k, v in query_params(t.query, delim) if name is None or k == name]


def _url_param_val(s, t, name, delim):
    v = _url_param(s, t, name, delim)
    return None if v is None else _str2int(v)


def first_host(txn) -> str | None:
    """The first Host header's value (what ``base`` and redirects use)."""
    for k, v in txn.headers:
        if k.lower() == b"host":
            return v.decode("latin-1")
    return None


_host = first_host


def _base(s, t):
    if t is None:
        return None
    host = _host(t)
    return t.path if not host else host + t.path


def _path(s, t):
    return None if t is None else t.path


def _url(s, t):
    return None if t is None else t.uri.decode("latin-1")


def _query(s, t):
    return None if t is None else t.query


def _pathq(s, t):
    if t is None:
        return None
    return t.path if t.query is None else f"{t.path}?{t.query}"


def _method(s, t):
    return None if t is None else t.method


def _req_ver(s, t):
    return None if t is None else t.version


def _status(s, t):
    return None if t is None or not t.status else t.status


def _src(s, t):
    # once per connection: the parsed address stays on the session (hot path: track-sc0 src)
    src = s.src
    if s.src_ip_of is src:
        return s.src_ip
    value = s.src_ip = ip_value(src) if src else None
    s.src_ip_of = src
    return value


def _dst(s, t):
    return ip_value(s.dst) if s.dst else None


def _src_port(s, t):
    return s.src_port


def _dst_port(s, t):
    return s.dst_port


def _ssl_fc(s, t):
    return bool(s.ssl)


def _ssl_fc_sni(s, t):
    return s.sni if s.ssl and s.sni else None


def _fe_name(s, t):
    return s.frontend or None


def _be_name(s, t):
    if t is not None and t.backend:
        return t.backend
    return s.frontend or None


def _srv_name(s, t):
    return None if t is None else t.server


def _var(s, t, ref, default):
    v = get_var(ref, s, t)
    return default if v is None else v


def _int(s, t, n):
    return n


def _str(s, t, v):
    return v


def _bool(s, t, v):
    return v != 0


def _true(s, t):
    return True


def _false(s, t):
    return False


def _proto_http(s, t):
    return t is not None


def _date(s, t, offset):
    return s.now_ms // 1000 + (offset or 0)


def _http_first_req(s, t):
    return True


def _url_ip(s, t):
    if t is None:
        return None
    m = re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://([^/:?#]+)", t.uri.decode("latin-1"))
    return ip_value(m.group(1)) if m else None


def _url_port(s, t):
    if t is None:
        return None
    m = re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/:?#]+:(\d+)", t.uri.decode("latin-1"))
    return int(m.group(1)) if m else 80


L4 = NEEDS_L4
REQ = NEEDS_HTTP_REQ
RES = NEEDS_HTTP_RES
_r = register_fetch
_r("src", _src, out=ADDR, needs=L4)
_r("src_port", _src_port, out=SINT, needs=L4)
_r("dst", _dst, out=ADDR, needs=L4)
_r("dst_port", _dst_port, out=SINT, needs=L4)
_r("ssl_fc", _ssl_fc, out=BOOL, needs=NEEDS_L5)
_r("ssl_fc_sni", _ssl_fc_sni, out=STR, needs=NEEDS_L5)
_r("fe_name", _fe_name, out=STR)
_r("be_name", _be_name, out=STR, needs=NEEDS_BACKEND)
_r("srv_name", _srv_name, out=STR, needs=NEEDS_SERVER)
_r("path", _path, out=STR, needs=REQ)
_r("pathq", _pathq, out=STR, needs=REQ)
_r("url", _url, out=STR, needs=REQ)
_r("query", _query, out=STR, needs=REQ)
_r("base", _base, out=STR, needs=REQ)
_r("method", _method, out=METH, needs=NEEDS_HTTP_REQ_LINE, match="meth")
_r("req.ver", _req_ver, out=STR, needs=REQ)
_r("req_ver", _req_ver, out=STR, needs=REQ)
_r("req.proto_http", _proto_http, out=BOOL, needs=NEEDS_HTTP_REQ_LINE)
_r("req_proto_http", _proto_http, out=BOOL, needs=NEEDS_HTTP_REQ_LINE)
_r("wait_end", _true, out=BOOL)
_r("http_first_req", _http_first_req, out=BOOL, needs=NEEDS_HTTP_REQ_LINE)
_r("status", _status, out=SINT, needs=NEEDS_HTTP_RES_LINE)
_r("url_ip", _url_ip, out=IPV4, needs=REQ)
_r("url_port", _url_port, out=SINT, needs=REQ)
_r("var", _var, (ARG_VAR, ARG_STR), 1, ANY)
_r("int", _int, (ARG_SINT,), out=SINT)
_r("str", _str, (ARG_STR,), out=STR)
_r("bool", _bool, (ARG_SINT,), out=BOOL)
_r("always_true", _true, out=BOOL)
_r("always_false", _false, out=BOOL)
_r("date", _date, (ARG_SINT,), 0, SINT)


def _no_value(s, t, *args):
    return None


def _baseq(s, t):
    b = _base(s, t)
    if b is None or t.query is None:
        return b
    return f"{b}?{t.query}"


def _url32_text(t) -> str | None:
    # the first Host header followed by the whole URL
    if t is None:
        return None
    host = first_host(t)
    url = t.uri.decode("latin-1")
    return url if not host else host + url


def _hash32(text: str | None) -> int | None:
    return None if text is None else _mix32(_sdbm(text.encode("latin-1")))


def _base32(s, t):
    return _hash32(_base(s, t))


def _url32(s, t):
    return _hash32(_url32_text(t))


def _with_src(fn):
    def fetch(s, t):
        h = fn(s, t)
        src = _src(s, t)
        if h is None or src is None:
            return None
        return h.to_bytes(4, "big") + src.packed

    return fetch


def _env_resolve(args: list, ctx: Any) -> list:
    import os

    return [os.environ.get(args[0])]


def _rand_resolve(args: list, ctx: Any) -> list:
    import random

    rng = getattr(ctx, "rng", None) or random.Random(0)
    span = args[0] if args[0] else 1 << 32
    return [rng, span]


def _rand(s, t, rng, span):
    return rng.randrange(span)


_r("rand", _rand, (ARG_SINT, ARG_SINT), 0, SINT, resolve=_rand_resolve)


def _backend_resolve(args: list, ctx: Any) -> list:
    """``nbsrv([backend])``: the name checked against the config, the live mapping of
    backend runtimes bound (``compile_rules(..., backends=...)``; filled later is fine)."""
    name = args[0]
    if ctx is None:
        return [name, None]
    if name is None:
        name = ctx.proxy.name if ctx.proxy is not None else None
    elif ctx.config is not None and name not in {p.name for p in ctx.config.proxies if p.is_backend}:
        raise SampleError(
            f"unable to find backend '{name}'{did_you_mean(name, [p.name for p in ctx.config.backends])}"
        )
    return [name, getattr(ctx, "backends", None)]


def _nbsrv(s, t, name, backends):
    """Usable servers of a backend: runtimes expose ``servers`` with an ``up`` flag."""
    if backends is None:
        return None
    be = backends.get(name)
    if be is None:
        return None
    return sum(1 for srv in be.servers if getattr(srv, "up", False))


_r("nbsrv", _nbsrv, (ARG_STR, ARG_STR), 0, SINT, resolve=_backend_resolve)
_r("baseq", _baseq, out=STR, needs=REQ)
_r("base32", _base32, out=SINT, needs=REQ)
_r("base32+src", _with_src(_base32), out=BIN, needs=REQ)
_r("url32", _url32, out=SINT, needs=REQ)
_r("url32+src", _with_src(_url32), out=BIN, needs=REQ)
# haproxy reads the environment when the rule runs; minilb's does not change after start
_r("env", lambda s, t, value: value, (ARG_STR,), out=STR, resolve=_env_resolve)


# device-detection fetches of optional haproxy modules (haproxy's examples use them):
# accepted with a warning, they never return a value
for _name, _nargs in (("wurfl-get-all", 0), ("wurfl-get", 8), ("51d.all", 5), ("da-csv-fetch", 5)):
    FETCHES[_name] = FetchDef(
        _name, _no_value, (ARG_STR,) * _nargs, 0, STR, NEEDS_HTTP_REQ, None, None, None, True
    )
_r("url_param", _url_param, (ARG_STR, ARG_STR), 0, STR, REQ, _url_param_multi)
_r("urlp", _url_param, (ARG_STR, ARG_STR), 0, STR, REQ, _url_param_multi)
_r("urlp_val", _url_param_val, (ARG_STR, ARG_STR), 0, SINT, REQ)
_r("req.cook", _cook, (ARG_STR,), 0, STR, REQ, _cook_multi)
_r("cook", _cook, (ARG_STR,), 0, STR, REQ, _cook_multi)
_r("req.cook_cnt", _cook_cnt, (ARG_STR,), 0, SINT, REQ)
_r("cook_cnt", _cook_cnt, (ARG_STR,), 0, SINT, REQ)
_r("req.cook_val", _cook_val, (ARG_STR,), 0, SINT, REQ)
_r("cook_val", _cook_val, (ARG_STR,), 0, SINT, REQ)
_r("res.cook", _scook, (ARG_STR,), 0, STR, RES)
_r("scook", _scook, (ARG_STR,), 0, STR, RES)
_make_hdr_fetches("req", _req_headers, REQ)
_make_hdr_fetches("res", _res_headers, RES)
# historical names: hdr() is req.hdr() in requests; shdr() is res.hdr()
for _old, _new in (
    ("hdr", "req.hdr"),
    ("fhdr", "req.fhdr"),
    ("hdr_cnt", "req.hdr_cnt"),
    ("fhdr_cnt", "req.fhdr_cnt"),
    ("hdr_val", "req.hdr_val"),
    ("hdr_ip", "req.hdr_ip"),
    ("shdr", "res.hdr"),
    ("shdr_cnt", "res.hdr_cnt"),
    ("shdr_val", "res.hdr_val"),
    ("shdr_ip", "res.hdr_ip"),
):
    FETCHES[_old] = FETCHES[_new]


# --------------------------------------------------------------------------- converters


def _select(n: int, index: int, count: int | None) -> tuple[int, int] | None:
    """(first, last) of ``count`` items from 1-based ``index`` (negative: from the end)."""
    count = count or 1
    if index > 0:
        if index > n:
            return None
        return index - 1, min(n, index - 1 + count) - 1
    if index < 0 and -index <= n:
        last = n + index
        return max(0, last - count + 1), last
    return None


def _c_field(v: str, index: int, delims: str, count: int | None) -> str | None:
    """Field ``index`` (1-based, negative from the end) and ``count`` following ones,
    keeping the original delimiters between them (HAProxy's ``field``)."""
    if not delims:
        return None
    pieces = re.split("([" + re.escape(delims) + "])", v)  # fields at even indexes
    sel = _select(len(pieces[0::2]), index, count)
    if sel is None:
        return None
    return "".join(pieces[2 * sel[0] : 2 * sel[1] + 1])


def _c_word(v: str, index: int, delims: str, count: int | None) -> str | None:
    """Word ``index`` (1-based, negative from the end; empty words skipped) and ``count``
    following ones, with the original text between them (HAProxy's ``word``)."""
    if not delims:
        return None
    spans = [m.span() for m in re.finditer("[^" + re.escape(delims) + "]+", v)]
    sel = _select(len(spans), index, count)
    if sel is None:
        return None
    return v[spans[sel[0]][0] : spans[sel[1]][1]]


def _regsub_resolve(args: list, ctx: Any) -> list:
    reg, subst, flags = args
    flags = flags or ""
    if any(f not in "ig" for f in flags):
        raise SampleError(f"invalid regex flags '{flags}'")
    if "i" in flags:
        reg = re.compile(reg.pattern, re.IGNORECASE)
    # HAProxy's back references are \1..\9; Python's re accepts the same form
    return [reg, subst, 0 if "g" in flags else 1]


def _c_regsub(v: str, reg: re.Pattern, subst: str, count: int) -> str:
    return reg.sub(subst, v, count=count)


def _c_ipmask(v, m4: int, m6: int | None):
    if type(v) is IPv4:
        return IPv4(int(v) & m4)
    if type(v) is IPv6:
        if m6 is None:
            return None
        return IPv6(int(v) & m6)
    return None


def _c_bytes(v: bytes, offset: int, length: int | None) -> bytes | None:
    if offset < 0 or offset > len(v):
        return None
    return v[offset:] if length is None else v[offset : offset + length]


def _arith_resolve(args: list, ctx: Any) -> list:
    text = args[0]
    if re.fullmatch(r"[+-]?\d+", text):
        return [int(text)]
    return [parse_var_name(text)]


_I64 = (1 << 63) - 1


def _clip(v: int) -> int:
    return max(-_I64 - 1, min(_I64, v))


def _div(a: int, b: int) -> int:
    if b == 0:
        return _I64
    q = abs(a) // abs(b)
    return _clip(q if (a >= 0) == (b >= 0) else -q)


def _mod(a: int, b: int) -> int:
    if b == 0:
        return 0
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


_ARITH = {
    "add": lambda a, b: _clip(a + b),
    "sub": lambda a, b: _clip(a - b),
    "mul": lambda a, b: _clip(a * b),
    "div": _div,
    "mod": _mod,
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
}


def _hex(v: bytes) -> str:
    return v.hex().upper()


def _b64(v: bytes) -> str:
    return base64.b64encode(v).decode("ascii")


def _b64dec(v: str) -> bytes | None:
    try:
        return base64.b64decode(v, validate=True)
    except ValueError:
        return None


_rc = register_converter
_rc("lower", str.lower)
_rc("upper", str.upper)
_rc("length", len, out=SINT)
_rc("len", len, out=SINT)
_rc("hex", _hex, in_type=BIN, out=STR)
_rc("base64", _b64, in_type=BIN, out=STR)
_rc("b64dec", _b64dec, in_type=STR, out=BIN)
_rc("ipmask", _c_ipmask, (ARG_MSK4, ARG_MSK6), 1, in_type=ADDR, out=ADDR)


def _index_resolve(args: list, ctx: Any) -> list:
    if args[0] == 0:
        raise SampleError("Unexpected value 0 for index")
    if args[2] is not None and args[2] < 0:
        raise SampleError(f"Unexpected value {args[2]} for count")
    return args


_rc("field", _c_field, (ARG_SINT, ARG_STR, ARG_SINT), 2, resolve=_index_resolve)
_rc("word", _c_word, (ARG_SINT, ARG_STR, ARG_SINT), 2, resolve=_index_resolve)
_rc("regsub", _c_regsub, (ARG_REG, ARG_STR, ARG_STR), 2, resolve=_regsub_resolve)
_rc("bytes", _c_bytes, (ARG_SINT, ARG_SINT), 1, in_type=BIN, out=BIN)
_rc("neg", lambda v: -v, in_type=SINT, out=SINT)
_rc("not", lambda v: int(not v), in_type=SINT, out=BOOL)
_rc("bool", lambda v: v != 0, in_type=SINT, out=BOOL)
_rc("odd", lambda v: bool(v & 1), in_type=SINT, out=BOOL)
_rc("even", lambda v: not v & 1, in_type=SINT, out=BOOL)
_rc("abs", abs, in_type=SINT, out=SINT)
_rc("debug", lambda v, *a: v, (ARG_STR, ARG_STR), 0, in_type=ANY, out=ANY)


def _arith_fn(op: Callable[[int, int], int]) -> Callable[..., Any]:
    def conv(v: int, s: Any, t: Any, arg: Any) -> int | None:
        if type(arg) is int:
            return op(v, arg)
        other = as_int(get_var(arg, s, t))
        return None if other is None else op(v, other)

    return conv


for _name, _op in _ARITH.items():
    _rc(_name, _arith_fn(_op), (ARG_STR,), in_type=SINT, out=SINT, resolve=_arith_resolve, with_ctx=True)


def _strcmp_conv(v: str, s: Any, t: Any, ref: VarRef) -> int | None:
    other = as_str(get_var(ref, s, t))
    if other is None:
        return None
    return (v > other) - (v < other)


_rc("strcmp", _strcmp_conv, (ARG_VAR,), out=SINT, with_ctx=True)


# --------------------------------------------------------------------------- variables as converters

VAR_CONDITIONS = ("ifexists", "ifnotexists", "ifempty", "ifnotempty", "ifset", "ifnotset", "ifgt", "iflt")


def parse_var_conditions(words: list[str]) -> tuple[str, ...]:
    for c in words:
        if c not in VAR_CONDITIONS:
            raise SampleError(f"'{c}' is not a valid condition for a variable")
    if len(words) > 4:
        raise SampleError("too many conditions (at most 4)")
    return tuple(words)


def var_conditions_hold(conds: tuple[str, ...], current: Any, value: Any) -> bool:
    """Whether ``set-var(name, conds...)`` may store ``value`` over ``current`` (None: unset)."""
    for c in conds:
        if c in ("ifexists", "ifset"):
            ok = current is not None
        elif c in ("ifnotexists", "ifnotset"):
            ok = current is None
        elif c in ("ifempty", "ifnotempty"):
            empty = type(value) in (str, bytes) and len(value) == 0
            ok = empty if c == "ifempty" else not empty
        else:  # ifgt / iflt: only when both are integers
            if type(current) is int and type(value) is int:
                ok = current > value if c == "ifgt" else current < value
            else:
                ok = True
        if not ok:
            return False
    return True


def set_var_value(ref: VarRef, conds: tuple[str, ...], sess: Any, txn: Any, value: Any) -> None:
    store = var_store(ref, sess, txn)
    if store is None:
        return
    if conds and not var_conditions_hold(conds, store.get(ref.full), value):
        return
    store[ref.full] = value


def _set_var_resolve(args: list, ctx: Any) -> list:
    return [args[0], parse_var_conditions([a for a in args[1:] if a])]


def _set_var_conv(v: Any, s: Any, t: Any, ref: VarRef, conds: tuple[str, ...]) -> Any:
    set_var_value(ref, conds, s, t, v)
    return v


_rc(
    "set-var",
    _set_var_conv,
    (ARG_VAR, ARG_STR, ARG_STR, ARG_STR, ARG_STR),
    1,
    in_type=ANY,
    out=ANY,
    resolve=_set_var_resolve,
    with_ctx=True,
)


def _concat(v: str, s: Any, t: Any, start: str | None, ref: VarRef | None, end: str | None) -> str:
    middle = ""
    if ref is not None:
        got = get_var(ref, s, t)
        middle = "" if got is None else (as_str(got) or "")
    return v + (start or "") + middle + (end or "")


_rc("concat", _concat, (ARG_STR, ARG_VAR, ARG_STR), 0, with_ctx=True)


# --------------------------------------------------------------------------- text and hashes


def _url_dec(v: str, in_form: int | None) -> str | None:
    from urllib.parse import unquote_to_bytes

    if in_form:
        v = v.replace("+", " ")
    elif "?" in v:
        before, q, after = v.partition("?")
        v = before + q + after.replace("+", " ")
    return unquote_to_bytes(v).decode("latin-1")


def _mix32(a: int) -> int:
    """Bob Jenkins' 32-bit integer avalanche followed by a multiplication by a prime near
    3/4 of 2**32 (what ``djb2(1)`` etc. apply in haproxy)."""
    m = 0xFFFFFFFF
    a = ((a + 0x7ED55D16) + (a << 12)) & m
    a = ((a ^ 0xC761C23C) ^ (a >> 19)) & m
    a = ((a + 0x165667B1) + (a << 5)) & m
    a = ((a + 0xD3A2646C) ^ (a << 9)) & m
    a = ((a + 0xFD7046C5) + (a << 3)) & m
    a = ((a ^ 0xB55A4F09) ^ (a >> 16)) & m
    return (a * 3221225473) & m


def _hash_conv(fn: Callable[[bytes], int]) -> Callable[..., int]:
    def conv(v: bytes, avalanche: int | None) -> int:
        h = fn(v) & 0xFFFFFFFF
        return _mix32(h) if avalanche else h

    return conv


def _djb2(data: bytes) -> int:
    h = 5381
    for c in data:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


def _sdbm(data: bytes) -> int:
    h = 0
    for c in data:
        h = (c + (h << 6) + (h << 16) - h) & 0xFFFFFFFF
    return h


def _crc32(data: bytes) -> int:
    import zlib

    return zlib.crc32(data)


def _sha2(v: bytes, bits: int | None) -> bytes | None:
    import hashlib

    name = {None: "sha256", 224: "sha224", 256: "sha256", 384: "sha384", 512: "sha512"}.get(bits)
    return None if name is None else hashlib.new(name, v).digest()


def _sha1(v: bytes) -> bytes:
    import hashlib

    return hashlib.sha1(v).digest()


_rc("url_dec", _url_dec, (ARG_SINT,), 0)
_rc("ltrim", lambda v, chars: v.lstrip(chars), (ARG_STR,))
_rc("rtrim", lambda v, chars: v.rstrip(chars), (ARG_STR,))
_rc("djb2", _hash_conv(_djb2), (ARG_SINT,), 0, in_type=BIN, out=SINT)
_rc("sdbm", _hash_conv(_sdbm), (ARG_SINT,), 0, in_type=BIN, out=SINT)
_rc("crc32", _hash_conv(_crc32), (ARG_SINT,), 0, in_type=BIN, out=SINT)
_rc("sha1", _sha1, in_type=BIN, out=BIN)
_rc("sha2", _sha2, (ARG_SINT,), 0, in_type=BIN, out=BIN)


# --------------------------------------------------------------------------- maps


class MapFile:
    """A map file's entries (``key value`` per line, ``#`` comments), read at compile time."""

    def __init__(self, path: str, entries: list[tuple[str, str]]):
        self.path = path
        self.entries = entries


_MAP_CACHE: dict[str, MapFile] = {}


def read_pattern_lines(path: str, error_suffix: str = "") -> list[str]:
    """The lines of a pattern or map file that are not blank nor ``#`` comments."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        raise SampleError(f"failed to open pattern file <{path}>{error_suffix}") from None
    out = []
    for raw in data.decode("latin-1").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def load_map(path: str) -> MapFile:
    cached = _MAP_CACHE.get(path)
    if cached is not None:
        return cached
    entries = []
    for line in read_pattern_lines(path, "."):
        parts = line.split(None, 1)
        entries.append((parts[0], parts[1].strip() if len(parts) > 1 else ""))
    m = MapFile(path, entries)
    _MAP_CACHE[path] = m
    return m


def clear_map_cache() -> None:
    _MAP_CACHE.clear()


def _out_value(text: str, out: str) -> Any:
    if out == SINT:
        return _str2int(text)
    if out == ADDR:
        return ip_value(text)
    return text


def _make_map(match: str, out: str) -> Callable[[list, Any], list]:
    def resolve(args: list, ctx: Any) -> list:
        path, default = args
        m = load_map(path)
        dflt = None if default is None else _out_value(default, out)
        if match == "str":
            table: dict[str, Any] = {}
            for k, v in m.entries:
                table.setdefault(k, _out_value(v, out))
            return [lambda v: table.get(v, dflt)]
        if match == "beg":
            ents = [(k, _out_value(v, out)) for k, v in m.entries]

            def beg(v):
                for k, val in ents:
                    if v.startswith(k):
                        return val
                return dflt

            return [beg]
        if match == "ip":
            from minilb.rules.patterns import IPSet

            nets = IPSet()
            for k, v in m.entries:
                try:
                    nets.add(k, _out_value(v, out))
                except ValueError:
                    raise SampleError(
                        f"'{k}' is not a valid IPv4 or IPv6 address in map file <{path}>"
                    ) from None

            def ipm(v):
                found = nets.lookup(v)
                return dflt if found is None else found

            return [ipm]
        # sub / end / reg / dom / dir
        from minilb.rules.patterns import compile_matcher_with_values

        finder = compile_matcher_with_values(match, [(k, _out_value(v, out)) for k, v in m.entries], False)

        def other(v):
            found = finder(v)
            return dflt if found is None else found

        return [other]

    return resolve


def _map_run(v, lookup, _unused=None):
    return lookup(v)


def _register_maps() -> None:
    for match in ("str", "beg", "sub", "end", "reg", "dom", "dir", "ip"):
        in_type = ADDR if match == "ip" else STR
        for suffix, out in (("", STR), ("_int", SINT), ("_ip", ADDR), ("_str", STR)):
            name = f"map_{match}{suffix}"
            _rc(
                name, _map_run, (ARG_STR, ARG_STR), 1, in_type=in_type, out=out, resolve=_make_map(match, out)
            )
    _rc("map", _map_run, (ARG_STR, ARG_STR), 1, in_type=STR, out=STR, resolve=_make_map("str", STR))


_register_maps()


# the raw-buffer fetches of tcp-request content inspection register themselves
from minilb.rules import payload as _payload  # noqa: E402,F401
