"""Owns how diagnostics are printed in check mode, as ``haproxy -c`` 2.6 prints them.

HAProxy's lines look like ``[ALERT]    (PID) : config : parsing [f:12] : message``;
minilb prints ``[ALERT]    (minilb) : config : parsing [f:12] : message`` (the
severity padded to the same column, our name where HAProxy has its pid).
"""

from __future__ import annotations

from minilb.errors import Diagnostic

_PADDED = {"ALERT": "[ALERT]    ", "WARNING": "[WARNING]  ", "NOTICE": "[NOTICE]   "}


def render_diagnostic(diagnostic: Diagnostic) -> str:
    prefix = _PADDED.get(diagnostic.severity, f"[{diagnostic.severity}] ")
    return f"{prefix}(minilb) : config : {diagnostic}"
