"""wrk's text report parsed into numbers, its command line, and the client-keys Lua script."""

from __future__ import annotations

import pytest

from tests.support.bench import wrk

DENY_REPORT = """Running 2s test @ http://127.0.0.1:49805/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   659.61us  335.93us   6.01ms   80.78%
    Req/Sec    70.56k     7.70k   90.34k    80.00%
  Latency Distribution
     50%  630.00us
     75%  763.00us
     90%    0.96ms
     99%    1.58ms
  140193 requests in 2.00s, 29.68MB read
  Non-2xx or 3xx responses: 140193
Requests/sec:  70028.68
Transfer/sec:     14.83MB
"""

ERRORS_REPORT = """Running 10s test @ http://127.0.0.1:8080/big.bin
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20s   300.00ms   2.00s    70.00%
    Req/Sec   100.00     10.00   120.00     90.00%
  Latency Distribution
     50%    1.10s
     75%    1.30s
     90%    1.80s
     99%    2.00s
  1003 requests in 1.00m, 1.02GB read
  Socket errors: connect 3, read 12, write 1, timeout 40
Requests/sec:     16.70
Transfer/sec:     17.40MB
"""


def test_parses_a_deny_run_with_every_response_non_2xx():
    result = wrk.parse_wrk_output(DENY_REPORT)
    assert result.requests == 140193
    assert result.duration_s == pytest.approx(2.0)
    assert result.requests_per_s == pytest.approx(70028.68)
    assert result.p50_us == pytest.approx(630.0)
    assert result.latency_us[90.0] == pytest.approx(960.0)
    assert result.p99_us == pytest.approx(1580.0)
    assert result.non_2xx_3xx == 140193
    assert result.socket_errors == 0
    assert result.bytes_read == round(29.68 * 1024 * 1024)
    assert result.transfer_per_s == round(14.83 * 1024 * 1024)


def test_parses_socket_errors_seconds_and_minutes():
    result = wrk.parse_wrk_output(ERRORS_REPORT)
    assert (result.errors_connect, result.errors_read, result.errors_write, result.errors_timeout) == (
        3,
        12,
        1,
        40,
    )
    assert result.socket_errors == 56
    assert result.duration_s == pytest.approx(60.0)
    assert result.p50_us == pytest.approx(1_100_000.0)
    assert result.bytes_read == round(1.02 * 1024**3)
    assert result.non_2xx_3xx == 0


def test_a_report_without_totals_is_an_error():
    with pytest.raises(wrk.WrkParseError, match="totals"):
        wrk.parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_a_report_without_latency_distribution_is_an_error():
    text = "\n".join(line for line in DENY_REPORT.splitlines() if "%  " not in line)
    with pytest.raises(wrk.WrkParseError, match="latency"):
        wrk.parse_wrk_output(text)


@pytest.mark.parametrize(
    ("text", "micros"),
    [("817.34us", 817.34), ("1.23ms", 1230.0), ("2.00s", 2_000_000.0), ("1.50m", 90_000_000.0)],
)
def test_time_units(text, micros):
    assert wrk.parse_time_us(text) == pytest.approx(micros)


def test_bad_time_is_rejected():
    with pytest.raises(wrk.WrkParseError):
        wrk.parse_time_us("12 parsecs")


def test_command_line_has_latency_headers_and_script():
    argv = wrk.wrk_command(
        "http://127.0.0.1:1/x", duration_s=2.4, headers=("Connection: close",), script="/tmp/k.lua"
    )
    assert argv[:4] == ["wrk", "-t1", "-c50", "-d2s"]
    assert "--latency" in argv
    assert argv[argv.index("-H") + 1] == "Connection: close"
    assert argv[argv.index("-s") + 1] == "/tmp/k.lua"
    assert argv[-1] == "http://127.0.0.1:1/x"


def test_client_keys_script_cycles_through_the_given_count():
    script = wrk.client_keys_lua(65536)
    assert "local count = 65536" in script
    assert '["X-Forwarded-For"]' in script
    assert ">>" not in script and "&" not in script  # LuaJIT (Lua 5.1) has no bit operators
    with pytest.raises(ValueError):
        wrk.client_keys_lua(0)
