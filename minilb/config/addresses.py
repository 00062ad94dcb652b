"""Owns HAProxy's address syntax (``bind``, ``server``, ``peer``, ``stats socket``, ``log``).

`parse_address` turns the text into a `model.Address` or raises `ValueError` with
HAProxy-like wording.  Accepted forms (HAProxy's ``str2sa_range``):

- ``host:port``, ``:port``, ``*:port``, ``[v6]:port``, bare IPv6 ``:::80`` (the last
  colon separates the port), a host alone when ``port_required`` is false;
- prefixes ``ipv4@`` / ``tcp4@``, ``ipv6@`` / ``tcp6@``, ``tcp@`` (family from the host),
  ``unix@PATH`` and plain absolute paths, ``abns@NAME``, ``fd@N``;
- refused with a clear message: ``sockpair@``, UDP and QUIC prefixes, ``uxdg@``,
  port ranges (``80-90``) and port offsets (``+1``), which minilb does not implement.

Environment variables are normally expanded by the lexer; ``${VAR}`` left in the
text (for example an address given on the command line) is expanded from ``environ``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from minilb.config.model import Address

_PREFIX_FAMILY = {
    "ipv4": "ipv4",
    "tcp4": "ipv4",
    "ipv6": "ipv6",
    "tcp6": "ipv6",
    "tcp": "",
    "unix": "unix",
    "uxst": "unix",
    "abns": "abns",
    "fd": "fd",
}
_REFUSED_PREFIXES = {
    "sockpair": "socket pairs ('sockpair@') are not supported by minilb",
    "udp": "UDP addresses are not supported by minilb",
    "udp4": "UDP addresses are not supported by minilb",
    "udp6": "UDP addresses are not supported by minilb",
    "quic4": "QUIC addresses are not supported by minilb",
    "quic6": "QUIC addresses are not supported by minilb",
    "uxdg": "unix datagram sockets are not supported by minilb",
}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:-([^}]*))?\}")
#: Longest unix socket path (sun_path is 108 bytes with the terminating NUL).
MAX_UNIX_PATH = 107


def _expand(text: str, environ: Mapping[str, str] | None) -> str:
    if environ is None or "${" not in text:
        return text

    def sub(m: re.Match[str]) -> str:
        value = environ.get(m.group(1))
        if value is None:
            return m.group(2) or ""
        return value

    return _VAR.sub(sub, text)


def parse_port(text: str, whole: str) -> int:
    if not text.isdigit():
        if re.fullmatch(r"\d+-\d+", text):
            raise ValueError(f"port ranges are not supported by minilb: '{whole}'")
        if text[:1] in "+-" and text[1:].isdigit():
            raise ValueError(f"port offsets are not supported by minilb: '{whole}'")
        raise ValueError(f"invalid port '{text}'")
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid port '{text}'")
    return port


def parse_address(
    text: str,
    environ: Mapping[str, str] | None = None,
    *,
    port_required: bool = True,
) -> Address:
    """Parse one HAProxy address.  ``port_required`` is false for ``server`` lines,
    where a missing port means "the port the client connected to"."""
    original = text
    text = _expand(text.strip(), environ)
    if not text:
        raise ValueError("missing address")
    family = ""
    m = re.match(r"^([a-z0-9]+)@", text)
    if m:
        prefix = m.group(1)
        if prefix in _REFUSED_PREFIXES:
            raise ValueError(f"{_REFUSED_PREFIXES[prefix]}: '{original}'")
        if prefix not in _PREFIX_FAMILY:
            raise ValueError(f"unknown address family '{prefix}' in '{original}'")
        family = _PREFIX_FAMILY[prefix]
        text = text[m.end() :]
    elif text.startswith("/"):
        family = "unix"

    if family == "unix":
        if not text:
            raise ValueError(f"missing path in '{original}'")
        if len(text.encode()) > MAX_UNIX_PATH:
            raise ValueError(f"socket path '{text}' too long (max {MAX_UNIX_PATH})")
        return Address("unix", path=text, text=original)
    if family == "abns":
        if not text:
            raise ValueError(f"missing abstract socket name in '{original}'")
        return Address("abns", path=text, text=original)
    if family == "fd":
        if not text.isdigit():
            raise ValueError(f"file descriptor '{text}' is not a valid integer in '{original}'")
        return Address("fd", fd=int(text), text=original)

    host, port_text = _split_host_port(text)
    port: int | None = None
    if port_text is None or port_text == "":
        if port_required:
            raise ValueError(f"missing port specification in '{original}'")
    else:
        port = parse_port(port_text, original)
    if host == "*":
        host = ""
    detected = _ip_family(host)
    if family == "ipv4" and detected == "ipv6":
        raise ValueError(f"invalid address: '{host}' in '{original}'")
    if family == "ipv6" and detected == "ipv4":
        raise ValueError(f"invalid address: '{host}' in '{original}'")
    if not family:
        family = detected or "ipv4"
    if detected is None and host:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", host):
            raise ValueError(f"invalid address: '{host}' in '{original}'")
    return Address(family, host=host, port=port, text=original)


def _split_host_port(text: str) -> tuple[str, str | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"invalid address: missing ']' in '{text}'")
        host = text[1:end]
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"invalid address: '{text}'")
        return host, rest[1:] if rest else None
    if ":" not in text:
        return text, None
    host, _, port = text.rpartition(":")
    return host, port


def _ip_family(host: str) -> str | None:
    if not host:
        return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return "ipv6" if ip.version == 6 else "ipv4"
