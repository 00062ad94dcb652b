"""The benchmark harness's modules for tests: puts scripts/ on sys.path and re-exports `bench.*`."""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from bench import configs, extras, probe, procs, profile, report, resync_node, runner, stats, wrk  # noqa: E402

__all__ = [
    "configs",
    "extras",
    "probe",
    "procs",
    "profile",
    "report",
    "resync_node",
    "runner",
    "stats",
    "wrk",
]
