"""Owns check mode (``haproxy -c``): load a configuration, run the rule compiler's
checks (`minilb.rules.compile.check_rules`, which loads the feature modules of
`minilb.rules.features` as a running worker does), and render the result as HAProxy
prints it.

`check_config` never raises on a bad configuration: problems come back in
`CheckResult.diagnostics`.  Beyond `load_config`, it checks that the TLS files the
configuration names can be read (as HAProxy does while parsing).  `render_check` gives the lines and exit status of
``haproxy -c`` 2.6.12: every diagnostic as ``[ALERT]``/``[WARNING]``/``[NOTICE]``,
then ``Fatal errors found in configuration.`` and status 1 on errors, or
``Configuration file is valid`` (after ``Warnings were found.`` if any) and 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from minilb.config.files import check_tls_files
from minilb.config.load import load_config
from minilb.config.model import Config
from minilb.config.render import render_diagnostic
from minilb.errors import ALERT, WARNING, ConfigError, Diagnostic
from minilb.rules.compile import check_rules

ZERO_WARNING_ABORT = "Some warnings were found and 'zero-warning' is set. Aborting."


@attrs.frozen
class CheckResult:
    ok: bool
    config: Config | None
    diagnostics: tuple[Diagnostic, ...]


def check_config(
    paths: Sequence[str],
    *,
    localpeer: str | None = None,
    environ: Mapping[str, str] | None = None,
    hostname: str | None = None,
) -> CheckResult:
    try:
        config, diagnostics = load_config(paths, localpeer=localpeer, environ=environ, hostname=hostname)
    except ConfigError as exc:
        return CheckResult(ok=False, config=None, diagnostics=exc.diagnostics)
    diagnostics = [*diagnostics, *check_tls_files(config)]
    # the same compiler, with the same feature modules (minilb.rules.features), as a worker
    diagnostics = [*diagnostics, *check_rules(config)]
    if config.global_.zero_warning and any(d.severity == WARNING for d in diagnostics):
        diagnostics.append(Diagnostic(ALERT, ZERO_WARNING_ABORT))
    ok = not any(d.severity == ALERT for d in diagnostics)
    return CheckResult(ok=ok, config=config if ok else None, diagnostics=tuple(diagnostics))


NO_LISTENER = "Configuration file has no error but will not start (no listener) => exit(2)."


def has_listeners(config: Config) -> bool:
    """Whether starting would listen anywhere: enabled frontends' binds, stats sockets,
    or an enabled peers section's local listener."""
    if config.global_.stats_sockets:
        return True
    if any(p.binds for p in config.frontends if not p.disabled):
        return True
    return any(s.bind is not None for s in config.peers if not s.disabled)


def render_check(result: CheckResult) -> tuple[int, list[str]]:
    """(exit status, lines) as ``haproxy -c`` prints them: 1 on errors, 2 for a valid
    configuration that would not listen anywhere, else 0."""
    lines = [render_diagnostic(d) for d in result.diagnostics]
    alerts = [d for d in result.diagnostics if d.severity == ALERT]
    if not result.ok and [d.message for d in alerts] == [ZERO_WARNING_ABORT]:
        return 1, lines  # haproxy stops there, without the "Fatal errors" line
    if not result.ok:
        lines.append(Diagnostic(ALERT, "Fatal errors found in configuration.").render())
        return 1, lines
    if any(d.severity == WARNING for d in result.diagnostics):
        lines.append("Warnings were found.")
    if result.config is not None and not has_listeners(result.config):
        lines.append(NO_LISTENER)
        return 2, lines
    lines.append("Configuration file is valid")
    return 0, lines
