"""Owns the syntax shared by several sections: ``log`` lines, integer and time
arguments, and the dispatch of a line to its keyword handler with HAProxy's
unknown-keyword, removed-keyword and not-supported diagnostics."""

from __future__ import annotations

from collections.abc import Callable

from minilb.config import keywords
from minilb.config.context import ParseContext, Problem
from minilb.config.lexer import Line
from minilb.config.model import LogTarget
from minilb.units import parse_time

FACILITIES = (
    "kern user mail daemon auth syslog lpr news uucp cron auth2 ftp ntp audit alert cron2 "
    "local0 local1 local2 local3 local4 local5 local6 local7"
).split()
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


_TCP_RULE_WORDS = {
    "tcp-request": "'inspect-delay', 'connection', or 'content'",
    "tcp-response": "'inspect-delay' or 'content'",
}


def parse_int(text: str | None, keyword: str, low: int = 0, high: int = 2**31 - 1) -> int:
    if text is None or text == "":
        raise Problem(f"'{keyword}' expects an integer argument.")
    if not text.lstrip("-").isdigit():
        raise Problem(f"'{keyword}' expects an integer argument (got '{text}').")
    value = int(text)
    if not low <= value <= high:
        raise Problem(f"'{keyword}' : value {value} out of range [{low}..{high}].")
    return value


def bad_time_char(text: str) -> str:
    """The first character HAProxy's time parser would stop at."""
    rest = text.lstrip("0123456789")
    for unit in ("us", "ms", "s", "m", "h", "d"):
        if rest.startswith(unit):
            rest = rest[len(unit) :]
            break
    return rest[:1] or text[:1]


def parse_ms(
    text: str | None,
    keyword: str,
    missing: str = "'{kw}' expects a time value (e.g. 10s).",
    bad: str = "'{kw}' : unexpected character '{c}'",
) -> int:
    """A time argument in milliseconds; ``missing`` / ``bad`` are the messages
    (``{kw}`` the keyword, ``{c}`` the offending character), which vary per keyword
    in HAProxy."""
    if text is None or text == "":
        raise Problem(missing.format(kw=keyword))
    try:
        return parse_time(text)
    except ValueError as exc:
        if "overflow" in str(exc):
            raise Problem(f"'{keyword}' : {exc}.") from None
        raise Problem(bad.format(kw=keyword, c=bad_time_char(text))) from None


def no_more_args(keyword: str, args: tuple[str, ...], allowed: int = 0) -> None:
    if len(args) > allowed:
        raise Problem(f"'{keyword}' cannot handle unexpected argument '{args[allowed]}'.")


def parse_log(line: Line, args: tuple[str, ...], allow_global: bool) -> LogTarget | None:
    """``log global`` / ``log ADDR [len N] [format F] [sample R:S] FACILITY [LEVEL [MINLEVEL]]``.

    Returns None for ``log global`` in a section where it means "use global's"."""
    if not args:
        raise Problem("log : expects <address> and <facility> or global as arguments")
    if args[0] == "global":
        if not allow_global:
            raise Problem(
                "'log global' is only allowed in 'defaults', 'frontend', 'listen' and 'backend' sections."
            )
        no_more_args("log global", args[1:])
        return LogTarget(origin=line.location, target="global")
    target = args[0]
    rest = list(args[1:])
    fmt: str | None = None
    while rest and rest[0] in ("len", "format", "sample"):
        if len(rest) < 2:
            raise Problem(f"'log' : missing value after '{rest[0]}'.")
        if rest[0] == "format":
            fmt = rest[1]
            if fmt not in ("local", "rfc3164", "rfc5424", "priority", "short", "timed", "iso", "raw"):
                raise Problem(f"'log' : unknown log format '{fmt}'.")
        elif rest[0] == "len":
            parse_int(rest[1], "log len", 80, 65535)
        del rest[:2]
    if not rest:
        raise Problem("'log' expects <facility> as argument.")
    facility = rest[0]
    if facility not in FACILITIES:
        raise Problem(f"log : unknown log facility '{facility}'")
    level = rest[1] if len(rest) > 1 else None
    minlevel = rest[2] if len(rest) > 2 else None
    for lv in (level, minlevel):
        if lv is not None and lv not in LEVELS:
            raise Problem(f"unknown optional log level '{lv}'.")
    if len(rest) > 3:
        raise Problem(f"'log' cannot handle unexpected argument '{rest[3]}'.")
    return LogTarget(
        origin=line.location, target=target, facility=facility, level=level, minlevel=minlevel, format=fmt
    )


Handler = Callable[..., None]


def strip_prefix(words: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """``no option X`` / ``default option X`` → ("no", ("option", "X", ...))."""
    if words[0] in ("no", "default") and len(words) > 1:
        return words[0], words[1:]
    return None, words


def dispatch(
    kind: str,
    section_label: str,
    line: Line,
    handlers: dict[str, Handler],
    ctx: ParseContext,
    target: object,
    allowed: Callable[[keywords.Keyword, str | None], bool] = lambda kw, prefix: True,
) -> None:
    """Find the keyword a line starts with in a section of ``kind`` and act on its status.

    ``handlers`` maps supported keyword names to ``fn(target, line, args, prefix, ctx)``
    where ``args`` are the words after the keyword.  ``allowed`` may report a misplaced
    keyword itself and return False to skip the line.
    """
    prefix, words = strip_prefix(line.words)
    kw = keywords.lookup(kind, words)
    loc = line.location
    if kw is None:
        head = words[0]
        if head in keywords.COMPOUND_HEADS and keywords.is_compound_head(kind, head):
            subs = keywords.subkeywords(kind, head)
            got = words[1] if len(words) > 1 else ""
            if head == "option":
                removed = keywords.REMOVED_OPTIONS.get(got)
                if removed:
                    ctx.alert(loc, removed)
                    return
                msg = f"unknown option '{got}'."
            elif head == "timeout" and got in keywords.REMOVED_TIMEOUTS:
                ctx.alert(loc, keywords.REMOVED_TIMEOUTS[got])
                return
            elif head in _TCP_RULE_WORDS:
                # haproxy 2.6.12's own wording (its list omits tcp-request 'session')
                if not got:
                    ctx.alert(loc, f"missing argument for '{head}' in {section_label}")
                    return
                msg = f"'{head}' expects {_TCP_RULE_WORDS[head]} in {section_label} (got '{got}')"
            else:
                msg = f"'{head}' expects {_quoted_list(subs)} in {section_label} (got '{got}')."
            hint = keywords.suggest(got, subs) if got else None
            if hint:
                msg = msg.rstrip(".") + f"; did you mean '{hint}' maybe ?"
            ctx.alert(loc, msg)
            return
        msg = f"unknown keyword '{head}' in '{kind}' section"
        hint = keywords.suggest(head, keywords.first_words(kind))
        if hint:
            msg += f"; did you mean '{hint}' maybe ?"
        ctx.alert(loc, msg)
        return
    nwords = len(kw.name.split())
    args = words[nwords:]
    if prefix is not None and not kw.negatable:
        if kw.name.startswith("option "):
            ctx.alert(loc, f"negation/default is not supported for option '{kw.name[7:]}'.")
            return
        ctx.alert(
            loc,
            "negation/default currently supported only for options, log, busy-polling, set-dumpable, "
            "strict-limits, insecure-fork-wanted and numa-cpu-mapping.",
        )
        return
    if kw.status == keywords.REMOVED:
        ctx.alert(loc, kw.note)
        return
    if not allowed(kw, prefix):
        return
    if kw.status == keywords.UNSUPPORTED:
        ctx.warn(loc, f"'{kw.name}' is not supported by minilb and is ignored.")
        return
    if kw.status == keywords.IGNORED:
        return
    handler = handlers.get(kw.name)
    if handler is None:  # pragma: no cover - guarded by a registry test
        ctx.warn(loc, f"'{kw.name}' is not supported by minilb and is ignored.")
        return
    try:
        handler(target, line, args, prefix, ctx)
    except Problem as exc:
        ctx.alert(loc, str(exc))


def _quoted_list(items: list[str]) -> str:
    quoted = [f"'{i}'" for i in items]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"
