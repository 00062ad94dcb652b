"""BENCHMARKS.md blocks, the results table and the target checks."""

from __future__ import annotations

import pytest

from tests.support.bench import report, stats

DOC = "# minilb benchmarks\n\nHand-written intro.\n\n<!-- bench_http:begin -->\nold table\n<!-- bench_http:end -->\n\n## Reading\n\nkept\n"


def test_replace_block_keeps_the_hand_written_text():
    updated = report.replace_block(DOC, "bench_http", "new table\n")
    assert "old table" not in updated
    assert "<!-- bench_http:begin -->\nnew table\n<!-- bench_http:end -->" in updated
    assert updated.startswith("# minilb benchmarks\n\nHand-written intro.\n\n")
    assert updated.endswith("\n\n## Reading\n\nkept\n")
    assert report.replace_block(updated, "bench_http", "new table\n") == updated


def test_replace_block_appends_a_missing_block():
    updated = report.replace_block(DOC, "bench_stick", "stick numbers")
    assert updated.startswith(DOC)
    assert updated.endswith("<!-- bench_stick:begin -->\nstick numbers\n<!-- bench_stick:end -->\n")


def test_replace_block_refuses_half_a_block():
    with pytest.raises(ValueError):
        report.replace_block("<!-- x:begin -->\nno end\n", "x", "y")


def test_replacement_text_with_backslashes_is_taken_literally():
    assert "a\\1b" in report.replace_block(DOC, "bench_http", "a\\1b")


def test_cpu_model_from_cpuinfo():
    assert report.cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"
    assert report.cpu_model("") == "unknown"


def row(scenario, system, rps, p99_us, state="ok"):
    return report.Row(
        scenario=scenario,
        scenario_title=scenario,
        system=system,
        state=state,
        rps=stats.summarize([rps * 0.9, rps, rps * 1.1]),
        p50_us=stats.summarize([500.0, 500.0, 500.0]),
        p99_us=stats.summarize([p99_us] * 3),
        cpu_us_per_req=stats.summarize([10.0, 11.0, 12.0]),
    )


def test_table_shows_medians_spreads_and_ratios_to_haproxy():
    rows = [row("plain", "haproxy", 50_000, 2000), row("plain", "minilb", 25_000, 5000)]
    table = report.render_table(rows)
    minilb_line = next(line for line in table.splitlines() if "| minilb |" in line)
    assert "25,000 (22,500–27,500)" in minilb_line
    assert "| 0.50× |" in minilb_line
    assert "| 2.50× |" in minilb_line  # p99 ratio
    assert minilb_line.endswith("| none |")


def test_a_system_that_did_not_run_is_shown_with_its_state():
    rows = [
        row("plain", "haproxy", 50_000, 2000),
        report.Row("plain", "plain", "minilb", "not running", note="No module named minilb.__main__"),
    ]
    assert "| plain | minilb | not running |" in report.render_table(rows)
    assert "minilb, plain: not running: No module named minilb.__main__" in report.render_notes(rows)


def test_targets_are_checked_against_haproxy_and_the_naive_proxy():
    rows = [
        row("track", "haproxy", 56_000, 2000),
        row("track", "minilb", 28_000, 7000),
        row("plain", "minilb", 30_000, 3000),
        row("plain", "naive", 3_000, 20000),
        row("newconn", "minilb", 9_000, 3000),
    ]
    targets = {target.text: target for target in report.evaluate_targets(rows)}
    assert targets["track-sc0 + deny that never fires: req/s ≥ 0.35× HAProxy (aim 0.5×)"].met is True
    assert targets["track-sc0: p99 latency ≤ 3× HAProxy's"].met is False
    assert targets["plain keep-alive: req/s ≥ 6× the naive Twisted proxy"].met is True
    assert targets["deny path: req/s ≥ 0.35× HAProxy (aim 0.5×)"].met is None
    assert targets["new connections: ≥ 10,000/s"].met is False
    # both rows have the same CPU µs/req, so the capacity ratio is 1
    assert targets["track-sc0 + deny that never fires: req/s ≥ 0.35× HAProxy (aim 0.5×)"].by_cpu == "1.00×"
    assert "| the same from CPU µs/req |" in report.render_targets(list(targets.values()))


def test_update_document_creates_then_updates_blocks(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    report.update_document(
        path,
        {"bench_http": "one"},
        template="# t\n\nintro\n\n<!-- bench_http:begin -->\n<!-- bench_http:end -->\n",
    )
    report.update_document(path, {"bench_stick": "two"})
    text = path.read_text()
    assert text.startswith("# t\n\nintro\n\n<!-- bench_http:begin -->\none\n<!-- bench_http:end -->\n")
    assert text.endswith("<!-- bench_stick:begin -->\ntwo\n<!-- bench_stick:end -->\n")
