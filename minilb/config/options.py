"""Owns the option words of ``bind`` and ``server`` lines (configuration.txt 5.1 and 5.2).

`parse_bind_options` and `parse_server_options` read the words after the address
into a plain dict of `model.Bind` / `model.Server` field values (the caller starts
from the ``default-bind`` / ``default-server`` values and builds the frozen object).
Each option HAProxy 2.6 knows has an arity and a status; options minilb does not
implement are reported through ``warn`` and skipped, unknown ones raise
`ValueError` with HAProxy's wording (``unknown keyword 'frob'``).

Also the global TLS defaults: `parse_tls_default_options` reads the words of
``ssl-default-bind-options`` / ``ssl-default-server-options`` into `TLSOptions` field
values, and `with_tls_defaults` merges them (and the default ciphers) into a line's
TLS settings, the line's own settings winning.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

import attrs

from minilb.config.common import bad_time_char
from minilb.config.model import TLSOptions
from minilb.units import parse_time

Warn = Callable[[str], None]

_SSL_VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
#: the version of ``no-tlsv12``, ``force-tlsv12``...
_VERSION_WORDS = {
    "sslv3": "SSLv3",
    "tlsv10": "TLSv1.0",
    "tlsv11": "TLSv1.1",
    "tlsv12": "TLSv1.2",
    "tlsv13": "TLSv1.3",
}
_VERSION_OPTIONS = tuple(f"{how}-{word}" for how in ("no", "force") for word in _VERSION_WORDS)

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
    "npn": 1,
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


def _server_verify(text: str, option: str) -> str:
    if _verify(text, option) == "optional":
        raise ValueError("verify: 'optional' is only supported on bind lines")
    return text


def _time(text: str, option: str) -> int:
    try:
        value = parse_time(text)
    except ValueError as exc:
        if "overflow" in str(exc):
            raise ValueError(f"'{option}' : {exc}") from None
        raise ValueError(f"unexpected character '{bad_time_char(text)}' in '{option}' argument.") from None
    if value <= 0:
        raise ValueError(f"'{option}' : '{text}' is not a positive delay")
    return value


def _octal(text: str, option: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise ValueError(f"'{option}' : expects an octal mode (got '{text}')") from None


def _level(text: str, option: str) -> str:
    if text not in ("user", "operator", "admin"):
        raise ValueError(f"'{option}' only supports 'user', 'operator', and 'admin' (got '{text}')")
    return text


def _listeners(text: str, option: str) -> bool:
    if text != "listeners":
        raise ValueError(f"'{option}' : only 'listeners' is supported (got '{text}')")
    return True


def _observe(text: str, option: str) -> str:
    if text not in ("none", "layer4", "layer7"):
        raise ValueError(f"'observe' expects one of 'none', 'layer4', 'layer7' but got '{text}'")
    return text


def _alpn(text: str, option: str) -> tuple[str, ...]:
    return tuple(text.split(","))


def _text(text: str, option: str) -> str:
    return text


def _host(text: str, option: str) -> str:
    """An IP address or a host name (``addr`` for health checks)."""
    try:
        ipaddress.ip_address(text.strip("[]"))
        return text.strip("[]")
    except ValueError:
        pass
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text):
        raise ValueError(f"'{option}' : invalid address: '{text}'")
    return text


def _positive(text: str, option: str) -> int:
    value = _int(text, option, -(2**31))
    if value <= 0:
        raise ValueError(f"'{option}' has to be > 0.")
    return value


def _ranged(low: int, high: int = 2**31 - 1):
    return lambda text, option: _int(text, option, low, high)


# An option is either a flag: (target, field, value), or takes one argument:
# (target, field, converter).  target is "fields" (the Bind/Server) or "tls".
_Flag = tuple[str, str, object]
_Valued = tuple[str, str, Callable[[str, str], object]]

_TLS_VALUED: dict[str, _Valued] = {
    "alpn": ("tls", "alpn", _alpn),
    "ciphers": ("tls", "ciphers", _text),
    "ciphersuites": ("tls", "ciphersuites", _text),
    "ssl-min-ver": ("tls", "ssl_min_ver", _ssl_version),
    "ssl-max-ver": ("tls", "ssl_max_ver", _ssl_version),
}

_BIND_FLAGS: dict[str, _Flag] = {
    "ssl": ("tls", "enabled", True),
    "no-tls-tickets": ("tls", "tls_tickets", False),
    "prefer-client-ciphers": ("tls", "prefer_client_ciphers", True),
    "accept-proxy": ("fields", "accept_proxy", True),
    "v4v6": ("fields", "v4v6", True),
    "v6only": ("fields", "v6only", True),
}
_BIND_VALUED: dict[str, _Valued] = {
    **_TLS_VALUED,
    "verify": ("tls", "verify", _verify),
    "name": ("fields", "name", _text),
    "maxconn": ("fields", "maxconn", _ranged(0)),
    "mode": ("fields", "mode", _octal),
    "level": ("fields", "level", _level),
    "expose-fd": ("fields", "expose_fd_listeners", _listeners),
}

_SERVER_FLAGS: dict[str, _Flag] = {
    "ssl": ("tls", "enabled", True),
    "no-ssl": ("tls", "enabled", False),
    "no-tls-tickets": ("tls", "tls_tickets", False),
    "tls-tickets": ("tls", "tls_tickets", True),
    "no-verifyhost": ("tls", "verifyhost", None),
    "backup": ("fields", "backup", True),
    "no-backup": ("fields", "backup", False),
    "disabled": ("fields", "disabled", True),
    "enabled": ("fields", "disabled", False),
    "check": ("fields", "check", True),
    "no-check": ("fields", "check", False),
    "check-ssl": ("fields", "check_ssl", True),
    "no-check-ssl": ("fields", "check_ssl", False),
    "send-proxy": ("fields", "send_proxy", True),
    "no-send-proxy": ("fields", "send_proxy", False),
}
_SERVER_VALUED: dict[str, _Valued] = {
    **_TLS_VALUED,
    "verify": ("tls", "verify", _server_verify),
    "verifyhost": ("tls", "verifyhost", _text),
    "sni": ("tls", "sni", _text),
    "maxconn": ("fields", "maxconn", _ranged(0)),
    "maxqueue": ("fields", "maxqueue", _ranged(0)),
    "rise": ("fields", "rise", _positive),
    "fall": ("fields", "fall", _positive),
    "id": ("fields", "id", _ranged(1)),
    "inter": ("fields", "inter", _time),
    "fastinter": ("fields", "fastinter", _time),
    "downinter": ("fields", "downinter", _time),
    "port": ("fields", "check_port", _ranged(0, 65535)),
    "addr": ("fields", "check_addr", _host),
    "cookie": ("fields", "cookie", _text),
    "observe": ("fields", "observe", _observe),
    "check-sni": ("fields", "", _text),  # accepted; checks use the server's sni
}


def _version_word(tls: dict, word: str, no_versions: bool) -> bool:
    """``no-sslv3``/``no-tlsv1x`` (a refused version) and ``force-sslv3``/``force-tlsv1x``
    (ssl-min-ver = ssl-max-ver, as haproxy does): True when ``word`` was one of them."""
    if word.startswith("no-") and word[3:] in _VERSION_WORDS:
        if not no_versions:
            raise ValueError(f"'{word}' option is not accepted in default-server sections")
        version = _VERSION_WORDS[word[3:]]
        if version not in tls.get("no_versions", ()):
            tls["no_versions"] = (*tls.get("no_versions", ()), version)
        return True
    if word.startswith("force-") and word[6:] in _VERSION_WORDS:
        tls["ssl_min_ver"] = tls["ssl_max_ver"] = _VERSION_WORDS[word[6:]]
        return True
    return False


def _parse_options(
    words: list[str] | tuple[str, ...],
    fields: dict,
    warn: Warn,
    flags: dict[str, _Flag],
    valued: dict[str, _Valued],
    unsupported: dict[str, int],
    kind: str,
    file_option: Callable[[str, str], None],
    no_versions: bool = True,
) -> dict:
    tls = fields.setdefault("tls", {})
    i = 0
    while i < len(words):
        w = words[i]
        if _version_word(tls, w, no_versions):
            pass
        elif w in flags:
            target, field, value = flags[w]
            (tls if target == "tls" else fields)[field] = value
        elif w in valued:
            target, field, convert = valued[w]
            value = convert(_need(words, i, "argument"), w)
            if field:
                (tls if target == "tls" else fields)[field] = value
            i += 1
        elif w in ("crt", "ca-file"):
            file_option(w, _need(words, i, "file path"))
            i += 1
        elif w in unsupported:
            warn(f"{kind} option '{w}' is not supported by minilb and is ignored.")
            i += unsupported[w]
            if w == "source":  # source ADDR [usesrc X] [interface NAME]
                while i + 2 < len(words) and words[i + 1] in ("usesrc", "interface"):
                    i += 2
        else:
            raise ValueError(f"unknown keyword '{w}'.")
        i += 1
    return fields


def _file_options(tls: dict, crt_base: str | None, ca_base: str | None, repeat_crt: bool):
    def handle(option: str, path: str) -> None:
        if option == "ca-file":
            tls["ca_file"] = _base(ca_base, path)
        elif repeat_crt:
            tls["crt"] = (*tls.get("crt", ()), _base(crt_base, path))
        else:
            tls["crt"] = (_base(crt_base, path),)

    return handle


def bind_option_names() -> tuple[str, ...]:
    return tuple(
        sorted({*_BIND_FLAGS, *_BIND_VALUED, "crt", "ca-file", *_VERSION_OPTIONS, *_BIND_UNSUPPORTED})
    )


def parse_bind_options(
    words: list[str] | tuple[str, ...],
    fields: dict,
    warn: Warn,
    crt_base: str | None = None,
    ca_base: str | None = None,
) -> dict:
    """Apply bind option words to ``fields`` (Bind field values, with ``tls`` a dict);
    ``crt`` may be repeated (several certificates selected by SNI)."""
    tls = fields.setdefault("tls", {})
    return _parse_options(
        words,
        fields,
        warn,
        _BIND_FLAGS,
        _BIND_VALUED,
        _BIND_UNSUPPORTED,
        "bind",
        _file_options(tls, crt_base, ca_base, repeat_crt=True),
    )


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
    "init-addr": 1,
    "log-proto": 1,
    "max-reuse": 1,
    "minconn": 1,
    "namespace": 1,
    "no-agent-check": 0,
    "no-ssl-reuse": 0,
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
    "track": 1,
    "ws": 1,
    "curves": 1,
    "sigalgs": 1,
    "client-sigalgs": 1,
}


def server_option_names() -> tuple[str, ...]:
    return tuple(
        sorted({*_SERVER_FLAGS, *_SERVER_VALUED, "crt", "ca-file", *_VERSION_OPTIONS, *_SERVER_UNSUPPORTED})
    )


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

    def weight(text: str, option: str) -> int:
        value = _int(text, option)
        if not 0 <= value <= 256:
            raise ValueError(f"weight of server {server_name} is not within 0 and 256 ({value}).")
        return value

    valued = {**_SERVER_VALUED, "weight": ("fields", "weight", weight)}
    return _parse_options(
        words,
        fields,
        warn,
        _SERVER_FLAGS,
        valued,
        _SERVER_UNSUPPORTED,
        "server",
        _file_options(tls, crt_base, ca_base, repeat_crt=False),
        no_versions=server_name != "default-server",
    )


def _base(base: str | None, path: str) -> str:
    """``crt-base`` / ``ca-base``: relative paths are taken from the base directory."""
    if base and not path.startswith("/"):
        return f"{base.rstrip('/')}/{path}"
    return path


# --------------------------------------------------------------------------- global TLS defaults


def parse_tls_default_options(words: list[str] | tuple[str, ...], keyword: str) -> dict:
    """The `TLSOptions` field values of ``ssl-default-bind-options`` /
    ``ssl-default-server-options`` words (haproxy 2.6.12 accepts exactly these:
    ``no-sslv3``/``no-tlsv1x``, ``force-sslv3``/``force-tlsv1x`` (min = max),
    ``no-tls-tickets``, ``ssl-min-ver V``, ``ssl-max-ver V``, and on binds only
    ``prefer-client-ciphers``); other words raise `ValueError` in haproxy's words."""
    where = f"on global statement '{keyword}'"
    values: dict = {}
    i = 0
    while i < len(words):
        w = words[i]
        if _version_word(values, w, True):
            pass
        elif w == "no-tls-tickets":
            values["tls_tickets"] = False
        elif w == "prefer-client-ciphers" and "bind" in keyword:
            values["prefer_client_ciphers"] = True
        elif w in ("ssl-min-ver", "ssl-max-ver"):
            if i + 1 >= len(words) or not words[i + 1]:
                raise ValueError(f"'{w}' : missing the ssl/tls version {where}.")
            version = words[i + 1]
            if version not in _SSL_VERSIONS:
                raise ValueError(f"'{version}' : unknown ssl/tls version {where}.")
            values["ssl_min_ver" if w == "ssl-min-ver" else "ssl_max_ver"] = version
            i += 1
        else:
            raise ValueError(f"unknown option '{w}' {where}.")
        i += 1
    return values


def with_tls_defaults(
    tls: TLSOptions, ciphers: str | None, ciphersuites: str | None, defaults: dict
) -> TLSOptions:
    """``tls`` of a bind or server line with the global ``ssl-default-*`` settings
    merged in as haproxy does when it reads ``ssl``: the line's own ciphers and
    min/max versions win, refused versions and ticket/cipher-order flags add up.
    A line without TLS is returned unchanged."""
    if not tls.enabled:
        return tls
    changes: dict = {}
    if tls.ciphers is None and ciphers is not None:
        changes["ciphers"] = ciphers
    if tls.ciphersuites is None and ciphersuites is not None:
        changes["ciphersuites"] = ciphersuites
    for field in ("ssl_min_ver", "ssl_max_ver"):
        if getattr(tls, field) is None and defaults.get(field) is not None:
            changes[field] = defaults[field]
    extra = tuple(v for v in defaults.get("no_versions", ()) if v not in tls.no_versions)
    if extra:
        changes["no_versions"] = (*tls.no_versions, *extra)
    if defaults.get("tls_tickets") is False and tls.tls_tickets:
        changes["tls_tickets"] = False
    if defaults.get("prefer_client_ciphers") and not tls.prefer_client_ciphers:
        changes["prefer_client_ciphers"] = True
    return attrs.evolve(tls, **changes) if changes else tls


#: the lowest version a TLS bind accepts without ``ssl-min-ver`` (configuration.txt
#: 5.1); servers start from the lowest one OpenSSL offers (it has no SSLv3 any more)
BIND_MIN_VERSION = "TLSv1.2"
SERVER_MIN_VERSION = "TLSv1.0"


def tls_versions(tls: TLSOptions, bind: bool) -> tuple[str, ...]:
    """The protocol versions a TLS bind (``bind``) or server line accepts, lowest
    first, as haproxy 2.6 computes them: ``ssl-min-ver``/``ssl-max-ver`` (``force-*``
    sets both) give the range and the ``no-*`` words are then ignored; without them
    every version from the default floor up that no ``no-*`` word refuses (the
    result may have a hole: ``no-tlsv11`` on a server)."""
    floor = BIND_MIN_VERSION if bind else SERVER_MIN_VERSION
    if tls.ssl_min_ver or tls.ssl_max_ver:
        low = _SSL_VERSIONS.index(tls.ssl_min_ver or floor)
        high = _SSL_VERSIONS.index(tls.ssl_max_ver or _SSL_VERSIONS[-1])
        return _SSL_VERSIONS[low : high + 1]
    start = _SSL_VERSIONS.index(floor)
    return tuple(v for v in _SSL_VERSIONS[start:] if v not in tls.no_versions)


def tls_line_problems(tls: TLSOptions, bind: bool, what: str) -> tuple[list[str], list[str]]:
    """(alerts, warnings) about the versions of a TLS line and the CA a verifying bind
    needs, in haproxy's words; ``what`` names it (``bind '127.0.0.1:443'``, ``server 'b/s1'``)."""
    if not tls.enabled:
        return [], []
    alerts: list[str] = []
    warnings: list[str] = []
    if bind and tls.verify in ("optional", "required") and not tls.ca_file:
        alerts.append(f"verify is enabled but no CA file specified for {what}.")
    fix = "Use only 'ssl-min-ver' and 'ssl-max-ver' to fix."
    if tls.no_versions and (tls.ssl_min_ver or tls.ssl_max_ver):
        warnings.append(f"no-sslv3/no-tlsv1x are ignored for {what}. {fix}")
    versions = tls_versions(tls, bind)
    if not versions:
        alerts.append(f"all SSL/TLS versions are disabled for {what}.")
        return alerts, warnings
    span = _SSL_VERSIONS[_SSL_VERSIONS.index(versions[0]) : _SSL_VERSIONS.index(versions[-1]) + 1]
    hole = None
    for version in span:  # one warning per gap, naming its last version as haproxy does
        if version not in versions:
            hole = version
        elif hole:
            warnings.append(f"SSL/TLS versions range not contiguous for {what}. Hole find for {hole}. {fix}")
            hole = None
    return alerts, warnings


def build_tls(values: dict) -> TLSOptions:
    return TLSOptions(**values) if values else TLSOptions()


def copy_fields(fields: dict) -> dict:
    """A copy deep enough for option dicts (the nested ``tls`` dict is copied)."""
    out = dict(fields)
    out["tls"] = dict(fields.get("tls", {}))
    return out


def option_support(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(supported, warned) option words of ``bind`` or ``server`` lines, for the README."""
    if kind == "bind":
        names, unsupported = bind_option_names(), _BIND_UNSUPPORTED
    else:
        names, unsupported = server_option_names(), _SERVER_UNSUPPORTED
    return tuple(n for n in names if n not in unsupported), tuple(sorted(unsupported))
