"""The master/worker control values: line framing, listener keys, fd maps, show proc."""

from __future__ import annotations

import pytest

from minilb.config.model import Address
from minilb.master.control import (
    ControlLineTooLong,
    LineBuffer,
    ProcRow,
    control_line,
    decode_fd_map,
    encode_fd_map,
    listener_key,
    show_proc,
    uptime_text,
)


def test_line_buffer_splits_across_feeds_and_limits_length():
    buf = LineBuffer(limit=10)
    assert buf.feed(b"rea") == []
    assert buf.feed(b"dy\r\nsoft-stop\nx") == ["ready", "soft-stop"]
    with pytest.raises(ControlLineTooLong):
        buf.feed(b"y" * 20)
    with pytest.raises(ControlLineTooLong):
        LineBuffer(limit=4).feed(b"12345\n")


def test_control_line_refuses_embedded_newlines():
    assert control_line("ready") == b"ready\n"
    with pytest.raises(ValueError):
        control_line("a\nb")


def test_listener_keys_distinguish_what_the_kernel_distinguishes():
    a = Address("ipv4", "127.0.0.1", 80, text="127.0.0.1:80")
    b = Address("ipv4", "127.0.0.1", 81, text="127.0.0.1:81")
    assert listener_key(a) != listener_key(b)
    assert listener_key(a) == listener_key(Address("ipv4", "127.0.0.1", 80, text="ipv4@127.0.0.1:80"))
    v6 = Address("ipv6", "::", 80)
    assert listener_key(v6, v6only=True) != listener_key(v6)
    assert listener_key(Address("unix", path="/s"), mode=0o600) != listener_key(Address("unix", path="/s"))


def test_fd_map_round_trip_and_bad_input():
    fds = {"ipv4:[127.0.0.1]:80:v6only=0:v4v6=0": 3, "worker-cli": 4}
    assert decode_fd_map(encode_fd_map(fds)) == fds
    for bad in ("nope", "[1]", '{"a": "3"}', '{"a": -1}'):
        with pytest.raises(ValueError):
            decode_fd_map(bad)


def test_show_proc_layout():
    text = show_proc(
        ProcRow(10, "master", "2 [failed: 1]", 3725, "v"),
        [ProcRow(12, "worker", "0", 5, "v")],
        [ProcRow(11, "worker", "1", 61, "v")],
    )
    assert text == (
        "#<PID>          <type>          <reloads>       <uptime>        <version>\n"
        "10              master          2 [failed: 1]   0d01h02m05s     v\n"
        "# workers\n"
        "12              worker          0               0d00h00m05s     v\n"
        "# old workers\n"
        "11              worker          1               0d00h01m01s     v\n"
        "# programs\n"
        "\n"
    )
    assert uptime_text(90061) == "1d01h01m01s"
