"""The lexer cuts lines as HAProxy 2.6.12 does.  Expected words were checked with
``haproxy -c`` and ``.notice`` lines (e.g. ``.notice "x"'y'z"$HOME"`` prints 'xyz/root')."""

from __future__ import annotations

import pytest

from minilb.config.lexer import LexError, evaluate_condition, iter_lines, split_words

ENV = {"HOME": "/root", "EMPTY": "", "PORT": "8080", "MULTI": "a b"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("bind :80 # a comment", ["bind", ":80"]),
        ("  option   httplog\t", ["option", "httplog"]),
        (r"log-format %{+Q}o\ %t\ %s", ["log-format", "%{+Q}o %t %s"]),
        ("log-format \"%{+Q}o %t\"' %s'\\ %{-Q}r", ["log-format", "%{+Q}o %t %s %{-Q}r"]),
        (r"x a\ b\x41\#c", ["x", "a bA#c"]),  # haproxy: 'a bA#c'
        ('x "x"\'y\'z"$HOME"', ["x", "xyz/root"]),  # haproxy: 'xyz/root'
        ("x $HOME", ["x", "$HOME"]),  # haproxy: '$HOME' (no expansion outside double quotes)
        ("x x${HOME}y", ["x", "x${HOME}y"]),  # haproxy: 'x${HOME}y'
        ("x '${HOME}'", ["x", "${HOME}"]),  # haproxy: '${HOME}'
        (r'x "\$HOME"', ["x", "$HOME"]),  # haproxy: '$HOME'
        ('x "a${HOME}"', ["x", "a/root"]),
        ('bind ":${PORT}"', ["bind", ":8080"]),
        ('x "${NOPE-127.0.0.1}:514"', ["x", "127.0.0.1:514"]),
        ('x "${EMPTY-def}"', ["x"]),  # the default replaces missing variables only
        ('x "${NOPE}" y', ["x", "y"]),  # a word made only of an empty variable disappears
        ('x ""', ["x", ""]),  # an explicitly empty word stays
        ("x '#' \"#\"", ["x", "#", "#"]),
        (r"x \n\r\t", ["x", "\n\r\t"]),
        ('x "it\'s"', ["x", "it's"]),
    ],
)
def test_split_words(text, words):
    assert split_words(text, ENV) == words


def test_pseudo_variables():
    pseudo = {".FILE": "f.cfg", ".LINE": "8", ".SECTION": "global"}.get
    assert split_words('x "${.FILE}:$.LINE" "${.SECTION}"', {}, pseudo) == ["x", "f.cfg:8", "global"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('x "abc', "unmatched double quote"),
        ("x 'abc", "unmatched single quote"),
        ('x "${HOME"', "unmatched brace in environment variable name"),
        (r"x \xZZ", "invalid hexadecimal sequence"),
    ],
)
def test_split_errors(text, message):
    with pytest.raises(LexError, match=message):
        split_words(text, ENV)


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("", False),
        ("0", False),
        ("1", True),
        ("0 || 1 && 0", False),  # && binds tighter
        ("(1) && !0", True),
        ("streq(a,a) && strneq(a,b)", True),
        ("defined(HOME) && !defined(NOPE)", True),
        ("defined(EMPTY)", True),
        ("version_atleast(2.6) && version_before(2.7) && !version_before(2.6.12)", True),
        ("version_atleast(2.4-dev19)", True),
        ("version_atleast(2.6.13)", False),
        ("feature(OPENSSL) && !feature(LUA)", True),
    ],
)
def test_conditions(expr, value):
    assert evaluate_condition(expr.split(" ") if expr else [], ENV) is value


@pytest.mark.parametrize("expr", ["foo", "streq(a)", "(1", "1 &&"])
def test_bad_conditions(expr):
    with pytest.raises(LexError, match="unparsable conditional expression"):
        evaluate_condition([expr], ENV)


def test_conditional_blocks_and_directives():
    text = """\
.if 0
  skipped
.elif defined(HOME)
  .notice "A=1"
  kept1
.else
  skipped
.endif
.if 1
  .if 0
     skipped
  .else
     kept2
  .endif
.endif
.warning "careful"
.diag "only in diagnostic mode"
.alert "stop"
.notice "a" "b"
"""
    diags: list = []
    lines = list(iter_lines("f.cfg", text, ENV, diags))
    assert [(line.location.line, line.words) for line in lines] == [(5, ("kept1",)), (13, ("kept2",))]
    # haproxy: "parsing [d.cfg:2]: 'hello /root'." / "[WARNING] ... 'warn here'."
    assert [f"{d.severity} {d}" for d in diags] == [
        "NOTICE parsing [f.cfg:4] : 'A=1'.",
        "WARNING parsing [f.cfg:16] : 'careful'.",
        "ALERT parsing [f.cfg:18] : 'stop'.",
        # haproxy: "Unexpected argument 'a' for '.notice'. Use quotes if the message should contain spaces."
        "ALERT parsing [f.cfg:19] : Unexpected argument 'b' for '.notice'. "
        "Use quotes if the message should contain spaces.",
    ]


def test_unbalanced_blocks():
    diags: list = []
    list(iter_lines("f.cfg", ".endif\n.if 1\n.else\n.elif 1\n", ENV, diags))
    assert [str(d) for d in diags] == [
        "parsing [f.cfg:1] : '.endif' with no matching '.if'.",
        "parsing [f.cfg:4] : '.elif' after '.else' is not permitted.",
        "parsing [f.cfg:2] : non-terminated '.if' block.",
    ]


def test_lex_error_reported_with_line_and_line_skipped():
    diags: list = []
    lines = list(iter_lines("f.cfg", 'ok 1\nbad "x\nok 2\n', ENV, diags))
    assert [line.words for line in lines] == [("ok", "1"), ("ok", "2")]
    assert [str(d) for d in diags] == ["parsing [f.cfg:2] : unmatched double quote at position 6"]


def test_too_many_words():
    diags: list = []
    lines = list(iter_lines("f.cfg", "x " + "a " * 64 + "\nok\n", ENV, diags))
    assert [line.words for line in lines] == [("ok",)]
    # haproxy: parsing [q.cfg:2]: too many words, truncating after word 64, position 133: <a>.
    assert [str(d) for d in diags] == ["parsing [f.cfg:1] : too many words, truncating after word 64: <a>."]
