"""Owns the option words of ``bind`` and ``server`` lines (configuration.txt 5.1 and 5.2).

`parse_bind_options` and `parse_server_options` read the words after the address
into a plain dict of `model.Bind` / `model.Server` field values (the caller starts
from the ``default-bind`` / ``default-server`` values and builds the frozen object).
Each option HAProxy 2.6 knows has an arity and a status; options minilb does not
implement are reported through ``warn`` and skipped, unknown ones raise
`ValueError` with HAProxy's wording (``unknown keyword 'frob'``).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from minilb.config.model import TLSOptions
from minilb.units import parse_time

Warn = Callable[[str], None]

_SSL_VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")

#: Bind options HAProxy 2.6 knows that minilb does not implement: name -> argument count.
_BIND_UNSUPPORTED = {
    "accept-netscaler-cip": 1,
    "allow-0rtt": 0,
    "backlog": 1,
    "curves": 1,
    "ecdhe": 1,
    "ca-ignore-err": 1,
    "ca-sign-file": 1,
    "ca-sign-pass": 1,
    "ca-verify-file": 1,
    "crl-file": 1,
    "crt-ignore-err": 1,
    "crt-list": 1,
    "defer-accept": 0,
    "force-sslv3": 0,
    "force-tlsv10": 0,
    "force-tlsv11": 0,
    "force-tlsv12": 0,
    "force-tlsv13": 0,
    "generate-certificates": 0,
    "gid": 1,
    "group": 1,
    "id": 1,
    "interface": 1,
    "severity-output": 1,
    "mss": 1,
    "namespace": 1,
    "nice": 1,
    "no-ca-names": 0,
    "no-sslv3": 0,
    "no-tls-tickets": 0,
    "no-tlsv10": 0,
    "no-tlsv11": 0,
    "no-tlsv12": 0,
    "no-tlsv13": 0,
    "npn": 1,
    "prefer-client-ciphers": 0,
    "process": 1,
    "proto": 1,
    "quic-cc-algo": 1,
    "quic-force-retry": 0,
    "shards": 1,
    "strict-sni": 0,
    "tcp-ut": 1,
    "tfo": 0,
    "thread": 1,
    "tls-ticket-keys": 1,
    "transparent": 0,
    "uid": 1,
    "user": 1,
    "sigalgs": 1,
    "client-sigalgs": 1,
}
_BIND_SUPPORTED = (
    "accept-proxy",
    "alpn",
    "ca-file",
    "ciphers",
    "ciphersuites",
    "crt",
    "expose-fd",
    "level",
    "maxconn",
    "mode",
    "name",
    "ssl",
    "ssl-max-ver",
    "ssl-min-ver",
    "v4v6",
    "v6only",
    "verify",
)


def _need(words: list[str] | tuple[str, ...], i: int, what: str) -> str:
    if i + 1 >= len(words) or words[i + 1] == "":
        raise ValueError(f"'{words[i]}' : missing {what}")
    return words[i + 1]


def _int(text: str, option: str, low: int = 0, high: int = 2**31 - 1) -> int:
    if not text.lstrip("-").isdigit():
        raise ValueError(f"'{option}' : expects an integer argument (got '{text}')")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"'{option}' : value {value} out of range [{low}..{high}]")
    return value


def _ssl_version(text: str, option: str) -> str:
    if text not in _SSL_VERSIONS:
        raise ValueError(f"'{option}' : unknown value '{text}' (expects {', '.join(_SSL_VERSIONS)})")
    return text


def _verify(text: str, option: str) -> str:
    if text not in ("none", "optional", "required"):
        raise ValueError(
            f"'{option}' : unknown verify method '{text}', only 'none', 'optional', and 'required' are supported"
        )
    return text


def bind_option_names() -> tuple[str, ...]:
    return tuple(sorted((*_BIND_SUPPORTED, *_BIND_UNSUPPORTED)))


def parse_bind_options(
    words: list[str] | tuple[str, ...],
    fields: dict,
    warn: Warn,
    crt_base: str | None = None,
    ca_base: str | None = None,
) -> dict:
    """Apply bind option words to ``fields`` (Bind field values, with ``tls`` a dict)."""
    tls = fields.setdefault("tls", {})
    i = 0
    while i < len(words):
        w = words[i]
        if w == "ssl":
            tls["enabled"] = True
        elif w == "crt":
            tls["crt"] = (*tls.get("crt", ()), _base(crt_base, _need(words, i, "certificate location")))
            i += 1
        elif w == "ca-file":
            tls["ca_file"] = _base(ca_base, _need(words, i, "CAfile path"))
            i += 1
        elif w == "verify":
            tls["verify"] = _verify(_need(words, i, "verify method"), w)
            i += 1
        elif w == "alpn":
            tls["alpn"] = tuple(_need(words, i, "the protocol list").split(","))
            i += 1
        elif w in ("ciphers", "ciphersuites"):
            tls[w] = _need(words, i, "cipher suite")
            i += 1
        elif w in ("ssl-min-ver", "ssl-max-ver"):
            tls[w.replace("-", "_")] = _ssl_version(_need(words, i, "version"), w)
            i += 1
        elif w == "name":
            fields["name"] = _need(words, i, "name")
            i += 1
        elif w == "accept-proxy":
            fields["accept_proxy"] = True
        elif w == "v4v6":
            fields["v4v6"] = True
        elif w == "v6only":
            fields["v6only"] = True
        elif w == "maxconn":
            fields["maxconn"] = _int(_need(words, i, "value"), w, 0)
            i += 1
        elif w == "mode":
            text = _need(words, i, "mode")
            try:
                fields["mode"] = int(text, 8)
            except ValueError:
                raise ValueError(f"'{w}' : expects an octal mode (got '{text}')") from None
            i += 1
        elif w == "level":
            level = _need(words, i, "level")
            if level not in ("user", "operator", "admin"):
                raise ValueError(f"'{w}' only supports 'user', 'operator', and 'admin' (got '{level}')")
            fields["level"] = level
            i += 1
        elif w == "expose-fd":
            if _need(words, i, "argument") != "listeners":
                raise ValueError(f"'{w}' : only 'listeners' is supported (got '{words[i + 1]}')")
            fields["expose_fd_listeners"] = True
            i += 1
        elif w in _BIND_UNSUPPORTED:
            warn(f"bind option '{w}' is not supported by minilb and is ignored.")
            i += _BIND_UNSUPPORTED[w]
        else:
            raise ValueError(f"unknown keyword '{w}'.")
        i += 1
    return fields


# --------------------------------------------------------------------------- server options

#: Server options HAProxy 2.6 knows that minilb does not implement: name -> argument count.
_SERVER_UNSUPPORTED = {
    "agent-check": 0,
    "agent-send": 1,
    "agent-inter": 1,
    "agent-addr": 1,
    "agent-port": 1,
    "allow-0rtt": 0,
    "check-send-proxy": 0,
    "check-alpn": 1,
    "check-proto": 1,
    "check-via-socks4": 0,
    "crl-file": 1,
    "error-limit": 1,
    "force-sslv3": 0,
    "force-tlsv10": 0,
    "force-tlsv11": 0,
    "force-tlsv12": 0,
    "force-tlsv13": 0,
    "init-addr": 1,
    "log-proto": 1,
    "max-reuse": 1,
    "minconn": 1,
    "namespace": 1,
    "no-agent-check": 0,
    "no-ssl-reuse": 0,
    "no-sslv3": 0,
    "no-tls-tickets": 0,
    "no-tlsv10": 0,
    "no-tlsv11": 0,
    "no-tlsv12": 0,
    "no-tlsv13": 0,
    "no-tfo": 0,
    "non-stick": 0,
    "npn": 1,
    "on-error": 1,
    "on-marked-down": 1,
    "on-marked-up": 1,
    "pool-low-conn": 1,
    "pool-max-conn": 1,
    "pool-purge-delay": 1,
    "proto": 1,
    "proxy-v2-options": 1,
    "redir": 1,
    "resolve-opts": 1,
    "resolve-prefer": 1,
    "resolve-net": 1,
    "resolvers": 1,
    "send-proxy-v2": 0,
    "send-proxy-v2-ssl": 0,
    "send-proxy-v2-ssl-cn": 0,
    "no-send-proxy-v2": 0,
    "no-send-proxy-v2-ssl": 0,
    "no-send-proxy-v2-ssl-cn": 0,
    "slowstart": 1,
    "source": 1,
    "ssl-reuse": 0,
    "stick": 0,
    "socks4": 1,
    "tcp-ut": 1,
    "tfo": 0,
    "tls-tickets": 0,
    "track": 1,
    "ws": 1,
    "curves": 1,
    "sigalgs": 1,
    "client-sigalgs": 1,
}
_SERVER_SUPPORTED = (
    "addr",
    "alpn",
    "backup",
    "ca-file",
    "check",
    "check-sni",
    "check-ssl",
    "ciphers",
    "ciphersuites",
    "cookie",
    "crt",
    "disabled",
    "downinter",
    "enabled",
    "fall",
    "fastinter",
    "id",
    "inter",
    "maxconn",
    "maxqueue",
    "no-backup",
    "no-check",
    "no-check-ssl",
    "no-send-proxy",
    "no-ssl",
    "no-verifyhost",
    "observe",
    "port",
    "rise",
    "send-proxy",
    "sni",
    "ssl",
    "ssl-max-ver",
    "ssl-min-ver",
    "verify",
    "verifyhost",
    "weight",
)


def server_option_names() -> tuple[str, ...]:
    return tuple(sorted((*_SERVER_SUPPORTED, *_SERVER_UNSUPPORTED)))


def _time(text: str, option: str) -> int:
    try:
        value = parse_time(text)
    except ValueError as exc:
        raise ValueError(f"'{option}' : {exc}") from None
    if value <= 0:
        raise ValueError(f"'{option}' : '{text}' is not a positive delay")
    return value


def parse_server_options(
    words: list[str] | tuple[str, ...],
    fields: dict,
    warn: Warn,
    server_name: str,
    crt_base: str | None = None,
    ca_base: str | None = None,
) -> dict:
    """Apply server option words to ``fields`` (Server field values, with ``tls`` a dict)."""
    tls = fields.setdefault("tls", {})
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("weight", "maxconn", "maxqueue", "rise", "fall", "id"):
            low, high = {
                "weight": (0, 256),
                "rise": (1, 2**31 - 1),
                "fall": (1, 2**31 - 1),
                "id": (1, 2**31 - 1),
            }.get(w, (0, 2**31 - 1))
            text = _need(words, i, "value")
            value = _int(text, w)
            if w == "weight" and not low <= value <= high:
                raise ValueError(f"weight of server {server_name} is not within 0 and 256 ({value}).")
            if w in ("rise", "fall") and value < 1:
                raise ValueError(f"'{w}' has to be > 0.")
            if w == "id" and value < 1:
                raise ValueError("custom id has to be > 0.")
            fields[w] = value
            i += 1
        elif w in ("inter", "fastinter", "downinter"):
            fields[w] = _time(_need(words, i, "delay"), w)
            i += 1
        elif w == "port":
            text = _need(words, i, "port")
            fields["check_port"] = _int(text, w, 0, 65535)
            i += 1
        elif w == "addr":
            fields["check_addr"] = _need(words, i, "address")
            i += 1
        elif w == "backup":
            fields["backup"] = True
        elif w == "no-backup":
            fields["backup"] = False
        elif w == "disabled":
            fields["disabled"] = True
        elif w == "enabled":
            fields["disabled"] = False
        elif w == "check":
            fields["check"] = True
        elif w == "no-check":
            fields["check"] = False
        elif w == "check-ssl":
            fields["check_ssl"] = True
        elif w == "no-check-ssl":
            fields["check_ssl"] = False
        elif w == "check-sni":
            _need(words, i, "SNI")
            i += 1
        elif w == "send-proxy":
            fields["send_proxy"] = True
        elif w == "no-send-proxy":
            fields["send_proxy"] = False
        elif w == "cookie":
            fields["cookie"] = _need(words, i, "cookie value")
            i += 1
        elif w == "observe":
            mode = _need(words, i, "mode")
            if mode not in ("none", "layer4", "layer7"):
                raise ValueError(f"'observe' expects one of 'none', 'layer4', 'layer7' but got '{mode}'")
            fields["observe"] = mode
            i += 1
        elif w == "ssl":
            tls["enabled"] = True
        elif w == "no-ssl":
            tls["enabled"] = False
        elif w == "verify":
            value = _verify(_need(words, i, "verify method"), w)
            if value == "optional":
                raise ValueError("verify: 'optional' is only supported on bind lines")
            tls["verify"] = value
            i += 1
        elif w == "verifyhost":
            tls["verifyhost"] = _need(words, i, "hostname")
            i += 1
        elif w == "no-verifyhost":
            tls["verifyhost"] = None
        elif w == "sni":
            tls["sni"] = _need(words, i, "sample expression")
            i += 1
        elif w == "ca-file":
            tls["ca_file"] = _base(ca_base, _need(words, i, "CAfile path"))
            i += 1
        elif w == "crt":
            tls["crt"] = (_base(crt_base, _need(words, i, "certificate path")),)
            i += 1
        elif w == "alpn":
            tls["alpn"] = tuple(_need(words, i, "the protocol list").split(","))
            i += 1
        elif w in ("ciphers", "ciphersuites"):
            tls[w] = _need(words, i, "cipher suite")
            i += 1
        elif w in ("ssl-min-ver", "ssl-max-ver"):
            tls[w.replace("-", "_")] = _ssl_version(_need(words, i, "version"), w)
            i += 1
        elif w in _SERVER_UNSUPPORTED:
            warn(f"server option '{w}' is not supported by minilb and is ignored.")
            i += _SERVER_UNSUPPORTED[w]
        else:
            raise ValueError(f"unknown keyword '{w}'.")
        i += 1
    return fields


def _base(base: str | None, path: str) -> str:
    """``crt-base`` / ``ca-base``: relative paths are taken from the base directory."""
    if base and not path.startswith("/"):
        return f"{base.rstrip('/')}/{path}"
    return path


def build_tls(values: dict) -> TLSOptions:
    return TLSOptions(**values) if values else TLSOptions()


def copy_fields(fields: dict) -> dict:
    """A copy deep enough for option dicts (the nested ``tls`` dict is copied)."""
    out = dict(fields)
    out["tls"] = dict(fields.get("tls", {}))
    return out


def tls_fields(tls: TLSOptions) -> dict:
    return {k: v for k, v in attrs.asdict(tls, recurse=False).items() if v != getattr(TLSOptions(), k)}
