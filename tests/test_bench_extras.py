"""The blocks of the other benchmark scripts that the harness runs."""

from __future__ import annotations

from tests.support.bench import extras


def result(output, status, seconds=12.0):
    return extras.ExtraResult(extras.EXTRAS_BY_NAME["stick"], output, status, seconds)


def test_block_holds_the_command_and_the_output_verbatim():
    text = extras.render_extra(
        result("entries  1,000,000\n", 0), when="2026-11-21 12:00 UTC", commit="commit abc"
    )
    assert "Command: `python scripts/bench_stick.py`" in text
    assert "```text\nentries  1,000,000\n```" in text
    assert "(pinned to CPU 0; 12 s)" in text


def test_block_says_when_a_script_failed_or_was_stopped():
    failed = extras.render_extra(result("Traceback ...", 1), when="w", commit="c")
    assert "exited with status 1 after 12 s" in failed
    stopped = extras.render_extra(result("", None, 300.0), when="w", commit="c")
    assert "stopped at its time limit after 300 s" in stopped


def test_output_with_a_fence_gets_a_longer_fence():
    text = extras.render_extra(result("```\ninner\n```", 0), when="w", commit="c")
    assert text.endswith("````")


def test_missing_script_is_skipped(tmp_path):
    assert (
        extras.run_extra(extras.EXTRAS_BY_NAME["peers"], registry=None, repo=tmp_path, cpu=0, timeout_s=1)
        is None
    )


def test_the_resync_between_processes_runs_unpinned_and_says_so():
    extra = extras.EXTRAS_BY_NAME["resync"]
    assert extra.script == "scripts/bench_resync.py"
    assert not extra.pinned
    text = extras.render_extra(extras.ExtraResult(extra, "table\n", 0, 80.0), when="w", commit="c")
    assert "(not pinned: its processes on any CPU; 80 s)" in text
    assert "Command: `python scripts/bench_resync.py`" in text
