"""Check mode renders like ``haproxy -c``; shipped and example configs load cleanly."""

from __future__ import annotations

import glob
import os
import subprocess

import pytest

from minilb.check import CheckResult, check_config, render_check
from minilb.config.load import load_config
from minilb.config.render import render_diagnostic
from minilb.errors import ALERT, WARNING, Diagnostic, SourceLocation
from tests.conftest import REPO, haproxy_binary, requires_haproxy
from tests.support.config import DEFAULTS, write

EXAMPLES = "/usr/share/doc/haproxy/examples"


def test_render_success_with_warnings(tmp_path):
    path = write(tmp_path, DEFAULTS + "frontend fe\n  bind :1\n  option nolinger\n")
    status, lines = render_check(check_config([path], environ={}, hostname="h"))
    assert status == 0
    # haproxy -c prints warnings, then "Warnings were found." and "Configuration file is valid"
    assert [line.replace(f"{tmp_path}/", "") for line in lines] == [
        "[WARNING]  (minilb) : config : parsing [t.cfg:8] : 'option nolinger' is not supported by minilb and is "
        "ignored.",
        "Warnings were found.",
        "Configuration file is valid",
    ]


def test_render_failure(tmp_path):
    path = write(tmp_path, "global\n  frobnicate\n")
    result = check_config([path], environ={}, hostname="h")
    assert not result.ok and result.config is None
    status, lines = render_check(result)
    assert status == 1
    # haproxy: [ALERT]    (3896) : config : parsing [a.cfg:3] : unknown keyword 'frobnicate' in 'global' section
    #          [ALERT]    (3896) : config : Fatal errors found in configuration.
    assert [line.replace(f"{tmp_path}/", "") for line in lines] == [
        "[ALERT]    (minilb) : config : parsing [t.cfg:2] : unknown keyword 'frobnicate' in 'global' section",
        "[ALERT]    (minilb) : config : Fatal errors found in configuration.",
    ]


def test_diagnostic_render_is_haproxys_shape():
    located = Diagnostic(ALERT, "unknown keyword 'x'", SourceLocation("t.cfg", 3))
    # haproxy: [ALERT]    (9080) : config : parsing [t.cfg:3] : unknown keyword 'x' ...
    assert located.render() == "[ALERT]    (minilb) : config : parsing [t.cfg:3] : unknown keyword 'x'"
    assert Diagnostic(WARNING, "w").render() == "[WARNING]  (minilb) : config : w"
    assert Diagnostic("NOTICE", "n").render() == "[NOTICE]   (minilb) : config : n"
    assert render_diagnostic(located) == located.render()


def test_render_clean():
    ok = CheckResult(ok=True, config=None, diagnostics=())
    assert render_check(ok) == (0, ["Configuration file is valid"])
    bad = CheckResult(ok=False, config=None, diagnostics=(Diagnostic(ALERT, "x", SourceLocation("f", 1)),))
    assert render_check(bad)[0] == 1
    warn = CheckResult(ok=True, config=None, diagnostics=(Diagnostic(WARNING, "w"),))
    assert render_check(warn)[1][-2:] == ["Warnings were found.", "Configuration file is valid"]


def test_missing_file(tmp_path):
    result = check_config([str(tmp_path / "nope.cfg")], environ={}, hostname="h")
    assert not result.ok
    assert [str(d) for d in result.diagnostics] == [
        f"Could not open configuration file {tmp_path}/nope.cfg : No such file or directory"
    ]


@pytest.mark.parametrize("path", sorted(glob.glob(str(REPO / "conf" / "*.cfg"))), ids=os.path.basename)
def test_shipped_configs_load(path):
    environ = {"TLS_CRT": "/nonexistent/site.pem"}  # minilb reads certificates when serving, not when parsing
    config, warnings = load_config([path], localpeer="lb1", environ=environ, hostname="h")
    assert config.proxies
    assert not [w for w in warnings if w.severity == ALERT]


@pytest.mark.parametrize("path", sorted(glob.glob(str(REPO / "conf" / "*.cfg"))), ids=os.path.basename)
def test_shipped_configs_pass_check_mode(path, tmp_path):
    """Check mode also runs the rule compiler's checks (when minilb.rules.compile exists)
    and checks that certificate files exist (only existence: the TLS adapter parses them)."""
    crt = tmp_path / "site.pem"
    crt.write_text("placeholder\n")
    result = check_config([path], localpeer="lb1", environ={"TLS_CRT": str(crt)}, hostname="h")
    status, lines = render_check(result)
    assert status == 0, lines
    assert lines[-1] == "Configuration file is valid"


def test_peers_config_without_local_peer_is_valid():
    """haproxy -c -f conf/peers.cfg (no -L) removes the peers section with a warning but
    keeps its table, so the rules naming ``mesh/clients`` still compile."""
    result = check_config([str(REPO / "conf" / "peers.cfg")], environ={}, hostname="h")
    status, lines = render_check(result)
    assert status == 0, lines
    assert [d.message for d in result.diagnostics] == [
        "Removing incomplete section 'peers mesh' (no peer named 'h')."
    ]
    assert [t.name for t in result.config.tables()] == ["mesh/clients"]


@pytest.mark.skipif(not os.path.isdir(EXAMPLES), reason=f"{EXAMPLES} absent (apt-get install -y haproxy)")
@pytest.mark.parametrize("name", sorted(os.listdir(EXAMPLES)) if os.path.isdir(EXAMPLES) else [])
def test_haproxy_examples_load_without_alerts(name):
    if not name.endswith(".cfg"):
        pytest.skip("not a config file")
    config, warnings = load_config([os.path.join(EXAMPLES, name)], environ={}, hostname="h")
    assert config.proxies
    assert all(w.severity != ALERT for w in warnings)


@requires_haproxy
@pytest.mark.parametrize("name", ["ratelimit.cfg", "peers.cfg"])
def test_shipped_configs_pass_real_haproxy(name):
    proc = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(REPO / "conf" / name), "-L", "lb1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Configuration file is valid" in proc.stdout


HAPROXY_SAMPLE = """\
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind :8080
    balance roundrobin
    no option httpclose
    option httplog clf
    default_backend be
    tcp-request frob
    timeout frob 3s
    stats frob
    option forwardfor except 127.0.0.0/8 header X-Real if-none
    option http-server-close
    no bind
    http-check expect status 200
    stick-table type ip size 1k
    stick-table type ip size 1k
backend be
    bind :8081
    default_backend x
    monitor-uri /foo
    balance frob
    server s 127.0.0.1:80 frob 3
    server t 127.0.0.1:80 weight 300
    server u
    errorfile 503 /nonexistent
    errorfile 999 /etc/hostname
    server v 127.0.0.1:80 id 4
    server w 127.0.0.1:80 id 4
"""


def _flagged(lines: list[str], name: str) -> set[tuple[str, int]]:
    import re

    out = set()
    for line in lines:
        m = re.search(rf"\[{re.escape(name)}:(\d+)\]", line)
        severity = "ALERT" if "ALERT" in line else "WARNING" if "WARNING" in line else None
        if m and severity:
            out.add((severity, int(m.group(1))))
    return out


@requires_haproxy
def test_same_lines_flagged_as_real_haproxy(tmp_path):
    path = write(tmp_path, HAPROXY_SAMPLE, name="sample.cfg")
    proc = subprocess.run([haproxy_binary(), "-c", "-f", path], capture_output=True, text=True, timeout=30)
    theirs = _flagged(proc.stderr.splitlines(), "sample.cfg")
    status, lines = render_check(check_config([path], environ={}, hostname="h"))
    ours = _flagged(lines, "sample.cfg")
    assert proc.returncode == status == 1
    assert ours == theirs


def test_check_mode_reports_missing_tls_files(tmp_path):
    path = write(
        tmp_path,
        DEFAULTS
        + """\
        frontend f
            bind :1 ssl crt /nope.pem ca-file /noca.pem
        backend b
            server s 1.1.1.1:1 ssl crt /nocrt.pem ca-file /noca2.pem
        peers p
            bind :3 ssl crt /nopeer.pem
            server me
        """,
    )
    assert load_config([path], localpeer="me", environ={}, hostname="h")  # parsing alone does not open them
    result = check_config([path], localpeer="me", environ={}, hostname="h")
    assert [str(d).replace(f"{tmp_path}/", "") for d in result.diagnostics] == [
        # haproxy: 'bind :1' in section 'frontend' : unable to stat SSL certificate from file '/nope.pem' :
        # No such file or directory.
        "parsing [t.cfg:7] : 'bind :1' in section 'frontend' : unable to stat SSL certificate from file "
        "'/nope.pem' : No such file or directory.",
        # haproxy: 'bind :2' in section 'frontend' : 'ca-file' : unable to load /noca.pem
        "parsing [t.cfg:7] : 'bind :1' in section 'frontend' : 'ca-file' : unable to load /noca.pem",
        "parsing [t.cfg:9] : 'server b/s' : unable to stat SSL certificate from file '/nocrt.pem' : "
        "No such file or directory.",
        # haproxy: 'server b/s' : Couldn't open the ca-file '/noca2.pem' (No such file or directory).
        "parsing [t.cfg:9] : 'server b/s' : Couldn't open the ca-file '/noca2.pem' (No such file or directory).",
        # haproxy: 'bind :3' in section 'peers' : unable to stat SSL certificate from file '/nopeer.pem' : ...
        "parsing [t.cfg:11] : 'bind :3' in section 'peers' : unable to stat SSL certificate from file "
        "'/nopeer.pem' : No such file or directory.",
    ]
    assert render_check(result)[0] == 1


def test_zero_warning_turns_warnings_into_failure(tmp_path):
    path = write(tmp_path, "global\n  zero-warning\nfrontend f\n  bind :1\n")
    status, lines = render_check(check_config([path], environ={}, hostname="h"))
    # haproxy: [ALERT] ... : config : Some warnings were found and 'zero-warning' is set. Aborting.  (exit 1)
    assert status == 1
    assert (
        lines[-1]
        == "[ALERT]    (minilb) : config : Some warnings were found and 'zero-warning' is set. Aborting."
    )


def test_missing_timeouts_warning_as_haproxy_prints_it(tmp_path):
    path = write(tmp_path, "frontend x\n    bind :1\n")
    status, lines = render_check(check_config([path], environ={}, hostname="h"))
    assert status == 0
    # haproxy -c 2.6.12 on the same file (its location omitted by haproxy, kept by minilb):
    assert "\n".join(lines).replace(f"{tmp_path}/", "").splitlines() == [
        "[WARNING]  (minilb) : config : parsing [t.cfg:1] : missing timeouts for frontend 'x'.",
        "   | While not properly invalid, you will certainly encounter various problems",
        "   | with such a configuration. To fix this, please ensure that all following",
        "   | timeouts are set to a non-zero value: 'client', 'connect', 'server'.",
        "Warnings were found.",
        "Configuration file is valid",
    ]


def test_no_listener_exit_code(tmp_path):
    path = write(tmp_path, "frontend x\n    mode http\n    timeout client 1s\n")
    status, lines = render_check(check_config([path], environ={}, hostname="h"))
    # haproxy -c 2.6.12 on the same file: exit status 2, and on stdout
    #   Warnings were found.
    #   Configuration file has no error but will not start (no listener) => exit(2).
    assert status == 2
    assert lines[-2:] == [
        "Warnings were found.",
        "Configuration file has no error but will not start (no listener) => exit(2).",
    ]
    for text in ("global\n  stats socket /tmp/x.sock\n", "peers p\n  peer h 127.0.0.1:1\n"):
        # haproxy: a stats socket or a local peer listener is enough ("Configuration file is valid")
        path = write(tmp_path, text)
        assert render_check(check_config([path], environ={}, hostname="h")) == (
            0,
            ["Configuration file is valid"],
        )


def test_http_check_rules_without_httpchk(tmp_path):
    path = write(
        tmp_path, DEFAULTS + "backend b\n  http-check expect status 200\n  server s 1.1.1.1:1 check\n"
    )
    result = check_config([path], environ={}, hostname="h")
    # haproxy: backend 'b' uses http-check rules without 'option httpchk', so the rules are ignored.
    assert [str(d).replace(f"{tmp_path}/", "") for d in result.diagnostics] == [
        "parsing [t.cfg:6] : backend 'b' uses http-check rules without 'option httpchk', so the rules are ignored."
    ]


REALISTIC = REPO / "tests" / "data" / "config" / "realistic.cfg"


def test_realistic_config_gives_haproxys_two_diagnostics():
    status, lines = render_check(check_config([str(REALISTIC)], environ={}, hostname="h"))
    # haproxy -c 2.6.12 prints the same two (the first as a non-fatal [ALERT]) and "Configuration file is valid"
    assert status == 0
    assert [line.split(" : config : ", 1)[1].replace(str(REPO) + "/", "") for line in lines[:2]] == [
        "parsing [tests/data/config/realistic.cfg:74] : defaults section 'web' (declared at "
        "tests/data/config/realistic.cfg:14) is explicitly referenced by another proxy and implicitly used here. "
        "To avoid any ambiguity don't mix both usage. Add a last defaults section not explicitly used or always "
        "use explicit references.",
        "'option forwardfor' ignored for proxy 'tcp_passthrough' as it requires HTTP mode.",
    ]
    assert lines[2:] == ["Warnings were found.", "Configuration file is valid"]


@requires_haproxy
def test_realistic_config_is_valid_for_real_haproxy():
    proc = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(REALISTIC)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert "Configuration file is valid" in proc.stdout
    assert "'option forwardfor' ignored for proxy 'tcp_passthrough' as it requires HTTP mode." in proc.stderr


@requires_haproxy
@pytest.mark.parametrize("name", ["GOLDEN_CFG", "L6_CFG"])
def test_fetch_context_diagnostics_render_as_haproxy_prints_them(name, tmp_path):
    """Every line ``minilb -c`` prints for configs using fetches where they cannot work
    (``tests.test_rules_context``) is the line haproxy -c prints, in its order."""
    import re

    from tests import test_rules_context

    path = write(tmp_path, getattr(test_rules_context, name), name="ctx.cfg")
    proc = subprocess.run([haproxy_binary(), "-c", "-f", path], capture_output=True, text=True, timeout=30)
    theirs = [
        re.sub(r"^(\[\w+\] +)\(\d+\)", r"\1(minilb)", line)
        for line in (proc.stderr + proc.stdout).splitlines()
        if not line.startswith("[NOTICE]")
    ]
    status, ours = render_check(check_config([path], environ={}, hostname="h"))
    assert proc.returncode == status == 0
    assert ours == theirs
