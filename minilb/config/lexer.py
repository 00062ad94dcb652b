"""Owns HAProxy's tokenising of configuration text (configuration.txt 2.2-2.4).

It cuts lines into words as HAProxy 2.6 does: ``#`` comments, weak (double) and
strong (single) quoting, backslash escapes (``\\ ``, ``\\#``, ``\\\\``, ``\\'``,
``\\"``, ``\\n``, ``\\r``, ``\\t``, ``\\xNN``), environment variables inside double
quotes (``"$VAR"``, ``"${VAR}"``, ``"${VAR-default}"``, ``"${VAR[*]}"`` and the
pseudo-variables ``.FILE``, ``.LINE``, ``.SECTION``), the conditional blocks
``.if/.elif/.else/.endif`` and the ``.diag/.notice/.warning/.alert`` directives.

As in HAProxy 2.6.12, ``$VAR`` outside double quotes is kept literally (the docs
say variables "are interpreted only within double quotes"; checked with
``haproxy -c``: ``.notice $HOME`` prints ``'$HOME'``).

The environment is a mapping handed in by the caller and read at the moment each
line is tokenised, so a ``setenv`` handled by the global parser affects the lines
that follow it, as in HAProxy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping

import attrs

from minilb.errors import ALERT, NOTICE, WARNING, Diagnostic, SourceLocation

#: The HAProxy version minilb behaves as (``version_atleast()`` / ``version_before()``).
HAPROXY_VERSION = "2.6.12"
#: What ``feature()`` reports as present (``haproxy -vv`` lists these with a '+').
FEATURES = frozenset({"OPENSSL", "LINUX_TPROXY", "TFO", "NS", "GETADDRINFO"})
#: Longest line accepted, in characters (HAProxy grows its buffer; we keep a bound).
MAX_LINE_LENGTH = 65536
#: Most words on one line (HAProxy's MAX_LINE_ARGS).
MAX_LINE_ARGS = 64
#: Deepest ``.if`` nesting accepted (HAProxy's MAXNESTEDCONDS is 128).
MAX_NESTED_CONDS = 128

_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\.[A-Za-z_]+")


@attrs.frozen
class Line:
    """One configuration line cut into words (never empty)."""

    location: SourceLocation
    words: tuple[str, ...]


class LexError(ValueError):
    """A line that cannot be tokenised; the message reads like HAProxy's."""


def split_words(
    text: str,
    environ: Mapping[str, str],
    pseudo: Callable[[str], str | None] = lambda name: None,
) -> list[str]:
    """Cut one line into words; raises `LexError` on an unterminated quote or a bad variable.

    ``pseudo`` resolves the pseudo-variables whose names start with a dot.
    """
    words: list[str] = []
    cur: list[str] = []
    in_word = False  # something (even an empty quoted string) started a word
    only_vars = True  # the word so far is made only of variable expansions
    saw_var = False
    quote = ""
    i = 0
    n = len(text)

    def end_word() -> None:
        nonlocal cur, in_word, only_vars, saw_var
        if in_word:
            word = "".join(cur)
            # a word made only of variables that expand to nothing disappears
            if word or not (only_vars and saw_var):
                words.append(word)
        cur = []
        in_word = False
        only_vars = True
        saw_var = False

    while i < n:
        c = text[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                cur.append(c)
                only_vars = False
            i += 1
            continue
        if c == "\\":
            if i + 1 >= n:
                # a trailing backslash is kept as is
                cur.append(c)
                in_word = True
                only_vars = False
                i += 1
                continue
            nxt = text[i + 1]
            in_word = True
            only_vars = False
            if nxt in " \t#\\'\"$":
                cur.append(nxt)
                i += 2
            elif nxt == "n":
                cur.append("\n")
                i += 2
            elif nxt == "r":
                cur.append("\r")
                i += 2
            elif nxt == "t":
                cur.append("\t")
                i += 2
            elif nxt == "x":
                hexa = text[i + 2 : i + 4]
                if len(hexa) != 2 or not all(h in "0123456789abcdefABCDEF" for h in hexa):
                    raise LexError(f"truncated or invalid hexadecimal sequence at position {i + 1}")
                cur.append(chr(int(hexa, 16)))
                i += 4
            else:
                # unknown escapes are kept with their backslash
                cur.append(c)
                i += 1
            continue
        if quote == '"':
            if c == '"':
                quote = ""
                i += 1
            elif c == "$":
                value, i, as_list = _expand_variable(text, i, environ, pseudo)
                saw_var = True
                if as_list:
                    # "${VAR[*]}": the value's space-separated items become separate words
                    items = value.split()
                    for index, item in enumerate(items):
                        if index:
                            words.append("".join(cur))
                            cur = [item]
                        else:
                            cur.append(item)
                else:
                    cur.append(value)
            else:
                cur.append(c)
                only_vars = False
                i += 1
            continue
        # unquoted
        if c in " \t\r\n":
            end_word()
            i += 1
        elif c == "#":
            break
        elif c == '"' or c == "'":
            quote = c
            in_word = True
            i += 1
        else:
            cur.append(c)
            in_word = True
            only_vars = False
            i += 1
    if quote:
        kind = "double" if quote == '"' else "single"
        raise LexError(f"unmatched {kind} quote at position {n}")
    end_word()
    return words


def _expand_variable(
    text: str, i: int, environ: Mapping[str, str], pseudo: Callable[[str], str | None]
) -> tuple[str, int, bool]:
    """Expand the variable starting at text[i] == '$' (inside double quotes); the flag
    says whether it was a ``${VAR[*]}`` list expansion."""
    j = i + 1
    braced = j < len(text) and text[j] == "{"
    if braced:
        j += 1
    m = _VAR_NAME.match(text, j)
    if m is None:
        if braced:
            raise LexError(f"invalid environment variable name at position {i + 1}")
        return "$", i + 1, False  # a lone dollar stays a dollar
    name = m.group(0)
    j = m.end()
    default: str | None = None
    as_list = False
    if braced:
        if text.startswith("[*]", j):
            j += 3
            as_list = True
        if j < len(text) and text[j] == "-":
            end = text.find("}", j)
            if end < 0:
                raise LexError(f"unmatched brace in environment variable name at position {i + 1}")
            default = text[j + 1 : end]
            j = end
        if j >= len(text) or text[j] != "}":
            raise LexError(f"unmatched brace in environment variable name at position {i + 1}")
        j += 1
    if name.startswith("."):
        value = pseudo(name)
    else:
        value = environ.get(name)
    if value is None:
        value = default if default is not None else ""
    return value, j, as_list


# --------------------------------------------------------------------------- conditions


class _CondParser:
    """``.if`` expressions: ints, predicates, ``!``, ``( )``, ``&&`` (binds tighter) and ``||``."""

    def __init__(self, text: str, environ: Mapping[str, str]):
        self.text = text
        self.pos = 0
        self.environ = environ

    def fail(self, what: str = "") -> LexError:
        return LexError(
            f"unparsable conditional expression '{self.text}'"
            + (f" ({what})" if what else "")
            + f" at position {self.pos + 1}"
        )

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def parse(self) -> bool:
        self.skip()
        if self.pos >= len(self.text):
            return False
        value = self.expr()
        self.skip()
        if self.pos != len(self.text):
            raise self.fail()
        return value

    def expr(self) -> bool:
        value = self.and_expr()
        while True:
            self.skip()
            if self.text.startswith("||", self.pos):
                self.pos += 2
                rhs = self.and_expr()
                value = value or rhs
            else:
                return value

    def and_expr(self) -> bool:
        value = self.term()
        while True:
            self.skip()
            if self.text.startswith("&&", self.pos):
                self.pos += 2
                rhs = self.term()
                value = value and rhs
            else:
                return value

    def term(self) -> bool:
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("missing term")
        c = self.text[self.pos]
        if c == "!":
            self.pos += 1
            return not self.term()
        if c == "(":
            self.pos += 1
            value = self.expr()
            self.skip()
            if self.pos >= len(self.text) or self.text[self.pos] != ")":
                raise self.fail("missing closing parenthesis")
            self.pos += 1
            return value
        m = re.compile(r"-?\d+").match(self.text, self.pos)
        if m:
            self.pos = m.end()
            return int(m.group(0)) != 0
        m = re.compile(r"[a-z_]+").match(self.text, self.pos)
        if m is None or m.group(0) not in _PREDICATES:
            raise self.fail()
        name = m.group(0)
        self.pos = m.end()
        args = self.arguments()
        arity = _PREDICATES[name][0]
        if len(args) != arity:
            raise self.fail(f"'{name}' expects {arity} argument(s)")
        return _PREDICATES[name][1](self, *args)

    def arguments(self) -> list[str]:
        if self.pos >= len(self.text) or self.text[self.pos] != "(":
            raise self.fail("missing opening parenthesis")
        self.pos += 1
        args: list[str] = []
        cur: list[str] = []
        quote = ""
        while self.pos < len(self.text):
            c = self.text[self.pos]
            self.pos += 1
            if quote:
                if c == quote:
                    quote = ""
                elif c == "\\" and quote == '"' and self.pos < len(self.text):
                    cur.append(self.text[self.pos])
                    self.pos += 1
                else:
                    cur.append(c)
            elif c in "'\"":
                quote = c
            elif c == "\\" and self.pos < len(self.text):
                cur.append(self.text[self.pos])
                self.pos += 1
            elif c == ",":
                args.append("".join(cur))
                cur = []
            elif c == ")":
                if cur or args:
                    args.append("".join(cur))
                return args
            else:
                cur.append(c)
        raise self.fail("missing closing parenthesis")


def _version_tuple(text: str) -> tuple[int, ...]:
    """``2.4-dev19`` → (2, 4, -1, 19): a dev/pre version sorts before the release."""
    m = re.match(r"^(\d+(?:\.\d+)*)(?:-(dev|pre|rc)(\d*))?", text)
    if m is None:
        raise ValueError(text)
    nums = [int(x) for x in m.group(1).split(".")]
    nums += [0] * (4 - len(nums))
    if m.group(2):
        stage = {"dev": -3, "pre": -2, "rc": -1}[m.group(2)]
        return (*nums, stage, int(m.group(3) or 0))
    return (*nums, 0, 0)


def _version_cmp(parser: _CondParser, version: str) -> int:
    try:
        other = _version_tuple(version)
    except ValueError:
        raise parser.fail(f"invalid version '{version}'") from None
    mine = _version_tuple(HAPROXY_VERSION)
    return (mine > other) - (mine < other)


_PREDICATES: dict[str, tuple[int, Callable[..., bool]]] = {
    "defined": (1, lambda p, name: name in p.environ),
    "feature": (1, lambda p, name: name in FEATURES),
    "streq": (2, lambda p, a, b: a == b),
    "strneq": (2, lambda p, a, b: a != b),
    "version_atleast": (1, lambda p, v: _version_cmp(p, v) >= 0),
    "version_before": (1, lambda p, v: _version_cmp(p, v) < 0),
}


def evaluate_condition(words: tuple[str, ...] | list[str], environ: Mapping[str, str]) -> bool:
    """Evaluate the words after ``.if``/``.elif`` (joined by spaces); raises `LexError`."""
    return _CondParser(" ".join(words), environ).parse()


# --------------------------------------------------------------------------- whole files


_DIRECTIVE_SEVERITY = {".notice": NOTICE, ".warning": WARNING, ".alert": ALERT}


def iter_lines(
    path: str,
    text: str,
    environ: Mapping[str, str],
    diagnostics: list[Diagnostic],
    section: Callable[[], str] = lambda: "",
) -> Iterator[Line]:
    """Yield the non-empty lines of one file after conditional blocks and directives.

    Problems (bad quoting, bad conditions, unbalanced blocks, ``.alert``) are
    appended to ``diagnostics``; a line that cannot be tokenised is skipped.
    ``section`` returns the current section name for the ``.SECTION`` variable.
    """
    # Each level: [active, taken, else_seen, location]
    levels: list[list] = []

    def active() -> bool:
        return all(level[0] for level in levels)

    for number, raw in enumerate(text.splitlines(), start=1):
        loc = SourceLocation(path, number)
        if len(raw) > MAX_LINE_LENGTH:
            diagnostics.append(Diagnostic(ALERT, f"line too long (over {MAX_LINE_LENGTH} characters)", loc))
            continue

        def pseudo(name: str, _loc: SourceLocation = loc) -> str | None:
            return {".FILE": _loc.path, ".LINE": str(_loc.line), ".SECTION": section()}.get(name)

        try:
            words = split_words(raw, environ, pseudo)
        except LexError as exc:
            if active():
                diagnostics.append(Diagnostic(ALERT, str(exc), loc))
            continue
        if not words:
            continue
        if len(words) > MAX_LINE_ARGS:
            if active():
                diagnostics.append(
                    Diagnostic(
                        ALERT,
                        f"too many words, truncating after word {MAX_LINE_ARGS}: <{words[MAX_LINE_ARGS]}>.",
                        loc,
                    )
                )
            continue
        head = words[0]
        if head in (".if", ".elif", ".else", ".endif"):
            _conditional(head, words, loc, levels, environ, diagnostics, active)
            continue
        if not active():
            continue
        if head == ".diag":
            continue  # shown in diagnostic mode only (-dD), which minilb does not have
        if head in _DIRECTIVE_SEVERITY:
            if len(words) > 2:
                diagnostics.append(
                    Diagnostic(
                        ALERT,
                        f"Unexpected argument '{words[2]}' for '{head}'. "
                        "Use quotes if the message should contain spaces.",
                        loc,
                    )
                )
                continue
            message = words[1] if len(words) > 1 else ""
            diagnostics.append(Diagnostic(_DIRECTIVE_SEVERITY[head], f"'{message}'.", loc))
            continue
        yield Line(loc, tuple(words))
    for level in levels:
        diagnostics.append(Diagnostic(ALERT, "non-terminated '.if' block.", level[3]))


def _conditional(head, words, loc, levels, environ, diagnostics, active) -> None:
    def evaluate() -> bool:
        try:
            return evaluate_condition(words[1:], environ)
        except LexError as exc:
            diagnostics.append(Diagnostic(ALERT, f"{exc} in '{head}'", loc))
            return False

    if head == ".if":
        if len(levels) >= MAX_NESTED_CONDS:
            diagnostics.append(Diagnostic(ALERT, "too many nested '.if', max is 128.", loc))
            return
        outer = active()
        value = evaluate() if outer else False
        levels.append([value, value or not outer, False, loc])
        return
    if not levels:
        diagnostics.append(Diagnostic(ALERT, f"'{head}' with no matching '.if'.", loc))
        return
    level = levels[-1]
    if head == ".endif":
        levels.pop()
    elif level[2]:
        diagnostics.append(Diagnostic(ALERT, f"'{head}' after '.else' is not permitted.", loc))
        level[0] = False
    elif head == ".else":
        level[2] = True
        level[0] = not level[1]
        level[1] = True
    else:  # .elif
        if level[1]:
            level[0] = False
        else:
            level[0] = evaluate()
            level[1] = level[0]
