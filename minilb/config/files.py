"""Owns the checks of files a configuration names for TLS (``crt``, ``ca-file``).

HAProxy opens these while parsing; minilb's `load_config` keeps parsing free of
file access beyond ``errorfile`` (so a configuration can be loaded and inspected
on another machine), and check mode (`minilb.check`), which also gates start-up,
runs `check_tls_files` to report missing files with HAProxy 2.6.12's wording.
"""

from __future__ import annotations

import errno
import os

from minilb.config.model import Bind, Config, TLSOptions
from minilb.errors import ALERT, Diagnostic, SourceLocation


def _problem(path: str) -> str | None:
    """The strerror HAProxy would print, or None when the file can be read."""
    if os.path.isdir(path):
        return None if os.access(path, os.R_OK | os.X_OK) else os.strerror(errno.EACCES)
    if not os.path.exists(path):
        return os.strerror(errno.ENOENT)
    if not os.access(path, os.R_OK):
        return os.strerror(errno.EACCES)
    return None


def _bind_problems(bind: Bind, section: str, out: list[Diagnostic]) -> None:
    where = f"'bind {bind.address.text or bind.address}' in section '{section}'"
    for crt in bind.tls.crt:
        reason = _problem(crt)
        if reason:
            out.append(
                Diagnostic(
                    ALERT,
                    f"{where} : unable to stat SSL certificate from file '{crt}' : {reason}.",
                    bind.origin,
                )
            )
    if bind.tls.ca_file and _problem(bind.tls.ca_file):
        out.append(Diagnostic(ALERT, f"{where} : 'ca-file' : unable to load {bind.tls.ca_file}", bind.origin))


def _client_problems(tls: TLSOptions, where: str, origin: SourceLocation, out: list[Diagnostic]) -> None:
    if not tls.enabled:
        return
    for crt in tls.crt:
        reason = _problem(crt)
        if reason:
            out.append(
                Diagnostic(
                    ALERT, f"{where} : unable to stat SSL certificate from file '{crt}' : {reason}.", origin
                )
            )
    if tls.ca_file:
        reason = _problem(tls.ca_file)
        if reason:
            out.append(
                Diagnostic(ALERT, f"{where} : Couldn't open the ca-file '{tls.ca_file}' ({reason}).", origin)
            )


def check_tls_files(config: Config) -> list[Diagnostic]:
    """An alert per missing or unreadable ``crt`` / ``ca-file`` of binds, servers and peers."""
    out: list[Diagnostic] = []
    for proxy in config.proxies:
        for bind in proxy.binds:
            _bind_problems(bind, proxy.kind, out)
        for server in proxy.servers:
            _client_problems(server.tls, f"'server {proxy.name}/{server.name}'", server.origin, out)
    for section in config.peers:
        if section.bind is not None:
            _bind_problems(section.bind, "peers", out)
        for peer in section.peers:
            if peer.name != config.localpeer:
                _client_problems(peer.tls, f"'{peer.syntax} {section.name}/{peer.name}'", peer.origin, out)
    return out
