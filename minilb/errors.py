"""Owns where things came from and how problems are reported.

`SourceLocation` names a configuration line; `Diagnostic` is one problem (alert or
warning) at a location, formatted as HAProxy does (``parsing [file:line] : message``);
`ConfigError` carries every diagnostic of one load so that all problems of a file are
reported in one run.  Protocol errors carry what to answer the remote side.
"""

from __future__ import annotations

import attrs


@attrs.frozen(order=True)
class SourceLocation:
    """A line of a configuration file (1-based)."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


#: Used for objects built in code rather than read from a file.
BUILTIN = SourceLocation("<builtin>", 0)


ALERT = "ALERT"
WARNING = "WARNING"
NOTICE = "NOTICE"

# haproxy pads the bracketed severity to one column: "[ALERT]    ", "[WARNING]  "
_SEVERITY_COLUMN = 11


@attrs.frozen
class Diagnostic:
    """One problem found while reading or checking a configuration."""

    severity: str  # ALERT, WARNING or NOTICE
    message: str
    location: SourceLocation | None = None

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"parsing [{self.location}] : {self.message}"

    def render(self) -> str:
        """The line ``haproxy -c`` 2.6 prints, severity prefix included:
        ``[ALERT]    (minilb) : config : parsing [f:12] : message`` (minilb's name where
        HAProxy prints its pid).  The one formatter of diagnostics
        (`minilb.config.render.render_diagnostic` delegates here)."""
        return f"{f'[{self.severity}]':<{_SEVERITY_COLUMN}}(minilb) : config : {self}"


class ConfigError(Exception):
    """The configuration is invalid; `diagnostics` lists every problem found."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]):
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    @property
    def alerts(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == ALERT)


class ProtocolError(Exception):
    """A remote side broke a wire protocol; `answer` is what to send before closing."""

    def __init__(self, message: str, answer: bytes = b""):
        super().__init__(message)
        self.answer = answer


class HTTPError(Exception):
    """A request that cannot be processed; `status` is the HAProxy error to answer."""

    def __init__(self, status: int, reason: str = ""):
        super().__init__(reason or str(status))
        self.status = status
