"""Owns how diagnostics are printed in check mode, as ``haproxy -c`` 2.6 prints them.

HAProxy's lines look like ``[ALERT]    (PID) : config : parsing [f:12] : message``;
minilb prints ``[ALERT]    (minilb) : config : parsing [f:12] : message`` (the
severity padded to the same column, our name where HAProxy has its pid).  The format
itself is `Diagnostic.render` (one implementation); this is the name callers use.
"""

from __future__ import annotations

from minilb.errors import Diagnostic


def render_diagnostic(diagnostic: Diagnostic) -> str:
    return diagnostic.render()
