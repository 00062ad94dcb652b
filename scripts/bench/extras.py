"""The other benchmark scripts the harness runs after the HTTP scenarios (stick tables, peers resync,
reload hand-over), each pinned to the system-under-test CPU unless it measures processes that need
cores of their own (the resync between processes), its report kept as text in its own block of
BENCHMARKS.md. A script that does not exist yet is skipped and its block left as it was.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import attrs

from bench import procs


@attrs.frozen
class Extra:
    name: str
    block: str
    script: str  # relative to the repository
    title: str
    expected_s: float  # about how long it takes on this machine: not started with less time left
    args: tuple[str, ...] = ()
    pinned: bool = True  # False: its processes (two peers each on a core) are spread by the kernel


EXTRAS: tuple[Extra, ...] = (
    Extra(
        "stick",
        "bench_stick",
        "scripts/bench_stick.py",
        "Stick tables at 1,000,000 entries (memory, CPU per track)",
        expected_s=60,
    ),
    Extra(
        "peers",
        "bench_peers",
        "scripts/bench_peers.py",
        "Peers: full resync of 1,000,000 entries",
        expected_s=120,
    ),
    Extra(
        "resync",
        "bench_resync",
        "scripts/bench_resync.py",
        "Peers: full resync of 1,000,000 entries between processes (minilb and haproxy)",
        expected_s=150,
        pinned=False,
    ),
    Extra(
        "reload",
        "bench_reload",
        "scripts/bench_reload.py",
        "Reload: table hand-over under load",
        expected_s=240,
    ),
)
EXTRAS_BY_NAME = {extra.name: extra for extra in EXTRAS}


@attrs.frozen
class ExtraResult:
    extra: Extra
    output: str
    status: int | None  # None: killed at its time limit
    seconds: float


def render_extra(result: ExtraResult, *, when: str, commit: str) -> str:
    """The block of one extra benchmark: when and how it ran, and what it printed."""
    command = " ".join(["python", result.extra.script, *result.extra.args])
    placement = "pinned to CPU 0" if result.extra.pinned else "not pinned: its processes on any CPU"
    if result.status is None:
        outcome = f"stopped at its time limit after {result.seconds:.0f} s"
    elif result.status != 0:
        outcome = f"exited with status {result.status} after {result.seconds:.0f} s"
    else:
        outcome = f"{result.seconds:.0f} s"
    fence = "````" if "```" in result.output else "```"
    return "\n".join(
        [
            f"**{result.extra.title}** — run by `scripts/bench_http.py` on {when} at {commit} "
            f"({placement}; {outcome}).",
            "",
            f"Command: `{command}`",
            "",
            f"{fence}text",
            result.output.rstrip(),
            fence,
        ]
    )


def run_extra(
    extra: Extra, registry: procs.ProcessRegistry, repo: Path, cpu: int, timeout_s: float
) -> ExtraResult | None:
    """Run one extra script to completion (or its time limit); None when the script does not exist."""
    script = repo / extra.script
    if not script.exists():
        return None
    began = time.monotonic()
    managed = registry.start(
        f"extra-{extra.name}",
        [sys.executable, str(script), *extra.args],
        cpu=cpu if extra.pinned else None,
        cwd=str(repo),
    )
    status: int | None
    try:
        status = managed.popen.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        status = None
    finally:
        registry.stop(managed)
    output = managed.log_path.read_text(errors="replace")
    return ExtraResult(extra, output, status, time.monotonic() - began)
