"""Benchmark minilb side by side with HAProxy 2.6 and a naive Twisted reverse proxy, each in front of the
same nginx origin, and write the results into BENCHMARKS.md.

    python scripts/bench_http.py --quick      # about 3 minutes: 3 repetitions x 2 s
    python scripts/bench_http.py              # the full run, within 15 minutes: 4 repetitions x 6 s,
                                              # then the stick/peers/reload scripts in the time left

The system under test runs on CPU 0, wrk and the origin on CPU 1 (taskset). The systems are measured
interleaved (A B C A B C ...) so that drift of a shared machine hits all alike; the table shows medians,
min-max spreads and ratios to HAProxy's medians. Every process the harness starts is stopped at the end,
also on Ctrl-C. Needs: haproxy, nginx (nginx-light), wrk, taskset; py-spy for --profile.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import configs, procs, report  # noqa: E402
from bench.extras import EXTRAS_BY_NAME, ExtraResult, render_extra, run_extra  # noqa: E402
from bench.profile import py_spy_command, render_profile, summarize_collapsed  # noqa: E402
from bench.runner import DEFAULT_MINILB_COMMAND, REPO, SUT_CPU, Cell, Harness, Options  # noqa: E402
from bench.stats import median  # noqa: E402

RESULTS_BLOCK = "bench_http"
PROFILE_BLOCK = "bench_http_profile"
SYSTEMS = ("haproxy", "minilb", "naive")
REQUIRED_TOOLS = ("haproxy", "nginx", "wrk", "taskset")

BENCHMARKS_TEMPLATE = """# minilb benchmarks

<!-- Hand-written text outside the generated blocks (between the NAME:begin and NAME:end markers) is
     kept by the scripts that write this file; only the blocks are replaced. -->

## HTTP proxy: minilb, HAProxy 2.6 and a naive Twisted proxy

How these numbers are made: `python scripts/bench_http.py` (`--quick` for a run of about three minutes) starts an
nginx origin (one process, a small fixed body, a 1 MB file) and, for each scenario, HAProxy 2.6
(`nbthread 1`), minilb (`python -m minilb -f CFG -db`, one process; `--minilb-cmd` changes it) and the
naive Twisted reverse proxy
(`twisted.web.proxy.ReverseProxyResource` in a `Site`, `scripts/naive_proxy.py`), each in front of that
origin with the same generated haproxy.cfg (minilb reads HAProxy's configuration language).

- The system under test is pinned to CPU 0, wrk (`-t1 -c50`) and the origin to CPU 1 (`taskset`).
- The systems are measured in turn (A B C A B C ...) so that the drift of a shared machine hits all
  alike. Each cell is the median of the repetitions with the min–max spread in brackets; each figure is
  also given as a ratio to HAProxy's median in the same run (for req/s higher is better, for latency and
  CPU lower is better).
- CPU µs/req is the user+system CPU time of the system's whole process tree (master and workers) during
  the measured run, from /proc, divided by the requests wrk completed. It is steadier than req/s on a
  busy machine: it does not count the time the system waited for the CPU.
- Each measured run also records how much of CPU 0 other processes of the machine took; cells above
  10% say so. The kernel shares a CPU between sessions (autogroups), and each process the harness starts
  is a session of its own, so on a busy machine a system under test may get a small slice of its core.
  `--nice -10` (as root) raises the benchmark's processes and their sessions above other work, the same
  for every system; it slows everything else on the machine down meanwhile.
- Before measuring, each system gets two requests on one connection: the status, the body and whether
  the connection stays open are checked. During the runs wrk's socket errors and non-2xx counts, and the
  origin's request counter (nginx stub_status), show a broken run: in the deny scenario every request
  must be answered 429 by the rule and none may reach the origin.
- Scenarios: plain keep-alive proxying; `track-sc0 src` with a deny rule that never fires; the deny path
  (`track-sc0 src` and `deny deny_status 429 if { sc_http_req_rate(0) gt 0 }`, the connection kept
  alive); a new connection per request (`Connection: close`); 65,536 client keys (a wrk Lua script
  cycles through 65,536 `X-Forwarded-For` addresses, tracked with `track-sc0 req.hdr(x-forwarded-for)`);
  a 1 MB response body. The naive proxy has no rules: n/a in the rule scenarios. It also closes the
  client connection after every response (twisted.web.proxy dials the origin with `Connection: close`
  and passes that header back), so its "keep-alive" figures are new-connection figures.

<!-- bench_http:begin -->
(not run yet)
<!-- bench_http:end -->

### Where the time goes (profile)

`python scripts/bench_http.py --profile` records minilb with py-spy (`pip install py-spy`; a tool of the
harness, not a dependency of minilb) during an extra run of the plain scenario, or of each scenario of
`--profile-scenarios plain,track,deny,newconn`, and writes the top functions here.

<!-- bench_http_profile:begin -->
(not recorded yet)
<!-- bench_http_profile:end -->

### Reading

(Written by hand after a full run: what the figures say, what stands in the way of the targets.)

## Stick tables, peers and reload

Run by `python scripts/bench_http.py` after the HTTP scenarios in a full run, as far as the 15-minute
budget allows (an extra is not started with less time left than it usually takes), or on their own with
`python scripts/bench_http.py --scenarios none --extras stick,peers,resync,reload`. Each script belongs to its
own area and prints its own figures and targets; its output is kept here verbatim.

<!-- bench_stick:begin -->
(not run yet)
<!-- bench_stick:end -->

<!-- bench_peers:begin -->
(not run yet)
<!-- bench_peers:end -->

<!-- bench_resync:begin -->
(not run yet)
<!-- bench_resync:end -->

<!-- bench_reload:begin -->
(not run yet)
<!-- bench_reload:end -->
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 repetitions of 2 s each (about 3 minutes)")
    parser.add_argument("--repetitions", type=int, help="measured runs per system and scenario (at least 3)")
    parser.add_argument("--duration", type=float, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, help="seconds of unmeasured load before the first run")
    parser.add_argument("--budget", type=float, help="stop starting new runs after this many seconds in all")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(s.name for s in configs.SCENARIOS),
        help=f"comma-separated subset of {','.join(s.name for s in configs.SCENARIOS)}, or 'none' "
        "(only the --extras)",
    )
    parser.add_argument(
        "--minilb-cmd",
        default=DEFAULT_MINILB_COMMAND,
        help="command template starting minilb; {python}, {cfg}, {port} and {repo} are filled in "
        f"(default: {DEFAULT_MINILB_COMMAND!r}; e.g. 'twistd -n minilb -c {{cfg}}')",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="minilb",
        metavar="SYSTEM",
        help="record SYSTEM (default minilb) with py-spy during an extra run of each --profile-scenarios scenario",
    )
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    parser.add_argument(
        "--profile-scenarios", default="plain", help="comma-separated scenarios to profile (default: plain)"
    )
    parser.add_argument("--output", default=str(REPO / "BENCHMARKS.md"), help="the markdown file to update")
    parser.add_argument(
        "--no-write", action="store_true", help="print the results block instead of writing it"
    )
    parser.add_argument("--note", default="", help="a sentence put above the table (e.g. about machine load)")
    parser.add_argument("--json", help="also write every sample to this JSON file")
    parser.add_argument(
        "--extras",
        help="other benchmark scripts to run after the HTTP scenarios, comma-separated from "
        f"{','.join(EXTRAS_BY_NAME)} (default: all of them in a full run, none with --quick; 'none' for none)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the systems, wrk and the origin at this niceness (e.g. -10 as root: the benchmark "
        "goes before other work of a shared machine, the same for every system)",
    )
    parser.add_argument("--keep-workdir", action="store_true", help="keep the generated configs and logs")
    args = parser.parse_args(argv)
    quick = args.quick
    args.repetitions = args.repetitions or (3 if quick else 4)
    args.duration = args.duration or (2.0 if quick else 6.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 2.0)
    profiled = len([name for name in args.profile_scenarios.split(",") if name]) if args.profile else 0
    args.budget = args.budget or (180.0 if quick else 850.0) + profiled * args.profile_seconds
    if args.extras is None:
        args.extras = "" if quick else ",".join(EXTRAS_BY_NAME)
    args.extras = tuple(name for name in args.extras.split(",") if name and name != "none")
    unknown_extras = set(args.extras) - set(EXTRAS_BY_NAME)
    if unknown_extras:
        parser.error(f"unknown extras: {', '.join(sorted(unknown_extras))}")
    unknown_profiled = set(args.profile_scenarios.split(",")) - set(configs.SCENARIOS_BY_NAME) - {""}
    if unknown_profiled:
        parser.error(f"unknown scenarios to profile: {', '.join(sorted(unknown_profiled))}")
    if args.repetitions < 3:
        parser.error("--repetitions must be at least 3: a median of fewer says little")
    args.systems = tuple(name for name in args.systems.split(",") if name)
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    try:
        args.scenarios = tuple(
            configs.SCENARIOS_BY_NAME[name] for name in args.scenarios.split(",") if name and name != "none"
        )
    except KeyError as error:
        parser.error(f"unknown scenario {error}")
    return args


def git_description() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown commit"
    return f"commit {commit}" + (" (with uncommitted changes)" if dirty else "")


def rows_of(cells: list[Cell]) -> list[report.Row]:
    return [
        report.Row(
            scenario=cell.scenario.name,
            scenario_title=cell.scenario.title,
            system=cell.system,
            state=cell.state,
            note=cell.note,
            rps=cell.figure("rps"),
            p50_us=cell.figure("p50_us"),
            p99_us=cell.figure("p99_us"),
            cpu_us_per_req=cell.figure("cpu_us_per_req"),
            problems=tuple(cell.problems()),
        )
        for cell in cells
    ]


def noise_sentence(cells: list[Cell]) -> str:
    """How much of the SUT's CPU other processes of the machine took during the measured runs."""
    shares = [s.others_on_sut_cpu for cell in cells for s in cell.samples if s.others_on_sut_cpu is not None]
    if not shares:
        return ""
    return (
        f"Other processes of the machine (and hypervisor steal) took a median {100 * median(shares):.0f}% "
        f"(max {100 * max(shares):.0f}%) of CPU 0 during the measured runs: the more, the noisier req/s and "
        "latency; CPU µs/req suffers least."
    )


def results_block(
    args: argparse.Namespace,
    command: str,
    rows: list[report.Row],
    started: datetime.datetime,
    elapsed_s: float,
    noise: str = "",
) -> str:
    kind = "quick run" if args.quick else "full run"
    lines = [
        f"Generated by `scripts/bench_http.py` on {started:%Y-%m-%d %H:%M} UTC at {git_description()}: "
        f"{kind}, {args.repetitions} repetitions × {args.duration:g} s per system and scenario, interleaved, "
        f"after {args.warmup:g} s of warm-up; wrk -t1 -c50; {elapsed_s:.0f} s in all.",
        "",
        f"Command: `{command}`",
        "",
    ]
    if args.note:
        lines += [f"**Note:** {args.note}", ""]
    if args.nice:
        lines += [f"The systems, wrk and the origin ran at niceness {args.nice}.", ""]
    if noise:
        lines += [noise, ""]
    lines += [
        "Machine (system under test on CPU 0, wrk and the nginx origin on CPU 1):",
        "",
        *report.machine_lines(),
        "",
        report.render_table(rows),
    ]
    notes = report.render_notes(rows)
    if notes:
        lines += ["Systems that did not run:", "", notes]
    lines += [
        "Targets of the benchmark issue (minilb, from the medians above):",
        "",
        report.render_targets(report.evaluate_targets(rows)),
    ]
    return "\n".join(lines)


def samples_json(cells: list[Cell]) -> list[dict]:
    return [
        {
            "scenario": cell.scenario.name,
            "system": cell.system,
            "state": cell.state,
            "note": cell.note,
            "problems": cell.problems(),
            "samples": [
                {
                    "repetition": sample.repetition,
                    "requests": sample.result.requests,
                    "requests_per_s": sample.result.requests_per_s,
                    "latency_us": {str(k): v for k, v in sample.result.latency_us.items()},
                    "cpu_s": sample.cpu_s,
                    "cpu_us_per_request": sample.cpu_us_per_request,
                    "socket_errors": sample.result.socket_errors,
                    "non_2xx_3xx": sample.result.non_2xx_3xx,
                    "origin_requests": sample.origin_requests,
                    "others_on_sut_cpu": sample.others_on_sut_cpu,
                }
                for sample in cell.samples
            ],
        }
        for cell in cells
    ]


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["python", "scripts/bench_http.py", *(sys.argv[1:] if argv is None else argv)])
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        print(
            f"missing tools: {', '.join(missing)} (apt-get install -y haproxy nginx-light wrk util-linux)",
            file=sys.stderr,
        )
        return 2
    options = Options(
        systems=args.systems,
        scenarios=args.scenarios,
        repetitions=args.repetitions,
        duration_s=args.duration,
        warmup_s=args.warmup,
        budget_s=args.budget,
        minilb_command=args.minilb_cmd,
        profile_s=args.profile_seconds if args.profile else 0.0,
        profile_system=args.profile or "minilb",
        profile_scenarios=tuple(name for name in args.profile_scenarios.split(",") if name),
    )
    if args.profile and py_spy_command(1, Path("x"), 1) is None:
        print(
            "--profile needs py-spy: pip install py-spy (a harness tool, not a minilb dependency)",
            file=sys.stderr,
        )
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="minilb-bench-"))
    registry = procs.ProcessRegistry(workdir, niceness=args.nice)
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for signum in stop_signals:
        signal.signal(signum, _raise_interrupt)
    started = datetime.datetime.now(datetime.UTC)
    began = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {message}", flush=True)

    harness = Harness(options, registry, workdir, log)
    extra_results: list[ExtraResult] = []
    try:
        cells = harness.run()
        for name in args.extras:
            time_left = harness.time_left() - 5
            if time_left < EXTRAS_BY_NAME[name].expected_s:
                log(f"extra {name}: skipped, {time_left:.0f} s left of the time budget (--budget)")
                continue
            log(f"extra {name}: running {EXTRAS_BY_NAME[name].script} (at most {time_left:.0f} s)")
            result = run_extra(
                EXTRAS_BY_NAME[name], registry, REPO, cpu=SUT_CPU, timeout_s=min(300.0, time_left)
            )
            if result is None:
                log(f"extra {name}: {EXTRAS_BY_NAME[name].script} does not exist yet")
            else:
                extra_results.append(result)
    except KeyboardInterrupt:
        print("interrupted: stopping every process the harness started", file=sys.stderr)
        return 130
    except procs.StartError as error:
        print(f"cannot benchmark: {error}", file=sys.stderr)
        return 1
    finally:
        for signum in stop_signals:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(signum, signal.SIG_IGN)
        registry.stop_all()
        if args.keep_workdir:
            print(f"configs and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - began
    rows = rows_of(cells)
    blocks: dict[str, str] = {}
    if cells:  # --scenarios none runs only the extras and leaves the HTTP results as they were
        blocks[RESULTS_BLOCK] = results_block(args, command, rows, started, elapsed, noise_sentence(cells))
    if harness.profile_texts:
        sections = [f"Profile recorded {started:%Y-%m-%d %H:%M} UTC at {git_description()}."]
        for name, text in harness.profile_texts.items():
            scenario = configs.SCENARIOS_BY_NAME[name]
            sections.append(f"#### {scenario.title}")
            sections.append(
                render_profile(
                    summarize_collapsed(text),
                    command=command,
                    duration_s=args.profile_seconds,
                    system=args.profile,
                    scenario=scenario.title,
                )
            )
        blocks[PROFILE_BLOCK] = "\n\n".join(sections)
    for result in extra_results:
        blocks[result.extra.block] = render_extra(
            result, when=f"{started:%Y-%m-%d %H:%M} UTC", commit=git_description()
        )
    if args.json:
        Path(args.json).write_text(json.dumps(samples_json(cells), indent=1))
    if args.no_write:
        for content in blocks.values():
            print(content)
    else:
        report.update_document(Path(args.output), blocks, BENCHMARKS_TEMPLATE)
        if rows:
            print(report.render_table(rows))
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
