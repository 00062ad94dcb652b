"""The interleaved benchmark run: start the origin, then per scenario start every system under test,
check it answers as the scenario demands, warm it up, and measure A B C A B C ... with wrk, reading the
CPU time of each system's process tree around every measured run.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import attrs

from bench import configs, procs, wrk
from bench.probe import ProbeResult, probe
from bench.stats import Summary, median, summarize

REPO = Path(__file__).resolve().parent.parent.parent
SUT_CPU = 0  # the system under test
LOAD_CPU = 1  # wrk and the origin
NOISY_SHARE = 0.10  # above this share of the SUT's CPU taken by other processes, a cell is marked noisy

DEFAULT_MINILB_COMMAND = "{python} -m minilb -f {cfg} -db"


@attrs.frozen
class Options:
    systems: tuple[str, ...]
    scenarios: tuple[configs.Scenario, ...]
    repetitions: int
    duration_s: float
    warmup_s: float
    budget_s: float
    minilb_command: str = DEFAULT_MINILB_COMMAND
    start_timeout_s: float = 20.0
    profile_s: float = 0.0  # > 0: record profile_system with py-spy for this long in the plain scenario
    profile_system: str = "minilb"
    profile_scenarios: tuple[str, ...] = ("plain",)


@attrs.frozen
class Sample:
    """One measured wrk run against one system, with what the harness observed around it."""

    repetition: int
    result: wrk.WrkResult
    cpu_s: float
    origin_requests: int | None
    others_on_sut_cpu: float | None = None  # share of the SUT's CPU used by processes not in this benchmark

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s * 1e6 / self.result.requests if self.result.requests else float("nan")


@attrs.define
class Cell:
    """What happened to one system in one scenario."""

    scenario: configs.Scenario
    system: str
    state: str = "pending"  # ok, n/a, not running, wrong answers, skipped
    note: str = ""
    samples: list[Sample] = attrs.Factory(list)
    failed_runs: list[str] = attrs.Factory(list)
    warnings: list[str] = attrs.Factory(list)

    def figure(self, name: str) -> Summary | None:
        values = [FIGURES[name](sample) for sample in self.samples]
        return summarize(values) if values else None

    def problems(self) -> list[str]:
        """Everything that makes these numbers suspect, in words."""
        found = self.warnings + self.failed_runs
        shares = [sample.others_on_sut_cpu for sample in self.samples if sample.others_on_sut_cpu is not None]
        if shares and median(shares) > NOISY_SHARE:
            found.append(f"CPU {SUT_CPU} shared: other processes took {100 * median(shares):.0f}% of it")
        socket_errors = sum(sample.result.socket_errors for sample in self.samples)
        if socket_errors:
            found.append(f"{socket_errors} socket errors")
        if self.scenario.expected_status == 200:
            bad = sum(sample.result.non_2xx_3xx for sample in self.samples)
            if bad:
                found.append(f"{bad} non-2xx/3xx responses")
        else:
            undenied = sum(sample.result.requests - sample.result.non_2xx_3xx for sample in self.samples)
            if undenied:
                found.append(f"{undenied} requests not denied")
            leaked = sum(sample.origin_requests or 0 for sample in self.samples)
            if leaked:
                found.append(f"{leaked} requests reached the origin")
        return found


FIGURES: dict[str, Callable[[Sample], float]] = {
    "rps": lambda sample: sample.result.requests_per_s,
    "p50_us": lambda sample: sample.result.p50_us,
    "p99_us": lambda sample: sample.result.p99_us,
    "cpu_us_per_req": lambda sample: sample.cpu_us_per_request,
}


class Harness:
    def __init__(
        self, options: Options, registry: procs.ProcessRegistry, workdir: Path, log: Callable[[str], None]
    ):
        self.options = options
        self.registry = registry
        self.workdir = workdir
        self.log = log
        self.deadline = time.monotonic() + options.budget_s
        self.origin_port = 0
        self.profile_texts: dict[str, str] = {}  # scenario name -> py-spy's collapsed stacks

    # -- the origin ------------------------------------------------------------------------------------

    def start_origin(self) -> None:
        prefix = self.workdir / "origin"
        (prefix / "www").mkdir(parents=True, exist_ok=True)
        (prefix / "www" / configs.LARGE_BODY_PATH.lstrip("/")).write_bytes(
            bytes(range(256)) * (configs.LARGE_BODY_SIZE // 256)
        )
        self.origin_port = procs.free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(configs.nginx_config(prefix=str(prefix), port=self.origin_port))
        managed = self.registry.start(
            "origin-nginx",
            ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "nginx-error.log")],
            cpu=LOAD_CPU,
        )
        procs.wait_for_port(self.origin_port, managed, timeout_s=10)
        check = probe(self.origin_port, "/")
        if check.statuses != (200, 200) or check.responses[0].body != configs.SMALL_BODY.encode():
            raise procs.StartError(f"the origin answers wrongly: {check}")

    def origin_requests(self) -> int | None:
        url = f"http://127.0.0.1:{self.origin_port}{configs.ORIGIN_STATUS_PATH}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return configs.parse_stub_status_requests(response.read().decode())
        except (OSError, ValueError):
            return None

    # -- systems under test ----------------------------------------------------------------------------

    def system_argv(self, system: str, cfg: Path, port: int) -> list[str]:
        if system == "haproxy":
            return ["haproxy", "-f", str(cfg), "-db"]
        if system == "naive":
            return [
                sys.executable,
                str(REPO / "scripts" / "naive_proxy.py"),
                "--port",
                str(port),
                "--origin-port",
                str(self.origin_port),
            ]
        if system == "minilb":
            return shlex.split(
                self.options.minilb_command.format(python=sys.executable, cfg=cfg, port=port, repo=REPO)
            )
        raise ValueError(f"unknown system {system!r}")

    def start_system(self, cell: Cell) -> tuple[procs.Managed, int] | None:
        """Start one system for one scenario and check its answers; None (with cell.state set) if not."""
        scenario, system = cell.scenario, cell.system
        port = procs.free_port()
        cfg = self.workdir / f"{system}-{scenario.name}.cfg"
        global_lines = ("nbthread 1",) if system == "haproxy" else ()
        cfg.write_text(
            configs.haproxy_config(
                scenario, listen_port=port, origin_port=self.origin_port, global_lines=global_lines
            )
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        try:
            managed = self.registry.start(
                f"{system}-{scenario.name}",
                self.system_argv(system, cfg, port),
                cpu=SUT_CPU,
                cwd=str(REPO),
                env=env,
            )
        except procs.StartError as error:
            cell.state, cell.note = "not running", str(error)
            return None
        try:
            procs.wait_for_port(port, managed, timeout_s=self.options.start_timeout_s)
        except procs.StartError as error:
            cell.state, cell.note = "not running", str(error)
            self.registry.stop(managed)
            return None
        problem = self.check_answers(cell, port)
        if problem is not None:
            cell.state, cell.note = "wrong answers", problem
            self.registry.stop(managed)
            return None
        return managed, port

    def check_answers(self, cell: Cell, port: int) -> str | None:
        """None when the system answers the scenario's requests as expected, else what is wrong.
        A connection closed where keep-alive was expected is noted in cell.warnings, not fatal.
        Retried for a while: a master may listen before its worker is ready."""
        scenario = cell.scenario
        deadline = time.monotonic() + self.options.start_timeout_s
        headers = scenario.headers + (("X-Forwarded-For: 10.0.0.1",) if scenario.client_keys else ())
        while True:
            result = probe(port, scenario.path, headers, requests=2 if scenario.keep_alive else 1)
            problem = answer_problem(scenario, result)
            if problem is None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if problem is None and scenario.keep_alive and not result.kept_alive:
            cell.warnings.append("closes the client connection after each response")
        return problem

    # -- measuring -------------------------------------------------------------------------------------

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def run_wrk(self, name: str, port: int, scenario: configs.Scenario, duration_s: float) -> wrk.WrkResult:
        script = None
        if scenario.client_keys:
            script_path = self.workdir / f"keys-{scenario.client_keys}.lua"
            if not script_path.exists():
                script_path.write_text(wrk.client_keys_lua(scenario.client_keys))
            script = str(script_path)
        argv = wrk.wrk_command(
            f"http://127.0.0.1:{port}{scenario.path}",
            duration_s=duration_s,
            connections=scenario.connections,
            headers=scenario.headers,
            script=script,
        )
        managed = self.registry.start(name, argv, cpu=LOAD_CPU)
        try:
            managed.popen.wait(timeout=duration_s + 30)
        except subprocess.TimeoutExpired as error:
            raise wrk.WrkParseError(f"wrk did not finish within {duration_s + 30:.0f} s") from error
        finally:
            self.registry.stop(managed)
        return wrk.parse_wrk_output(managed.log_path.read_text(errors="replace"))

    def measure(self, cell: Cell, managed: procs.Managed, port: int, repetition: int) -> None:
        scenario = cell.scenario
        name = f"wrk-{scenario.name}-{cell.system}-{repetition}"
        origin_before = self.origin_requests()
        cpu_before = procs.process_tree_cpu_seconds(managed.pid)
        core_before = procs.read_cpu_times(SUT_CPU)
        try:
            result = self.run_wrk(name, port, scenario, self.options.duration_s)
        except wrk.WrkParseError as error:
            cell.failed_runs.append(f"run {repetition + 1}: {error}")
            return
        if managed.popen.poll() is not None:
            cell.failed_runs.append(
                f"{cell.system} exited with status {managed.popen.returncode} during run {repetition + 1}: "
                + " / ".join(managed.log_tail(3).splitlines())
            )
            self.log(f"  {scenario.name:8} {cell.system:7} exited during run {repetition + 1}")
            return
        if result.requests == 0:
            cell.failed_runs.append(f"run {repetition + 1}: no request completed")
            return
        cpu_after = procs.process_tree_cpu_seconds(managed.pid)
        core_after = procs.read_cpu_times(SUT_CPU)
        origin_after = self.origin_requests()
        origin = None
        if origin_before is not None and origin_after is not None:
            origin = origin_after - origin_before - 1  # minus our own stub_status request
        cpu_s = cpu_after - cpu_before
        others = procs.share_taken_by_others(core_before, core_after, cpu_s * procs.CLOCK_TICKS_PER_S)
        cell.samples.append(Sample(repetition, result, cpu_s, origin, others))
        self.log(
            f"  {scenario.name:8} {cell.system:7} run {repetition + 1}: {result.requests_per_s:9.0f} req/s  "
            f"p50 {result.p50_us / 1000:6.2f} ms  p99 {result.p99_us / 1000:6.2f} ms  "
            f"{cell.samples[-1].cpu_us_per_request:6.1f} CPU us/req  "
            f"errors {result.socket_errors}  non-2xx {result.non_2xx_3xx}  "
            f"others on CPU {SUT_CPU}: {'?' if others is None else f'{100 * others:.0f}%'}"
        )

    def run_scenario(self, scenario: configs.Scenario) -> list[Cell]:
        cells = [Cell(scenario, system) for system in self.options.systems]
        running: list[tuple[Cell, procs.Managed, int]] = []
        try:
            for cell in cells:
                if cell.system == "naive" and scenario.needs_rules:
                    cell.state, cell.note = "n/a", "the naive proxy has no rules"
                    continue
                started = self.start_system(cell)
                if started is None:
                    note_lines = [line for line in cell.note.splitlines() if line.strip()]
                    self.log(
                        f"  {scenario.name:8} {cell.system:7} {cell.state}: {' / '.join(note_lines[:1] + note_lines[-2:][1:])}"
                    )
                    continue
                running.append((cell, *started))
            for cell, _managed, port in running:
                if self.options.warmup_s > 0:
                    try:
                        self.run_wrk(
                            f"warmup-{scenario.name}-{cell.system}", port, scenario, self.options.warmup_s
                        )
                    except wrk.WrkParseError as error:
                        cell.failed_runs.append(f"warm-up: {error}")
            for repetition in range(self.options.repetitions):
                for cell, managed, port in running:
                    if managed.popen.poll() is not None:
                        continue  # it died: noted once below
                    if self.time_left() < self.options.duration_s + 5:
                        cell.failed_runs.append(f"run {repetition + 1}: skipped, out of the time budget")
                        continue
                    self.measure(cell, managed, port, repetition)
            for cell, managed, port in running:
                cell.state = "ok"
                if (
                    scenario.name in self.options.profile_scenarios
                    and cell.system == self.options.profile_system
                    and self.options.profile_s > 0
                ):
                    self.profile_texts[scenario.name] = self.profile(managed, port, scenario)
        finally:
            for _cell, managed, _port in running:
                self.registry.stop(managed)
        return cells

    def profile(self, managed: procs.Managed, port: int, scenario: configs.Scenario) -> str:
        """Record the system with py-spy while wrk drives it; the raw collapsed stacks as text."""
        from bench.profile import py_spy_command

        output = self.workdir / f"{self.options.profile_system}-{scenario.name}-profile.txt"
        argv = py_spy_command(managed.pid, output, self.options.profile_s)
        if argv is None:
            return ""
        spy = self.registry.start("py-spy", argv)
        try:
            self.run_wrk(f"wrk-profile-{scenario.name}", port, scenario, self.options.profile_s)
            spy.popen.wait(timeout=self.options.profile_s + 30)
        except (wrk.WrkParseError, subprocess.TimeoutExpired) as error:
            self.log(f"  profile: {error}")
        finally:
            self.registry.stop(spy)
        if not output.exists():
            self.log(f"  profile: py-spy wrote nothing; its output:\n{spy.log_tail()}")
            return ""
        return output.read_text(errors="replace")

    def planned_seconds(self) -> float:
        """Roughly how long the whole run takes when every system starts."""
        options = self.options
        pairs = sum(
            1
            for scenario in options.scenarios
            for system in options.systems
            if not (system == "naive" and scenario.needs_rules)
        )
        per_pair = options.repetitions * (options.duration_s + 0.3) + options.warmup_s + 1.0
        return pairs * per_pair + options.profile_s * len(options.profile_scenarios)

    def run(self) -> list[Cell]:
        self.log(
            f"plan: {len(self.options.scenarios)} scenarios x {', '.join(self.options.systems)}, "
            f"{self.options.repetitions} x {self.options.duration_s:g} s each: about "
            f"{self.planned_seconds() / 60:.1f} minutes (budget {self.options.budget_s / 60:.1f})"
        )
        if not self.options.scenarios:
            return []
        self.start_origin()
        cells: list[Cell] = []
        for scenario in self.options.scenarios:
            if self.time_left() < self.options.duration_s + 5:
                cells += [
                    Cell(scenario, system, state="skipped", note="out of the time budget")
                    for system in self.options.systems
                ]
                continue
            self.log(f"scenario {scenario.name}: {scenario.title}")
            cells += self.run_scenario(scenario)
        flag_unverified_rules(cells)
        return cells


def flag_unverified_rules(cells: list[Cell]) -> None:
    """A system that does not deny in the deny scenario may be skipping its rules everywhere: its
    figures in the other rule scenarios (whose rules never fire, so cannot be probed) get a warning."""
    broken = {cell.system for cell in cells if cell.scenario.name == "deny" and cell.state == "wrong answers"}
    for cell in cells:
        if cell.system in broken and cell.scenario.needs_rules and cell.state == "ok":
            cell.warnings.append("rules unverified: this system failed the deny scenario's check")


def answer_problem(scenario: configs.Scenario, result: ProbeResult) -> str | None:
    """What is wrong with the probe's responses for this scenario (statuses, body), or None."""
    if not result.responses:
        return f"no response: {result.error}"
    if any(status != scenario.expected_status for status in result.statuses):
        return f"expected status {scenario.expected_status}, got {', '.join(map(str, result.statuses))}"
    body = result.responses[0].body
    if scenario.path == configs.LARGE_BODY_PATH and len(body) != configs.LARGE_BODY_SIZE:
        return f"expected a {configs.LARGE_BODY_SIZE}-byte body, got {len(body)} bytes"
    if scenario.expected_status == 200 and scenario.path == "/" and body != configs.SMALL_BODY.encode():
        return f"expected the origin's body, got {body[:80]!r}"
    return None
