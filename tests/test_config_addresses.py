"""HAProxy's address forms (str2sa_range); accepted forms checked with haproxy -c 2.6.12
(`bind ipv6@:::8000`, `bind [::1]:8001`, `server b :::80`, `bind abns@foo`, `bind fd@3`
all parse; `server s2 1.2.3.4:99999` gives "invalid port '99999'")."""

from __future__ import annotations

import pytest

from minilb.config.addresses import parse_address
from minilb.config.model import Address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:80", Address("ipv4", "127.0.0.1", 80, text="127.0.0.1:80")),
        (":8080", Address("ipv4", "", 8080, text=":8080")),
        ("*:8080", Address("ipv4", "", 8080, text="*:8080")),
        ("ipv4@:8080", Address("ipv4", "", 8080, text="ipv4@:8080")),
        ("ipv6@:::8000", Address("ipv6", "::", 8000, text="ipv6@:::8000")),
        (":::80", Address("ipv6", "::", 80, text=":::80")),
        ("[::1]:8001", Address("ipv6", "::1", 8001, text="[::1]:8001")),
        ("tcp6@[::1]:1", Address("ipv6", "::1", 1, text="tcp6@[::1]:1")),
        ("example.com:443", Address("ipv4", "example.com", 443, text="example.com:443")),
        ("unix@/run/x.sock", Address("unix", path="/run/x.sock", text="unix@/run/x.sock")),
        ("/run/x.sock", Address("unix", path="/run/x.sock", text="/run/x.sock")),
        ("abns@foo", Address("abns", path="foo", text="abns@foo")),
        ("fd@3", Address("fd", fd=3, text="fd@3")),
    ],
)
def test_accepted_forms(text, expected):
    assert parse_address(text) == expected


def test_server_without_port_and_env_expansion():
    assert parse_address("10.0.0.1", port_required=False).port is None
    assert parse_address("${H}:${P-81}", {"H": "10.0.0.2"}) == Address(
        "ipv4", "10.0.0.2", 81, text="${H}:${P-81}"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.2.3.4:99999", "invalid port '99999'"),
        ("1.2.3.4", "missing port specification in '1.2.3.4'"),  # haproxy: same words
        ("1.2.3.4:70-80", "port ranges are not supported by minilb"),
        ("1.2.3.4:+1", "port offsets are not supported by minilb"),
        ("sockpair@3", "socket pairs"),
        ("udp@1.2.3.4:53", "UDP addresses are not supported"),
        ("ipv4@[::1]:80", "invalid address: '::1'"),
        ("ipv6@1.2.3.4:80", "invalid address: '1.2.3.4'"),
        ("fd@x", "not a valid integer"),
        ("bogus@x", "unknown address family 'bogus'"),
        ("unix@/" + "x" * 120, "too long"),
        ("a b:80", "invalid address"),
    ],
)
def test_refused_forms(text, message):
    with pytest.raises(ValueError, match=message):
        parse_address(text)
