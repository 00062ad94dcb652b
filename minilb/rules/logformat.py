"""Owns log-format strings as rules use them (``set-header X "v %[req.hdr(host)]"``,
``return lf-string``, ``redirect location``): literal text, ``%[sample expr]``
(optionally with ``%{+Q}`` style flags), a few ``%xx`` aliases and ``%%``.

`parse_log_format(text, ctx)` compiles once into a `LogFormat` whose
``render(sess, txn) -> str`` concatenates precomputed pieces.  A missing sample
renders as an empty string (what HAProxy 2.6 puts in a header; see
tests/data/rules_haproxy_replies.json, case set_header_missing_sample).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from minilb.rules import samples as S


def _alias_fetch(name: str) -> Callable[[Any, Any], Any]:
    def hv(s, t):
        return None if t is None else f"HTTP/{t.version}"

    def hq(s, t):
        return None if t is None or t.query is None else "?" + t.query

    def request_line(s, t):
        return None if t is None else f"{t.method} {t.uri.decode('latin-1')} HTTP/{t.version}"

    def ft(s, t):
        return None if not s.frontend else s.frontend + ("~" if s.ssl else "")

    table: dict[str, Callable[[Any, Any], Any]] = {
        "ci": lambda s, t: s.src,
        "cp": lambda s, t: s.src_port,
        "fi": lambda s, t: s.dst,
        "fp": lambda s, t: s.dst_port,
        "f": lambda s, t: s.frontend,
        "ft": ft,
        "b": lambda s, t: t.backend if t is not None and t.backend else s.frontend,
        "s": lambda s, t: None if t is None else t.server,
        "ST": lambda s, t: None if t is None or not t.status else t.status,
        "HM": lambda s, t: None if t is None else t.method,
        "HU": lambda s, t: None if t is None else t.uri.decode("latin-1"),
        "HP": lambda s, t: None if t is None else t.path,
        "HQ": hq,
        "HV": hv,
        "r": request_line,
        "H": lambda s, t: os.uname().nodename,
        "pid": lambda s, t: os.getpid(),
        "Ts": lambda s, t: s.now_ms // 1000,
        "ms": lambda s, t: f"{s.now_ms % 1000:03d}",
    }
    return table[name]


ALIASES = (
    "ci",
    "cp",
    "fi",
    "fp",
    "f",
    "ft",
    "b",
    "s",
    "ST",
    "HM",
    "HU",
    "HP",
    "HQ",
    "HV",
    "r",
    "H",
    "pid",
    "Ts",
    "ms",
)


class LogFormat:
    """A compiled log-format string; ``constant`` is the text when it has no variables."""

    __slots__ = ("text", "render", "constant")

    def __init__(self, text: str, render: Callable[[Any, Any], str], constant: str | None):
        self.text = text
        self.render = render
        self.constant = constant


def _piece(fn: Callable[[Any, Any], Any], quote: bool, missing: str) -> Callable[[Any, Any], str]:
    as_str = S.as_str
    if quote:

        def quoted(s, t):
            v = fn(s, t)
            return '"' + (as_str(v) if v is not None else "") + '"'

        return quoted

    def plain(s, t):
        v = fn(s, t)
        if v is None:
            return missing
        return v if type(v) is str else as_str(v)

    return plain


def parse_log_format(text: str, ctx: Any = None, missing: str = "") -> LogFormat:
    """Compile ``text``; raises `SampleError` with HAProxy's wording.  ``missing`` is
    what an absent sample renders as: "" in rules (headers, bodies), "-" in log lines."""
    pieces: list[Any] = []  # str literals or callables
    lit: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "%":
            lit.append(c)
            i += 1
            continue
        if i + 1 < n and text[i + 1] == "%":
            lit.append("%")
            i += 2
            continue
        i += 1
        flags = ""
        if i < n and text[i] == "{":
            close = text.find("}", i)
            if close < 0:
                raise S.SampleError(f"missing '}}' after '{text[i:]}'")
            flags = text[i + 1 : close]
            i = close + 1
        quote = "+Q" in flags
        if i < n and text[i] == "[":
            close = _find_bracket(text, i + 1)
            if close < 0:
                raise S.SampleError(f"missing ']' after '{text[i + 1 :]}'")
            expr_text = text[i + 1 : close]
            try:
                expr = S.parse_expr(expr_text, ctx)
            except S.SampleError as e:
                raise S.SampleError(f"failed to parse sample expression <{text[i + 1 :]}> : {e}") from None
            if ctx is not None:
                label = S.missing_need(expr.fetch.needs, ctx.ruleset, getattr(ctx.proxy, "kind", ""))
                if label is not None:
                    raise S.SampleError(
                        f"sample fetch <{text[i + 1 :]}> may not be reliably used here because it needs '{label}' "
                        "which is not available here"
                    )
            fn = expr.eval
            i = close + 1
        else:
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            name = text[i:j]
            if name not in ALIASES:
                raise S.SampleError(
                    f"no such format variable '{name}'. If you wanted to emit the '%' character verbatim, "
                    "you need to use '%%'"
                )
            fn = _alias_fetch(name)
            i = j
        if lit:
            pieces.append(S.cfg_str("".join(lit)))
            lit = []
        pieces.append(_piece(fn, quote, missing))
    if lit:
        pieces.append(S.cfg_str("".join(lit)))
    if all(type(p) is str for p in pieces):
        const = "".join(pieces)
        return LogFormat(text, lambda s, t: const, const)
    if len(pieces) == 1:
        return LogFormat(text, pieces[0], None)
    parts = tuple(pieces)

    def render(s, t):
        return "".join([p if type(p) is str else p(s, t) for p in parts])

    return LogFormat(text, render, None)


def _find_bracket(text: str, start: int) -> int:
    depth = 0
    quote = ""
    i = start
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "]" and depth <= 0:
            return i
        i += 1
    return -1
