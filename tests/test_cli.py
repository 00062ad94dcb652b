"""The `minilb` command line (HAProxy 2.6's) and the twistd plugin's options."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from twisted.python import usage

from minilb import cli
from minilb.cli import HaproxyArgs, UsageError, parse_haproxy_args
from tests.conftest import haproxy_binary, requires_haproxy

REPO = Path(__file__).resolve().parent.parent

VALID = """\
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    server s1 127.0.0.1:9
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_parse_the_haproxy_command_line():
    a = parse_haproxy_args(
        [
            "-f",
            "a.cfg",
            "-f",
            "dir",
            "-L",
            "lb1",
            "-db",
            "-p",
            "/run/x.pid",
            "-sf",
            "12",
            "13",
            "-q",
            "-W",
            "-S",
            "/m",
        ]
    )
    assert a.files == ["a.cfg", "dir"]
    assert (a.localpeer, a.foreground, a.pidfile, a.quiet, a.master_worker) == (
        "lb1",
        True,
        "/run/x.pid",
        True,
        True,
    )
    assert a.soft_stop_pids == [12, 13] and a.master_cli == ["/m"]
    b = parse_haproxy_args(
        ["-D", "-st", "7", "-c", "-f", "x.cfg", "-vv", "-dW", "-n", "100", "--", "y.cfg", "z.cfg"]
    )
    assert b.daemon and b.check and b.version == 2 and b.fail_on_warnings and b.maxconn == 100
    assert b.hard_stop_pids == [7] and b.files == ["x.cfg", "y.cfg", "z.cfg"]
    assert parse_haproxy_args(["-d"]).debug and parse_haproxy_args(["-d"]).foreground
    assert parse_haproxy_args([]) == HaproxyArgs()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-Z"], "unknown option '-Z'"),
        (["-f"], "requires an argument"),
        (["-n", "many"], "expects a number"),
        (["-sf", "abc"], None),  # 'abc' is not a flag: it is taken as a pid and refused
        (["stray"], "unexpected argument"),
    ],
)
def test_bad_command_lines_are_usage_errors(argv, message):
    with pytest.raises(UsageError) as e:
        parse_haproxy_args(argv)
    if message:
        assert message in str(e.value)


def test_unknown_flag_prints_usage_and_exits_1(capsys):
    assert cli.haproxy_main(["-Z"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("minilb version ")
    assert "Usage : minilb [-f <cfgfile|cfgdir>]*" in err and "unknown option '-Z'" in err


def test_help_is_usage_and_exit_1_like_haproxy(capsys):
    assert cli.haproxy_main(["-h"]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("Usage : minilb") and "[ALERT]" not in err


def test_no_configuration_prints_usage_and_exits_1(capsys):
    assert cli.haproxy_main([]) == 1
    assert "Usage : minilb" in capsys.readouterr().err


def test_version_lines(capsys):
    assert cli.haproxy_main(["-v"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("minilb version 0.1.0 - HAProxy version 2.6 compatible")
    assert len(out) == 3 and out[2].startswith("Running on: ")
    assert cli.haproxy_main(["-vv"]) == 0
    assert "Build options :" in capsys.readouterr().out


def test_check_mode_exit_codes_and_output(tmp_path, capsys):
    good = write(tmp_path, "good.cfg", VALID)
    assert cli.haproxy_main(["-c", "-f", good]) == 0
    out, err = capsys.readouterr()
    assert out == "Configuration file is valid\n" and err == ""
    assert cli.haproxy_main(["-c", "-q", "-f", good]) == 0
    assert capsys.readouterr().out == ""
    bad = write(tmp_path, "bad.cfg", "frontend x\n    bindd :80\n")
    assert cli.haproxy_main(["-c", "-f", bad]) == 1
    out, err = capsys.readouterr()
    assert f"parsing [{bad}:2] : unknown keyword 'bindd'" in err
    assert err.rstrip().endswith("Fatal errors found in configuration.")
    assert out == ""
    assert cli.haproxy_main(["-c", "-f", str(tmp_path / "missing.cfg")]) == 1


def test_dW_turns_warnings_into_failure(tmp_path, capsys):
    warned = write(
        tmp_path, "warn.cfg", "frontend x\n    mode http\n    bind 127.0.0.1:1234\n"
    )  # no timeouts
    assert cli.haproxy_main(["-c", "-f", warned]) == 0
    out, err = capsys.readouterr()
    assert "[WARNING]" in err and "Warnings were found." in out
    assert cli.haproxy_main(["-c", "-dW", "-f", warned]) == 1
    out, err = capsys.readouterr()
    assert err.rstrip().endswith("Some warnings were found and 'zero-warning' is set. Aborting.")
    assert cli.haproxy_main(["-db", "-dW", "-f", warned], run=lambda c, a: 0) == 1


def test_nothing_to_listen_on(tmp_path, capsys):
    backend_only = write(
        tmp_path, "b.cfg", VALID.split("frontend")[0] + "backend be\n    server s1 127.0.0.1:9\n"
    )
    assert cli.haproxy_main(["-c", "-f", backend_only]) == 2  # as haproxy -c: valid, but would not start
    assert "will not start (no listener) => exit(2)." in capsys.readouterr().out
    assert cli.haproxy_main(["-db", "-f", backend_only], run=lambda c, a: 0) == 1
    assert "No enabled listener found" in capsys.readouterr().err


def test_run_mode_loads_then_hands_over_and_refuses_bad_configs(tmp_path, capsys):
    seen = []
    good = write(tmp_path, "good.cfg", VALID)
    assert cli.haproxy_main(["-db", "-L", "me", "-f", good], run=lambda c, a: seen.append((c, a)) or 0) == 0
    config, args = seen[0]
    assert config.proxy("be").servers[0].name == "s1" and config.localpeer == "me" and args.foreground
    bad = write(tmp_path, "bad.cfg", "backend b\n    server s1 300.1.1.1:80\n    bogus\n")
    assert cli.haproxy_main(["-db", "-f", bad], run=lambda c, a: seen.append(c) or 0) == 1
    assert len(seen) == 1
    assert "[ALERT]" in capsys.readouterr().err


def test_twistd_options():
    opts = cli.Options()
    opts.parseOptions(["-c", "a.cfg", "--config", "b.cfg", "-L", "peer1", "--check"])
    assert opts["config"] == ["a.cfg", "b.cfg"] and opts["localpeer"] == "peer1" and opts["check"]
    with pytest.raises(usage.UsageError):
        cli.Options().parseOptions([])


def test_twistd_check_mode_exits_with_haproxy_codes(tmp_path, capsys):
    opts = cli.Options()
    opts.parseOptions(["-c", write(tmp_path, "good.cfg", VALID), "--check"])
    with pytest.raises(SystemExit) as e:
        cli.makeService(opts)
    assert e.value.code == 0
    opts = cli.Options()
    opts.parseOptions(["-c", write(tmp_path, "bad.cfg", "listen x\n  balance nope\n")])
    with pytest.raises(SystemExit) as e:
        cli.makeService(opts)  # a config error at start: diagnostics and exit 1, no traceback
    assert e.value.code == 1
    assert "[ALERT]" in capsys.readouterr().err


def test_signal_old_processes_sends_soft_stop(tmp_path):
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal,sys,time\nsignal.signal(signal.SIGUSR1, lambda *a: sys.exit(42))\n"
            "print('ready', flush=True)\ntime.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout.readline() == b"ready\n"
        cli.signal_old_processes([child.pid, 999_999_999], signal.SIGUSR1)
        assert child.wait(timeout=10) == 42
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_console_script_module_runs(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    good = write(tmp_path, "good.cfg", VALID)
    p = subprocess.run(
        [sys.executable, "-m", "minilb", "-c", "-f", good], env=env, capture_output=True, timeout=60
    )
    assert (p.returncode, p.stdout) == (0, b"Configuration file is valid\n")
    p = subprocess.run([sys.executable, "-m", "minilb", "-x"], env=env, capture_output=True, timeout=60)
    assert p.returncode == 1


def test_basic_cfg_is_valid_for_minilb(capsys):
    assert cli.haproxy_main(["-c", "-f", str(REPO / "conf" / "basic.cfg")]) == 0


@requires_haproxy
def test_basic_cfg_is_valid_for_real_haproxy():
    p = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(REPO / "conf" / "basic.cfg")], capture_output=True, timeout=60
    )
    assert p.returncode == 0, p.stderr


def test_stderr_log_has_haproxy_shape(capsys):
    cli.stderr_log()("warning", "Server be/s1 is DOWN, reason: x")
    cli.stderr_log(quiet=True)("warning", "hidden")
    cli.stderr_log(quiet=True)("alert", "backend be has no server available!")
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"[WARNING]  ({os.getpid()}) : Server be/s1 is DOWN, reason: x",
        f"[ALERT]    ({os.getpid()}) : backend be has no server available!",
    ]
