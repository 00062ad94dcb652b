"""BENCHMARKS.md: the generated blocks between `<!-- NAME:begin -->` and `<!-- NAME:end -->` markers (the
hand-written text around them is kept as it is), the machine description, and the results table with
medians, spreads and ratios to HAProxy, and the issue's targets checked against it.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import attrs

from bench.stats import Summary, ratio


def begin_marker(name: str) -> str:
    return f"<!-- {name}:begin -->"


def end_marker(name: str) -> str:
    return f"<!-- {name}:end -->"


def replace_block(document: str, name: str, content: str) -> str:
    """Put `content` between the markers of block `name`, or append the block when it is not there yet.
    Everything outside the markers is left exactly as it was."""
    begin, end = begin_marker(name), end_marker(name)
    block = f"{begin}\n{content.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document) is None:
        if begin in document or end in document:
            raise ValueError(f"block {name!r} has only one of its two markers")
        separator = (
            "" if document.endswith("\n\n") or not document else ("\n" if document.endswith("\n") else "\n\n")
        )
        return f"{document}{separator}{block}\n"
    return pattern.sub(lambda _match: block, document, count=1)


def update_document(path: Path, blocks: dict[str, str], template: str = "# minilb benchmarks\n") -> None:
    """Replace (or append) each named block of the markdown file at `path`, creating it from `template`.
    The other benchmark scripts (stick tables, peers resync, reload hand-over) write their own blocks
    into BENCHMARKS.md through this, next to the HTTP results."""
    document = path.read_text() if path.exists() else template
    for name, content in blocks.items():
        document = replace_block(document, name, content)
    path.write_text(document)


# -- the machine ----------------------------------------------------------------------------------------


def _first_line(argv: Sequence[str]) -> str:
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (completed.stdout or completed.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return "unknown"


def machine_lines() -> list[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            model = cpu_model(handle.read())
    except OSError:
        model = "unknown"
    try:
        import twisted

        twisted_version = twisted.__version__
    except ImportError:
        twisted_version = "not installed"
    return [
        f"- CPU: {model}, {os.cpu_count()} cores (nproc)",
        f"- kernel: {platform.release()}",
        f"- Python {platform.python_version()}, Twisted {twisted_version}",
        f"- {_first_line(['haproxy', '-v'])}",
        f"- {_first_line(['nginx', '-v'])}",
        f"- {_first_line(['wrk', '-v'])}",
    ]


# -- the results table ----------------------------------------------------------------------------------


@attrs.frozen
class Row:
    """One system in one scenario, reduced to what the table shows."""

    scenario: str
    scenario_title: str
    system: str
    state: str
    note: str = ""
    rps: Summary | None = None
    p50_us: Summary | None = None
    p99_us: Summary | None = None
    cpu_us_per_req: Summary | None = None
    problems: tuple[str, ...] = ()


def _spread(summary: Summary, fmt: str, scale: float = 1.0) -> str:
    return f"{fmt.format(summary.median / scale)} ({fmt.format(summary.low / scale)}–{fmt.format(summary.high / scale)})"


def _ratio_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def render_table(rows: Sequence[Row], reference: str = "haproxy") -> str:
    """The markdown table: median (min–max) of each figure, and its ratio to the reference system's median."""
    by_key = {(row.scenario, row.system): row for row in rows}
    out = [
        "| scenario | system | req/s | ×HAProxy | p50 ms | ×HAProxy | p99 ms | ×HAProxy | CPU µs/req | ×HAProxy | errors and checks |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        if row.state != "ok" or row.rps is None:
            status = row.state if row.state != "ok" else "no successful run"
            out.append(
                f"| {row.scenario_title} | {row.system} | {status} | | | | | | | | {'; '.join(row.problems)} |"
            )
            continue
        ref = by_key.get((row.scenario, reference))

        def rel(field: str, row: Row = row, ref: Row | None = ref) -> str:
            mine: Summary | None = getattr(row, field)
            theirs: Summary | None = getattr(ref, field) if ref is not None else None
            return _ratio_text(ratio(mine.median if mine else None, theirs.median if theirs else None))

        cpu = row.cpu_us_per_req
        out.append(
            "| "
            + " | ".join(
                [
                    row.scenario_title,
                    row.system,
                    _spread(row.rps, "{:,.0f}"),
                    rel("rps"),
                    _spread(row.p50_us, "{:.2f}", 1000) if row.p50_us else "–",
                    rel("p50_us"),
                    _spread(row.p99_us, "{:.2f}", 1000) if row.p99_us else "–",
                    rel("p99_us"),
                    _spread(cpu, "{:.1f}") if cpu else "–",
                    rel("cpu_us_per_req"),
                    "; ".join(row.problems) or "none",
                ]
            )
            + " |"
        )
    return "\n".join(out) + "\n"


def render_notes(rows: Sequence[Row]) -> str:
    """Why a system did not take part in a scenario (n/a ones are self-explanatory and left out)."""
    lines = []
    for row in rows:
        if row.state in ("ok", "n/a") or not row.note:
            continue
        lines_of_note = [line.strip() for line in row.note.splitlines() if line.strip()]
        detail = " / ".join(lines_of_note[:1] + lines_of_note[-3:][1:])
        lines.append(f"- {row.system}, {row.scenario}: {row.state}: {detail}")
    return "\n".join(lines) + ("\n" if lines else "")


# -- the targets --------------------------------------------------------------------------------


@attrs.frozen
class Target:
    text: str
    met: bool | None  # None: not measured
    measured: str
    by_cpu: str = "–"  # the same ratio from CPU µs/req (capacity per CPU second), steadier on a busy machine


def _median(rows: dict[tuple[str, str], Row], scenario: str, system: str, field: str) -> float | None:
    row = rows.get((scenario, system))
    if row is None or row.state != "ok":
        return None
    summary: Summary | None = getattr(row, field)
    return summary.median if summary else None


def evaluate_targets(rows: Sequence[Row]) -> list[Target]:
    """The targets of the benchmark issue, for minilb, from the medians of this run."""
    by_key = {(row.scenario, row.system): row for row in rows}
    targets: list[Target] = []

    def versus(text: str, scenario: str, field: str, other: str, test) -> None:
        mine = _median(by_key, scenario, "minilb", field)
        theirs = _median(by_key, scenario, other, field)
        value = ratio(mine, theirs)
        measured = "not measured" if value is None else f"{value:.2f}×"
        by_cpu = "–"
        if field == "rps":  # requests per CPU second: the inverse ratio of CPU µs per request
            capacity = ratio(
                _median(by_key, scenario, other, "cpu_us_per_req"),
                _median(by_key, scenario, "minilb", "cpu_us_per_req"),
            )
            by_cpu = "–" if capacity is None else f"{capacity:.2f}×"
        targets.append(Target(text, None if value is None else bool(test(value)), measured, by_cpu))

    versus(
        "track-sc0 + deny that never fires: req/s ≥ 0.35× HAProxy (aim 0.5×)",
        "track",
        "rps",
        "haproxy",
        lambda r: r >= 0.35,
    )
    versus("deny path: req/s ≥ 0.35× HAProxy (aim 0.5×)", "deny", "rps", "haproxy", lambda r: r >= 0.35)
    versus("plain keep-alive: req/s ≥ 6× the naive Twisted proxy", "plain", "rps", "naive", lambda r: r >= 6)
    for scenario, title in (("plain", "plain"), ("track", "track-sc0"), ("deny", "deny path")):
        versus(f"{title}: p99 latency ≤ 3× HAProxy's", scenario, "p99_us", "haproxy", lambda r: r <= 3)
    newconn = _median(by_key, "newconn", "minilb", "rps")
    targets.append(
        Target(
            "new connections: ≥ 10,000/s",
            None if newconn is None else newconn >= 10_000,
            "not measured" if newconn is None else f"{newconn:,.0f}/s",
        )
    )
    return targets


def render_targets(targets: Sequence[Target]) -> str:
    out = [
        "| target | measured | met | the same from CPU µs/req |",
        "| --- | ---: | --- | ---: |",
    ]
    for target in targets:
        met = "–" if target.met is None else ("yes" if target.met else "**no**")
        out.append(f"| {target.text} | {target.measured} | {met} | {target.by_cpu} |")
    return "\n".join(out) + "\n"
