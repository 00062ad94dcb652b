"""Bad input gets diagnostics, never a traceback: configurations assembled from real
keywords with random arguments load or fail with ConfigError only."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minilb.config import keywords
from minilb.config.load import load_config
from minilb.errors import ConfigError

_HEADERS = [
    "global",
    "defaults",
    "defaults d",
    "frontend f",
    "backend b",
    "listen l",
    "peers p",
    "userlist u",
]
_ARGS = [
    "",
    "1",
    "-1",
    "0",
    "70000",
    "10s",
    "1x",
    ":80",
    "127.0.0.1:80",
    "[::1]:1",
    "fd@3",
    "unix@/x",
    "ssl",
    "crt",
    "check",
    "weight",
    "if",
    "unless",
    "{",
    "}",
    "type",
    "ip",
    "string",
    "len",
    "size",
    "1k",
    "store",
    "gpc(2)",
    "http_req_rate(10s)",
    "peers",
    "p",
    "b",
    "f",
    "d",
    "from",
    "status",
    "200",
    '"',
    "'",
    "\\",
    "${X}",
    "#",
    "verify",
    "none",
    "table",
    "track-sc0",
    "src",
    "hdr(host)",
    "random(3)",
    "url_param",
    "except",
    "header",
]
_WORDS = sorted({name.split()[0] for kind in keywords.SECTION_KINDS for name in keywords.REGISTRY[kind]})
_line = st.builds(
    lambda head, sub, args: " ".join([head, sub, *args]),
    st.sampled_from(_WORDS + _HEADERS),
    st.sampled_from(["", "httplog", "client", "socket", "request", "connection", "content", "expect", "on"]),
    st.lists(st.sampled_from(_ARGS), max_size=6),
)


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(_line, min_size=1, max_size=25))
def test_random_configs_never_crash(tmp_path, lines):
    path = tmp_path / "f.cfg"
    path.write_text("\n".join(lines) + "\n")
    try:
        config, warnings = load_config([str(path)], environ={}, hostname="h", localpeer="me")
    except ConfigError as exc:
        assert exc.diagnostics
    else:
        assert config.files == (str(path),)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text(alphabet=" \t\"'\\#${}[]*-x.:@()!&|01", max_size=40))
def test_lexer_never_crashes(text):
    from minilb.config.lexer import LexError, iter_lines

    diags: list = []
    try:
        lines = list(iter_lines("f.cfg", ".if " + text + "\n.endif\nx " + text + "\n", {"X": "a b"}, diags))
    except LexError:  # pragma: no cover - iter_lines reports, never raises
        raise AssertionError("iter_lines raised") from None
    assert all(line.words for line in lines)
