"""The stats socket's table commands against answers captured from HAProxy 2.6.12
(tests/data/stick/cli_captures.json, made by capture_haproxy.py next to it)."""

import json
import pathlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minilb.runtime.cli import CommandProcessor, _inetaddr_host, _tokenize_escaped, tokenize
from minilb.stick.table import StickTable
from minilb.timebase import ManualClock
from tests.support.stick import spec

DATA = json.loads((pathlib.Path(__file__).parent / "data" / "stick" / "cli_captures.json").read_text())

ALLT = (
    "server_id,gpt0,gpc0,gpc0_rate(1s),conn_cnt,conn_rate(2s),conn_cur,sess_cnt,sess_rate(3s),http_req_cnt,"
    "http_req_rate(4s),http_err_cnt,http_err_rate(5s),bytes_in_cnt,bytes_in_rate(6s),bytes_out_cnt,"
    "bytes_out_rate(7s),gpc1,gpc1_rate(8s),server_key,http_fail_cnt,http_fail_rate(9s)"
)


def capture_tables(clock):
    """The tables of the capture config, in declaration order."""
    return [
        StickTable(spec("fe", "ip", 1048576, 60000, "http_req_rate(10s),gpc0,http_req_cnt"), clock),
        StickTable(spec("allt", "string", 10, 30000, ALLT, length=8), clock),
        StickTable(spec("arr", "integer", 10, None, "gpt(2),gpc(3),gpc_rate(2,10s)"), clock),
        StickTable(spec("b6", "ipv6", 5, 10000, "gpc0", nopurge=True), clock),
        StickTable(spec("bin", "binary", 5, None, "gpc0", length=6), clock),
    ]


def mask(text: str) -> str:
    """Hide what differs between runs: entry addresses and expiry countdowns."""
    text = re.sub(r"^0x[0-9a-f]+:", "0xADDR:", text, flags=re.M)
    return re.sub(r" exp=\d+", " exp=N", text)


def test_capture_config_matches_the_tables_replayed():
    assert (
        "stick-table type ip size 1m expire 60s store http_req_rate(10s),gpc0,http_req_cnt" in DATA["config"]
    )
    assert DATA["haproxy"].startswith("HAProxy version 2.6.")


def test_replay_of_captured_haproxy_answers():
    processor = CommandProcessor(capture_tables(ManualClock(1000.0)))
    mismatches = []
    for level, command, expected in DATA["captures"]:
        session = processor.session(level)
        output, close = session.handle_line(command)
        assert close, command  # non-interactive: one line per connection
        if mask(output) != mask(expected):
            mismatches.append((level, command, expected, output))
    assert mismatches == []


def test_exp_counts_down_with_the_clock():
    clock = ManualClock(1000.0)
    processor = CommandProcessor(capture_tables(clock))
    admin = processor.session("admin")
    admin.handle_line("set table fe key 10.0.0.1 data.gpc0 1")
    clock.advance(12.5)
    out, _ = admin.handle_line("show table fe key 10.0.0.1")
    assert " exp=47500 " in out
    clock.advance(50)
    out, _ = admin.handle_line("show table fe key 10.0.0.1")
    assert " exp=0 " in out  # expired, not purged yet: HAProxy shows 0


def test_rate_set_on_the_cli_decays_like_haproxy():
    clock = ManualClock(1000.0)
    processor = CommandProcessor(capture_tables(clock))
    admin = processor.session("admin")
    admin.handle_line("set table fe key 10.0.0.1 data.http_req_rate 10")
    clock.advance(15)  # half of the previous period remains: 10 * 5000 // 10000
    out, _ = admin.handle_line("show table fe")
    assert "http_req_rate(10000)=5\n" in out


def test_tracked_entries_show_their_users_and_cannot_be_cleared():
    clock = ManualClock(1000.0)
    tables = capture_tables(clock)
    processor = CommandProcessor(tables)
    fe = tables[0]
    row = fe.track_key(fe.normalize_key("10.0.0.7"), True)
    admin = processor.session("admin")
    out, _ = admin.handle_line("show table fe key 10.0.0.7")
    assert " use=1 " in out and "http_req_cnt=1 " in out
    out, _ = admin.handle_line("clear table fe key 10.0.0.7")
    assert out == "Entry currently in use, cannot remove\n\n"
    admin.handle_line("clear table fe")
    assert fe.lookup(fe.normalize_key("10.0.0.7")) == row


def test_prompt_mode_keeps_the_connection_and_prints_a_prompt():
    processor = CommandProcessor(capture_tables(ManualClock(1000.0)))
    session = processor.session("admin")
    assert session.handle_line("prompt") == ("\n> ", False)
    assert session.handle_line("show table bin") == (
        "# table: bin, type: binary, size:5, used:0\n\n> ",
        False,
    )
    assert session.handle_line("show table bin; show table bin") == (
        "# table: bin, type: binary, size:5, used:0\n\n> " * 2,
        False,
    )
    out, close = session.handle_line("")
    assert out.startswith("Unknown command. Please enter one of the following commands only:\n")
    assert out.endswith("  quit                                    : disconnect\n\n> ") and not close
    assert session.handle_line("prompt") == ("\n", True)  # leaving prompt mode ends the session


def test_quit_closes_without_output():
    session = CommandProcessor([]).session("admin")
    session.handle_line("prompt")
    assert session.handle_line("quit") == ("", True)


def test_help_lists_table_commands_in_haproxy_format():
    out, _ = CommandProcessor([]).session("user").handle_line("help")
    lines = out.splitlines()
    assert lines[0] == "The following commands are valid at this level:"
    assert (
        "  show table <table> [<filter>]*          : report table usage stats or dump this table's contents"
        " (filter: data/key)" in lines
    )
    assert "  set table <table> key <k> [data.* <v>]* : update or create a table entry's data" in lines
    assert lines[-4:] == [
        "  help [<command>]                        : list matching or all commands",
        "  prompt                                  : toggle interactive mode with prompt",
        "  quit                                    : disconnect",
        "",
    ]


def test_unknown_command_suggests_close_ones():
    out, _ = CommandProcessor([]).session("admin").handle_line("show tablex")
    assert out.startswith("Unknown command, but maybe one of the following ones is a better match:\n")
    assert "  show table <table> [<filter>]*" in out


def test_registered_commands_respect_levels():
    processor = CommandProcessor([])
    processor.register(
        "show peers", "show peers [dict|-] [section]", "dump peers", lambda s, a: "peers!\n", "operator"
    )
    assert processor.session("operator").handle_line("show peers") == ("peers!\n\n", True)
    assert processor.session("user").handle_line("show peers") == ("Permission denied\n\n", True)


@pytest.mark.parametrize(
    "line, expected",
    [
        ("show table fe", [["show", "table", "fe"]]),
        ("  show   table\tfe  ", [["show", "table", "fe"]]),
        ("a;b c", [["a"], ["b", "c"]]),
        ("set table t key a\\ b", [["set", "table", "t", "key", "a b"]]),
        ("a\\;b", [["a;b"]]),
        ("", [[]]),
    ],
)
def test_tokenize(line, expected):
    assert tokenize(line) == expected
    assert _tokenize_escaped(line) == expected


@given(st.text(alphabet=" \t;ab\n\r.", max_size=40))
def test_tokenize_without_escapes_splits_as_the_character_loop(line):
    assert tokenize(line) == _tokenize_escaped(line)


@pytest.mark.parametrize(
    "text, value",
    [
        ("1.2.3.4", 0x01020304),
        ("5abc", 0x05000000),
        ("::1", 0),
        ("10.0.0", 0x0A000000),
        ("1.2.3.4.5", 0x01020304),
    ],
)
def test_cli_ip_keys_are_read_like_haproxy(text, value):
    assert _inetaddr_host(text) == value
