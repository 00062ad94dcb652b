"""wrk for the harness: its command line, the Lua script that spreads requests over many client keys,
and the parser that turns wrk's text report into numbers (latencies in microseconds, sizes in bytes).
"""

from __future__ import annotations

import re

import attrs

_TIME_UNITS_US = {"us": 1.0, "ms": 1_000.0, "s": 1_000_000.0, "m": 60_000_000.0, "h": 3_600_000_000.0}
_BINARY_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4, "PB": 1024**5}

_TIME_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(us|ms|s|m|h)$")
_SIZE_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(B|KB|MB|GB|TB|PB)$")
_PERCENTILE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)%\s+(\S+)\s*$")
_TOTAL_RE = re.compile(r"^\s*([0-9]+) requests in (\S+), (\S+) read\s*$")
_SOCKET_ERRORS_RE = re.compile(
    r"^\s*Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)\s*$"
)
_NON2XX_RE = re.compile(r"^\s*Non-2xx or 3xx responses: ([0-9]+)\s*$")
_RPS_RE = re.compile(r"^\s*Requests/sec:\s+([0-9]+(?:\.[0-9]+)?)\s*$")
_TRANSFER_RE = re.compile(r"^\s*Transfer/sec:\s+(\S+)\s*$")


class WrkParseError(ValueError):
    """wrk printed something that is not a complete report (it crashed, or could not connect at all)."""


@attrs.frozen
class WrkResult:
    """One wrk run, as wrk reported it."""

    requests: int
    duration_s: float
    requests_per_s: float
    bytes_read: int
    transfer_per_s: int
    latency_us: dict[float, float]  # percentile (50.0, 75.0, 90.0, 99.0) -> microseconds
    errors_connect: int = 0
    errors_read: int = 0
    errors_write: int = 0
    errors_timeout: int = 0
    non_2xx_3xx: int = 0

    @property
    def socket_errors(self) -> int:
        return self.errors_connect + self.errors_read + self.errors_write + self.errors_timeout

    @property
    def p50_us(self) -> float:
        return self.latency_us[50.0]

    @property
    def p99_us(self) -> float:
        return self.latency_us[99.0]


def parse_time_us(text: str) -> float:
    """`817.34us`, `1.23ms`, `2.00s`, `1.50m` -> microseconds."""
    match = _TIME_RE.match(text.strip())
    if match is None:
        raise WrkParseError(f"not a wrk time: {text!r}")
    return float(match.group(1)) * _TIME_UNITS_US[match.group(2)]


def parse_size_bytes(text: str) -> int:
    """`80.00MB`, `512.00B`, `1.20GB` (binary multiples, as wrk prints them) -> bytes."""
    match = _SIZE_RE.match(text.strip())
    if match is None:
        raise WrkParseError(f"not a wrk size: {text!r}")
    return round(float(match.group(1)) * _BINARY_UNITS[match.group(2)])


def parse_wrk_output(text: str) -> WrkResult:
    """Parse the report of `wrk --latency`; raise WrkParseError when a required line is missing."""
    latency: dict[float, float] = {}
    totals: tuple[int, float, int] | None = None
    rps: float | None = None
    transfer = 0
    errors = (0, 0, 0, 0)
    non_2xx = 0
    in_distribution = False
    for line in text.splitlines():
        if line.strip() == "Latency Distribution":
            in_distribution = True
            continue
        if in_distribution:
            match = _PERCENTILE_RE.match(line)
            if match is not None:
                latency[float(match.group(1))] = parse_time_us(match.group(2))
                continue
            in_distribution = False
        if (match := _TOTAL_RE.match(line)) is not None:
            totals = (
                int(match.group(1)),
                parse_time_us(match.group(2)) / 1e6,
                parse_size_bytes(match.group(3)),
            )
        elif (match := _SOCKET_ERRORS_RE.match(line)) is not None:
            errors = (int(match.group(1)), int(match.group(2)), int(match.group(3)), int(match.group(4)))
        elif (match := _NON2XX_RE.match(line)) is not None:
            non_2xx = int(match.group(1))
        elif (match := _RPS_RE.match(line)) is not None:
            rps = float(match.group(1))
        elif (match := _TRANSFER_RE.match(line)) is not None:
            transfer = parse_size_bytes(match.group(1))
    if totals is None or rps is None:
        raise WrkParseError("wrk report has no request totals (did it run at all?)")
    if 50.0 not in latency or 99.0 not in latency:
        raise WrkParseError("wrk report has no latency distribution (was --latency given?)")
    return WrkResult(
        requests=totals[0],
        duration_s=totals[1],
        requests_per_s=rps,
        bytes_read=totals[2],
        transfer_per_s=transfer,
        latency_us=latency,
        errors_connect=errors[0],
        errors_read=errors[1],
        errors_write=errors[2],
        errors_timeout=errors[3],
        non_2xx_3xx=non_2xx,
    )


def wrk_command(
    url: str,
    *,
    duration_s: float,
    connections: int = 50,
    threads: int = 1,
    headers: tuple[str, ...] = (),
    script: str | None = None,
    timeout_s: float = 5.0,
) -> list[str]:
    """The wrk argv for one measured run (always with --latency, which the parser needs)."""
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "--latency",
    ]
    for header in headers:
        argv += ["-H", header]
    if script is not None:
        argv += ["-s", script]
    argv.append(url)
    return argv


def client_keys_lua(key_count: int, header: str = "X-Forwarded-For") -> str:
    """A wrk script whose requests carry one of `key_count` distinct IPv4 addresses in `header`, in
    round-robin order (10.a.b.c), so that a table tracking that header sees `key_count` keys."""
    if not 1 <= key_count <= 1 << 24:
        raise ValueError(f"key_count must be between 1 and {1 << 24}, not {key_count}")
    return f"""-- generated by scripts/bench: {key_count} distinct client keys in {header}
-- (wrk runs LuaJIT, Lua 5.1: arithmetic instead of bit operators)
local requests = {{}}
local count = {key_count}
local i = 0

function init(args)
  for n = 0, count - 1 do
    local a = math.floor(n / 65536) % 256
    local b = math.floor(n / 256) % 256
    local c = n % 256
    requests[n] = wrk.format(nil, nil, {{["{header}"] = "10." .. a .. "." .. b .. "." .. c}})
  end
end

function request()
  local r = requests[i]
  i = (i + 1) % count
  return r
end
"""
