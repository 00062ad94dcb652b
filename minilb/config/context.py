"""Owns the state shared by the section parsers while one configuration is read.

`ParseContext` collects diagnostics (in file order), holds the environment that
``setenv`` changes and the lexer reads, and answers the global settings that
affect later lines (``crt-base``, ``ca-base``).  Handlers report a problem of
their own line by raising `Problem`; the dispatcher turns it into an alert.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from minilb.errors import ALERT, NOTICE, WARNING, Diagnostic, SourceLocation


class Problem(ValueError):
    """An error in the line being parsed (becomes an ALERT at that line)."""


class ParseContext:
    def __init__(self, environ: MutableMapping[str, str]):
        self.environ = environ
        self.diagnostics: list[Diagnostic] = []
        self.crt_base: str | None = None
        self.ca_base: str | None = None
        self.tune_bufsize = 16384
        self.seen_peers_section = False
        self.cli_localpeer: str | None = None  # -L, which wins over the global `localpeer`

    def alert(self, location: SourceLocation | None, message: str) -> None:
        self.diagnostics.append(Diagnostic(ALERT, message, location))

    def warn(self, location: SourceLocation | None, message: str) -> None:
        self.diagnostics.append(Diagnostic(WARNING, message, location))

    def notice(self, location: SourceLocation | None, message: str) -> None:
        self.diagnostics.append(Diagnostic(NOTICE, message, location))

    @property
    def has_alerts(self) -> bool:
        return any(d.severity == ALERT for d in self.diagnostics)
