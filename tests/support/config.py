"""Helpers for the config tests: load a config text and get its diagnostics as
``SEVERITY parsing [t.cfg:N] : message`` strings (the temporary directory removed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from minilb.config.load import load_config
from minilb.errors import ConfigError

DEFAULTS = """\
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
"""


def write(tmp_path: Path, text: str, name: str = "t.cfg") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def lines_of(diagnostics, tmp_path: Path) -> list[str]:
    return [f"{d.severity} {d}".replace(f"{tmp_path}/", "") for d in diagnostics]


def load(tmp_path: Path, text: str, **kwargs):
    """(config or None, diagnostic lines)."""
    kwargs.setdefault("hostname", "testhost")
    kwargs.setdefault("environ", {})
    path = write(tmp_path, text)
    try:
        config, warnings = load_config([path], **kwargs)
    except ConfigError as exc:
        return None, lines_of(exc.diagnostics, tmp_path)
    return config, lines_of(warnings, tmp_path)
