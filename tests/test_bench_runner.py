"""The harness's verdicts on a system: its probe answers, the problems of its runs, unverified rules."""

from __future__ import annotations

from tests.support.bench import configs, probe, runner, wrk

SCENARIO = configs.SCENARIOS_BY_NAME


def response(status, body=b"", close=False):
    headers = {"connection": "close"} if close else {}
    return probe.ProbeResponse(status, headers, body)


def result(*responses, kept_alive=True, error=None):
    return probe.ProbeResult(tuple(responses), kept_alive=kept_alive, error=error)


ORIGIN_BODY = configs.SMALL_BODY.encode()


def test_plain_scenario_wants_the_origin_body():
    good = result(response(200, ORIGIN_BODY), response(200, ORIGIN_BODY))
    assert runner.answer_problem(SCENARIO["plain"], good) is None
    wrong = result(response(200, b"<html>hello</html>"), response(200, b"x"))
    assert "origin's body" in runner.answer_problem(SCENARIO["plain"], wrong)


def test_deny_scenario_wants_429_every_time():
    assert runner.answer_problem(SCENARIO["deny"], result(response(429), response(429))) is None
    problem = runner.answer_problem(SCENARIO["deny"], result(response(200, ORIGIN_BODY), response(429)))
    assert problem == "expected status 429, got 200, 429"


def test_no_response_at_all_is_a_problem():
    problem = runner.answer_problem(
        SCENARIO["plain"], result(kept_alive=False, error="ConnectionRefusedError")
    )
    assert "ConnectionRefusedError" in problem


def test_large_scenario_wants_the_whole_megabyte():
    short = result(response(200, b"x" * 1000), response(200, b"x" * 1000))
    assert "1048576-byte body" in runner.answer_problem(SCENARIO["large"], short)


def wrk_result(requests, non_2xx=0, errors_read=0):
    return wrk.WrkResult(
        requests=requests,
        duration_s=2.0,
        requests_per_s=requests / 2,
        bytes_read=0,
        transfer_per_s=0,
        latency_us={50.0: 900.0, 99.0: 2000.0},
        errors_read=errors_read,
        non_2xx_3xx=non_2xx,
    )


def test_deny_problems_count_undenied_and_leaked_requests():
    cell = runner.Cell(SCENARIO["deny"], "minilb", state="ok")
    cell.samples.append(
        runner.Sample(0, wrk_result(1000, non_2xx=990, errors_read=2), cpu_s=0.05, origin_requests=10)
    )
    assert cell.problems() == ["2 socket errors", "10 requests not denied", "10 requests reached the origin"]
    assert cell.samples[0].cpu_us_per_request == 50.0


def test_plain_problems_count_non_2xx():
    cell = runner.Cell(SCENARIO["plain"], "haproxy", state="ok")
    cell.samples.append(runner.Sample(0, wrk_result(1000, non_2xx=3), cpu_s=0.02, origin_requests=1000))
    cell.samples.append(runner.Sample(1, wrk_result(3000), cpu_s=0.06, origin_requests=3000))
    assert cell.problems() == ["3 non-2xx/3xx responses"]
    assert cell.figure("rps").median == 1000.0
    assert cell.figure("cpu_us_per_req").median == 20.0


def test_a_system_failing_the_deny_check_has_its_other_rule_figures_flagged():
    cells = [
        runner.Cell(SCENARIO["track"], "minilb", state="ok"),
        runner.Cell(
            SCENARIO["deny"], "minilb", state="wrong answers", note="expected status 429, got 200, 200"
        ),
        runner.Cell(SCENARIO["plain"], "minilb", state="ok"),
        runner.Cell(SCENARIO["track"], "haproxy", state="ok"),
        runner.Cell(SCENARIO["deny"], "haproxy", state="ok"),
    ]
    runner.flag_unverified_rules(cells)
    assert cells[0].warnings == ["rules unverified: this system failed the deny scenario's check"]
    assert cells[2].warnings == [] and cells[3].warnings == []


def test_a_cell_measured_on_a_busy_cpu_says_so():
    cell = runner.Cell(SCENARIO["plain"], "haproxy", state="ok")
    for repetition, share in enumerate((0.05, 0.40, 0.35)):
        cell.samples.append(runner.Sample(repetition, wrk_result(1000), 0.02, 1000, others_on_sut_cpu=share))
    assert cell.problems() == ["CPU 0 shared: other processes took 35% of it"]
