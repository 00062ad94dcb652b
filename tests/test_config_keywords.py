"""The keyword registry and the parsers agree: every keyword marked supported has a
handler, every handler is for a supported keyword, and statuses drive diagnostics."""

from __future__ import annotations

from minilb.config import keywords, parse_global, parse_peers, parse_proxy
from tests.support.config import DEFAULTS, load


def _supported(kind: str) -> set[str]:
    return {name for name, kw in keywords.REGISTRY[kind].items() if kw.status == keywords.SUPPORTED}


def test_registry_matches_handlers():
    assert _supported("global") == set(parse_global.HANDLERS)
    assert _supported("frontend") == set(parse_proxy.HANDLERS)
    assert _supported("peers") == set(parse_peers.HANDLERS)


def test_every_matrix_keyword_is_known():
    # a sample of configuration.txt 4.1 and section 3 keywords across statuses
    for kind, name in [
        ("frontend", "capture request header"),
        ("backend", "option tcp-smart-connect"),
        ("listen", "stats uri"),
        ("global", "lua-load"),
        ("global", "tune.ssl.default-dh-param"),
        ("peers", "table"),
    ]:
        assert keywords.lookup(kind, name.split()) is not None, name


def test_status_diagnostics(tmp_path):
    _, lines = load(
        tmp_path,
        "global\n  lua-load /x.lua\n  tune.ssl.default-dh-param 2048\n  nbproc 2\n"
        + DEFAULTS
        + "frontend fe\n  bind :1\n  option splice-auto\n  capture request header Host len 20\n  optoin httplog\n",
    )
    assert lines == [
        "WARNING parsing [t.cfg:2] : 'lua-load' is not supported by minilb and is ignored.",
        "ALERT parsing [t.cfg:4] : nbproc is not supported any more since HAProxy 2.5. Threads will automatically "
        "be used on multi-processor machines if available.",
        "WARNING parsing [t.cfg:13] : 'capture request header' is not supported by minilb and is ignored.",
        "ALERT parsing [t.cfg:14] : unknown keyword 'optoin' in 'frontend' section; did you mean 'option' maybe ?",
    ]


def test_keywords_from_the_alphabetical_reference(tmp_path):
    _, lines = load(
        tmp_path,
        DEFAULTS
        + "backend b\n  http-check set-var(check.x) int(1)\n  hash-balance-factor 150\n"
        + "  dynamic-cookie-key abc\n  tcp-check set-var-fmt(check.y) %[int(2)]\n",
    )
    assert lines == [
        "WARNING parsing [t.cfg:7] : 'http-check set-var' is not supported by minilb and is ignored.",
        "WARNING parsing [t.cfg:8] : 'hash-balance-factor' is not supported by minilb and is ignored.",
        "WARNING parsing [t.cfg:9] : 'dynamic-cookie-key' is not supported by minilb and is ignored.",
        "WARNING parsing [t.cfg:10] : 'tcp-check set-var-fmt' is not supported by minilb and is ignored.",
    ]
