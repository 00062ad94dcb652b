"""scripts/bench_resync.py end to end with a small table: every pair (minilb -> minilb,
minilb -> haproxy, haproxy -> haproxy) resyncs over TCP, the learner ends with exactly
the teacher's entries, sampled keys hold equal values, and nothing is left behind.
It checks the harness, never a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import haproxy_binary, requires_haproxy
from tests.support.procs import REPO, child_env

pytestmark = [requires_haproxy, pytest.mark.interop, pytest.mark.integration]

SCRIPT = REPO / "scripts" / "bench_resync.py"
ENTRIES = 2000


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-resync") / "results.json"
    argv = [
        sys.executable,
        str(SCRIPT),
        "--entries",
        str(ENTRIES),
        "--rounds",
        "1",
        "--samples",
        "6",
        "--timeout",
        "60",
        "--haproxy",
        haproxy_binary(),
        "--json",
        str(out),
    ]
    done = subprocess.run(argv, env=child_env(), cwd=str(REPO), capture_output=True, text=True, timeout=240)
    assert out.exists(), done.stdout + done.stderr
    return done, json.loads(out.read_text())


def test_every_pair_learns_every_entry_with_equal_values(run):
    done, data = run
    assert done.returncode == 0, done.stdout + done.stderr
    assert data["entries"] == ENTRIES
    rows = {row["pair"]: row for row in data["results"]}
    assert sorted(rows) == ["haproxy -> haproxy", "minilb -> haproxy", "minilb -> minilb"]
    for pair, row in rows.items():
        assert "error" not in row, (pair, row)
        assert row["used"] == ENTRIES, (pair, row)
        assert row["sampled"] == 6, (pair, row)
        assert row["mismatches"] == [], (pair, row)
        assert row["synced"] is True, (pair, row)
        assert row["rates_checked"] + len(row["rate_drift"]) == 6, (pair, row)
    # the first pairs run a few seconds after the fill: their rates are still in their
    # first 10 s period, so they are compared exactly
    assert sum(row["rates_checked"] for row in rows.values()) > 0
    # the minilb sides report their stalls, the haproxy sides cannot
    assert rows["minilb -> minilb"]["learner_stall_ms"] is not None
    assert rows["minilb -> haproxy"]["teacher_stall_ms"] is not None
    assert rows["haproxy -> haproxy"]["teacher_stall_ms"] is None
    assert rows["minilb -> minilb"]["learner_gc_ms"] is not None
    assert rows["haproxy -> haproxy"]["learner_gc_ms"] is None


def test_the_report_names_the_pairs_and_the_speedups(run):
    done, _ = run
    lines = done.stdout.splitlines()
    for pair in ("minilb -> minilb", "minilb -> haproxy", "haproxy -> haproxy"):
        assert any(line.startswith(pair) for line in lines), done.stdout
    assert any(line.startswith("minilb learner speed-ups: ") for line in lines), done.stdout
    if os.environ.get("MINILB_PURE"):
        assert "MINILB_PURE is set" in done.stdout


def test_nothing_is_left_behind(run):
    _, data = run
    assert len(data["pids"]) == 5  # two teachers, one learner per pair
    assert not [pid for pid in data["pids"] if _alive(pid)]
    assert not Path(data["tmp"]).exists()
