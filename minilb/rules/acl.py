"""Owns ACLs and conditions: ``acl NAME FETCH [-i] [-m METHOD] [-f FILE] [-n] [--]
VALUES...`` lines, the ACL keyword table (``path_beg`` = ``path`` matched with
``beg``), the predefined ACLs (TRUE, LOCALHOST, METH_GET...), and ``if|unless``
conditions (implicit AND, ``or``/``||``, ``!``, anonymous ``{ ... }``).

Everything compiles to closures ``fn(sess, txn) -> bool`` so that evaluation on the
request path is a few calls over precomputed sets, tuples and regexes.

Feature modules may add ACL keywords over their own fetches::

    from minilb.rules.acl import register_acl_keyword
    register_acl_keyword("src_conn_rate", "src_conn_rate", "int")

(a plain registered fetch is usable in an ACL without this: its default match method
comes from its output type: bool, int, ip, str, bin).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minilb.rules import samples as S
from minilb.rules.patterns import MATCH_METHODS, PATTERNLESS, compile_matcher, read_pattern_file

Pred = Callable[[Any, Any], bool]

#: ACL keyword -> (fetch name, match method)
ACL_KEYWORDS: dict[str, tuple[str, str]] = {}


def register_acl_keyword(name: str, fetch: str, match: str) -> None:
    """Make ``name`` an ACL keyword reading fetch ``fetch`` with ``match`` by default."""
    ACL_KEYWORDS[name] = (fetch, match)


_SUFFIX_METHODS = ("beg", "dir", "dom", "end", "len", "reg", "sub")
for _base_kw, _fetch in (
    ("path", "path"),
    ("url", "url"),
    ("base", "base"),
    ("hdr", "req.hdr"),
    ("shdr", "res.hdr"),
    ("cook", "req.cook"),
    ("req.cook", "req.cook"),
    ("urlp", "url_param"),
    ("url_param", "url_param"),
    ("scook", "res.cook"),
):
    register_acl_keyword(_base_kw, _fetch, "str")
    for _m in _SUFFIX_METHODS:
        register_acl_keyword(f"{_base_kw}_{_m}", _fetch, _m)
register_acl_keyword("pathq", "pathq", "str")
register_acl_keyword("hdr_cnt", "req.hdr_cnt", "int")
register_acl_keyword("hdr_ip", "req.hdr_ip", "ip")
register_acl_keyword("hdr_val", "req.hdr_val", "int")
register_acl_keyword("shdr_cnt", "res.hdr_cnt", "int")
register_acl_keyword("shdr_ip", "res.hdr_ip", "ip")
register_acl_keyword("shdr_val", "res.hdr_val", "int")
register_acl_keyword("cook_cnt", "req.cook_cnt", "int")
register_acl_keyword("cook_val", "req.cook_val", "int")
register_acl_keyword("urlp_val", "urlp_val", "int")
register_acl_keyword("url_ip", "url_ip", "ip")
register_acl_keyword("url_port", "url_port", "int")
register_acl_keyword("method", "method", "meth")
register_acl_keyword("req.ver", "req.ver", "str")
register_acl_keyword("req_ver", "req.ver", "str")
register_acl_keyword("status", "status", "int")
register_acl_keyword("ssl_fc_sni_end", "ssl_fc_sni", "end")
register_acl_keyword("ssl_fc_sni_reg", "ssl_fc_sni", "reg")

#: default match per output type, for fetches that are not ACL keywords (or have converters)
_TYPE_MATCH = {
    S.BOOL: "bool",
    S.SINT: "int",
    S.ADDR: "ip",
    S.IPV4: "ip",
    S.IPV6: "ip",
    S.STR: "str",
    S.BIN: "bin",
    S.METH: "meth",
    S.ANY: "str",
}

#: HAProxy 2.6's predefined ACLs (configuration.txt 7.4; HTTP_3.0 came later)
PREDEFINED: dict[str, tuple[str, ...]] = {
    "FALSE": ("always_false",),
    "HTTP": ("req.proto_http",),
    "HTTP_1.0": ("req.ver", "1.0"),
    "HTTP_1.1": ("req.ver", "1.1"),
    "HTTP_2.0": ("req.ver", "2.0"),
    "HTTP_CONTENT": ("req.hdr_val(content-length)", "gt", "0"),
    "HTTP_URL_ABS": ("url_reg", "^[^/:]*://"),
    "HTTP_URL_SLASH": ("url_beg", "/"),
    "HTTP_URL_STAR": ("url", "*"),
    "LOCALHOST": ("src", "127.0.0.1/8", "::1"),
    "METH_CONNECT": ("method", "CONNECT"),
    "METH_DELETE": ("method", "DELETE"),
    "METH_GET": ("method", "GET", "HEAD"),
    "METH_HEAD": ("method", "HEAD"),
    "METH_OPTIONS": ("method", "OPTIONS"),
    "METH_POST": ("method", "POST"),
    "METH_PUT": ("method", "PUT"),
    "METH_TRACE": ("method", "TRACE"),
    "RDP_COOKIE": ("req.rdp_cookie_cnt", "gt", "0"),
    "REQ_CONTENT": ("req.len", "gt", "0"),
    "TRUE": ("always_true",),
    "WAIT_END": ("wait_end",),
}


class AclTerm:
    """One compiled ACL expression (a fetch, a match method and its patterns)."""

    __slots__ = ("text", "pred", "needs", "expr", "method")

    def __init__(self, text: str, pred: Pred, needs: frozenset, expr: S.SampleExpr, method: str):
        self.text = text
        self.pred = pred
        self.needs = needs
        self.expr = expr
        self.method = method

    @property
    def keyword_needs(self) -> tuple[str, frozenset]:
        return self.text.partition("(")[0].partition(",")[0], self.needs


class Acl:
    """A named ACL: its lines OR'ed together."""

    __slots__ = ("name", "terms", "pred")

    def __init__(self, name: str):
        self.name = name
        self.terms: list[AclTerm] = []
        self.pred: Pred = _never

    def add(self, term: AclTerm) -> None:
        self.terms.append(term)
        preds = [t.pred for t in self.terms]
        if len(preds) == 1:
            self.pred = preds[0]
        else:

            def any_line(s, t, preds=tuple(preds)):
                for p in preds:
                    if p(s, t):
                        return True
                return False

            self.pred = any_line

    def pred_at(self, places: int) -> Pred:
        """The predicate as evaluated at ``places`` (a `samples.CHECK_PLACES` mask, 0 =
        anywhere): lines whose fetch cannot work there find no sample, so never match."""
        if not places:
            return self.pred
        live = [t for t in self.terms if S.usable(t.needs, places)]
        if len(live) == len(self.terms):
            return self.pred
        if not live:
            return _never
        sub = Acl(self.name)
        for t in live:
            sub.add(t)
        return sub.pred

    @property
    def needs(self) -> frozenset:
        """What the fetches of every line need (see `samples.NEEDS_*`)."""
        out: frozenset = frozenset()
        for t in self.terms:
            out |= t.needs
        return out


def _never(s: Any, t: Any) -> bool:
    return False


def _always(s: Any, t: Any) -> bool:
    return True


def parse_acl_expr(
    words: list[str] | tuple[str, ...], ctx: Any = None, warnings: list[str] | None = None
) -> AclTerm:
    """Compile ``FETCH [flags] [operator] [values]`` (the words after the ACL name)."""
    if not words:
        raise S.SampleError("missing ACL expression")
    text = words[0]
    name, _, _ = S.parse_fetch_call(text)
    kw = ACL_KEYWORDS.get(name)
    fetch_defs = None
    if kw is not None:
        fdef = S.FETCHES.get(kw[0])
        if fdef is not None:
            fetch_defs = {name: fdef}
    try:
        expr = S.parse_expr(text, ctx, fetch_defs)
    except S.TableNotFound:
        raise
    except S.SampleError as e:
        msg = str(e)
        if kw is not None and msg.startswith(f"fetch method '{name}'"):
            msg = "ACL keyword" + msg[len("fetch method") :]
        if "pattern file" not in msg and not msg.startswith("ACL keyword"):
            hint = ""
            if msg.startswith("unknown fetch method") and "(did you mean" not in msg:
                hint = S.did_you_mean(name, list(ACL_KEYWORDS) + list(S.FETCHES))
            base, sep, dym = msg.partition(" (did you mean")
            dym = (sep + dym) if sep else hint
            raise S.SampleError(f"{base} in ACL expression '{text}'{dym}") from None
        raise S.SampleError(msg) from None
    icase = False
    method: str | None = None
    patterns: list[str] = []
    i = 1
    n = len(words)
    while i < n and words[i].startswith("-"):
        flag = words[i]
        if flag == "--":
            i += 1
            break
        if flag == "-i":
            icase = True
        elif flag == "-n":
            pass
        elif flag in ("-m", "-f", "-u", "-M"):
            if flag == "-M":
                i += 1
                continue
            if i + 1 >= n:
                raise S.SampleError(f"'{flag}' expects an argument")
            arg = words[i + 1]
            if flag == "-m":
                if arg not in MATCH_METHODS:
                    raise S.SampleError(f"unknown matching method '{arg}' when parsing ACL expression")
                method = arg
            elif flag == "-f":
                patterns.extend(read_pattern_file(arg))
            i += 1
        else:
            raise S.SampleError(
                f"'{flag}' is not a valid ACL option. Please use '--' before any pattern beginning with a '-'"
            )
        i += 1
    patterns.extend(words[i:])
    if method is None:
        if kw is not None and not expr.converters:
            method = kw[1]
        elif expr.fetch.match is not None and not expr.converters:
            method = expr.fetch.match
        elif expr.out == S.ANY:
            raise S.SampleError(
                "matching method must be specified first (using '-m') when using a sample fetch of this type "
                f"('{name}')"
            )
        else:
            method = _TYPE_MATCH.get(expr.out, "str")
    if not patterns and method not in PATTERNLESS and warnings is not None:
        warnings.append(
            f"parsing acl keyword '{name}' :\n"
            "  no pattern to match against were provided, so this ACL will never match.\n"
            "  If this is what you intended, please add '--' to get rid of this warning.\n"
            "  If you intended to match only for existence, please use '-m found'.\n"
            "  If you wanted to force an int to match as a bool, please use '-m bool'.\n"
        )
    matcher = compile_matcher(method, patterns, icase)
    return AclTerm(text, _term_pred(expr, method, matcher), expr.fetch.needs, expr, method)


def _term_pred(expr: S.SampleExpr, method: str, matcher: Callable[[Any], bool]) -> Pred:
    pred = _plain_term_pred(expr, method, matcher)
    if not expr.fetch.may_change:
        return pred
    from minilb.rules.payload import NeedMore

    need_more = NeedMore()

    def may_change(s, t):
        if pred(s, t):
            return True
        if not s.req_final:
            raise need_more
        return False

    return may_change


def _plain_term_pred(expr: S.SampleExpr, method: str, matcher: Callable[[Any], bool]) -> Pred:
    ev = expr.eval
    if expr.fetch.multi is not None:
        ev_all = expr.eval_all
        if method == "found":

            def found_any(s, t):
                for _ in ev_all(s, t):
                    return True
                return False

            return found_any

        def any_value(s, t):
            for v in ev_all(s, t):
                if matcher(v):
                    return True
            return False

        return any_value
    if method == "found":
        return lambda s, t: ev(s, t) is not None

    int_range = getattr(matcher, "int_range", None)
    if int_range is not None:
        # one integer range (``gt 0``): an int sample is compared here, without
        # the matcher's call and its conversion
        lo, hi = int_range

        def one_int(s, t):
            v = ev(s, t)
            if v.__class__ is int:
                return lo <= v <= hi
            return v is not None and matcher(v)

        return one_int

    def one_value(s, t):
        v = ev(s, t)
        return v is not None and matcher(v)

    return one_value


_PREDEFINED_CACHE: dict[str, Acl] = {}


def predefined_acl(name: str) -> Acl | None:
    words = PREDEFINED.get(name)
    if words is None:
        return None
    acl = _PREDEFINED_CACHE.get(name)
    if acl is None:
        acl = Acl(name)
        acl.add(parse_acl_expr(words))
        _PREDEFINED_CACHE[name] = acl
    return acl


class Condition:
    """A compiled ``if|unless`` condition: ``pred(sess, txn) -> bool`` (polarity applied),
    ``needs`` the union of what its fetches need, and each anonymous/named ACL used.

    Named ACLs are referenced, not copied: an ``acl`` line of the same name that comes
    after the rule still counts (as in haproxy); `refresh` rebuilds ``pred`` once every
    line has been read.
    """

    __slots__ = ("pred", "needs", "uses", "_suites", "_unless", "_places")

    def __init__(
        self,
        suites: list[list[tuple[bool, Any]]],
        unless: bool,
        needs: frozenset,
        uses: list[tuple[str, list[tuple[str, frozenset]]]],
        places: int = 0,
    ):
        self._suites = suites
        self._unless = unless
        self._places = places
        self.needs = needs
        self.uses = uses
        self.pred: Pred = _never
        self.refresh()

    def refresh(self) -> Pred:
        places = self._places
        resolved = [
            [(neg, src.pred_at(places) if isinstance(src, Acl) else src) for neg, src in suite]
            for suite in self._suites
        ]
        self.pred = _combine(resolved, self._unless)
        return self.pred


def parse_condition(
    words: list[str] | tuple[str, ...],
    acls: dict[str, Acl],
    ctx: Any = None,
    warnings: list[str] | None = None,
    places: int = 0,
) -> Condition:
    """Compile ``if|unless TERMS...``: ``words[0]`` is the polarity.  ``places`` (a
    `samples.CHECK_PLACES` mask) is where the rule runs: a term whose fetch cannot
    work there finds no sample, as in haproxy, so it never matches (``!`` still
    inverts that)."""
    if not words or words[0] not in ("if", "unless"):
        raise S.SampleError("expects 'if' or 'unless'")
    unless = words[0] == "unless"
    suites: list[list[tuple[bool, Any]]] = []
    cur: list[tuple[bool, Any]] | None = None
    needs: frozenset = frozenset()
    uses: list[tuple[str, list[tuple[str, frozenset]]]] = []
    i, n = 1, len(words)
    while i < n:
        word = words[i]
        i += 1
        if word in ("or", "||"):
            cur = None
            continue
        neg = False
        while word.startswith("!"):
            neg = not neg
            word = word[1:]
        if not word:
            if i >= n:
                break
            word = words[i]
            i += 1
            while word.startswith("!"):
                neg = not neg
                word = word[1:]
        if word == "{":
            start = i
            while i < n and words[i] != "}":
                i += 1
            if i >= n:
                raise S.SampleError("missing closing '}' in condition")
            term = parse_acl_expr(list(words[start:i]), ctx, warnings)
            i += 1
            pred = term.pred if S.usable(term.needs, places) else _never
            needs |= term.needs
            uses.append(("anonymous acl", [term.keyword_needs]))
        else:
            acl = acls.get(word) or predefined_acl(word)
            if acl is None:
                raise S.SampleError(
                    f"no such ACL : '{word}'{S.did_you_mean(word, list(acls) + list(PREDEFINED))}"
                )
            pred = acl  # resolved to its predicate by Condition.refresh
            needs |= acl.needs
            uses.append((f"acl '{word}'", [t.keyword_needs for t in acl.terms]))
        if cur is None:
            cur = []
            suites.append(cur)
        cur.append((neg, pred))
    return Condition(suites, unless, needs, uses, places)


def _combine(suites: list[list[tuple[bool, Pred]]], unless: bool) -> Pred:
    if not suites:
        return _always if unless else _never
    if len(suites) == 1 and len(suites[0]) == 1:
        neg, p = suites[0][0]
        if neg != unless:
            return lambda s, t: not p(s, t)
        return p
    frozen = tuple(tuple(s) for s in suites)

    def cond(s, t):
        for suite in frozen:
            for neg, p in suite:
                if p(s, t) == neg:
                    break
            else:
                return not unless
        return unless

    return cond
