"""Owns health-check logic: the rise/fall state machine, HTTP check expectations and
HAProxy's wording of check results and server transitions.

Pure (no Twisted).  `HealthState` counts results the way HAProxy 2.6 does: a health
counter from 0 to ``rise + fall - 1``; the server is UP while it is at least
``rise``.  A server with ``check`` starts UP at exactly ``rise``, so its first failed
check takes it DOWN at once; once a check passes it is fully up and needs ``fall``
consecutive failures to go DOWN; a DOWN server needs ``rise`` consecutive successes.
`HttpCheckReader` is fed the bytes of a check response and returns a `CheckResult`.
The Twisted adapter that dials servers on a timer is `minilb.http.healthcheck`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

UP = "UP"
DOWN = "DOWN"

#: How many bytes of a check response are read at most (HAProxy reads one buffer).
CHECK_RESPONSE_LIMIT = 16384


class HealthState:
    """rise/fall counting for one server; `record` returns ``UP``/``DOWN`` on a transition."""

    __slots__ = ("rise", "fall", "health")

    def __init__(self, rise: int, fall: int, initially_up: bool = True):
        self.rise = max(1, rise)
        self.fall = max(1, fall)
        self.health = self.rise if initially_up else 0

    @property
    def top(self) -> int:
        return self.rise + self.fall - 1

    @property
    def up(self) -> bool:
        return self.health >= self.rise

    @property
    def transitioning(self) -> bool:
        """Between fully up and fully down (checks run at ``fastinter`` then)."""
        return 0 < self.health < self.top

    def record(self, success: bool) -> str | None:
        was_up = self.up
        if success:
            if self.health < self.top:
                self.health += 1
            if self.health >= self.rise:
                self.health = self.top
        else:
            if self.health > 0:
                self.health -= 1
            if self.health < self.rise:
                self.health = 0
        if self.up != was_up:
            return UP if self.up else DOWN
        return None

    def interval_ms(self, inter: int, fastinter: int | None, downinter: int | None) -> int:
        """The delay before the next check: ``downinter`` while DOWN, ``fastinter`` while
        transitioning, ``inter`` otherwise (each defaulting to ``inter``)."""
        if self.health == 0:
            return downinter or inter
        if self.health < self.top:
            return fastinter or inter
        return inter


# --------------------------------------------------------------------------- results


@attrs.frozen
class CheckResult:
    """One check's outcome in HAProxy's words: ``reason`` ("Layer4 check passed",
    "Layer7 wrong status"...), an optional status ``code`` and ``info`` text."""

    success: bool
    reason: str
    code: int | None = None
    info: str | None = None

    @property
    def status(self) -> str:
        """HAProxy's short check status (``show stat`` column ``check_status``)."""
        return _SHORT_STATUS.get(self.reason, "UNK")

    def describe(self) -> str:
        parts = [f"reason: {self.reason}"]
        if self.code is not None:
            parts.append(f"code: {self.code}")
        if self.info:
            parts.append(f'info: "{self.info}"')
        return ", ".join(parts)


_SHORT_STATUS = {
    "Layer4 check passed": "L4OK",
    "Layer4 connection problem": "L4CON",
    "Layer4 timeout": "L4TOUT",
    "Layer7 check passed": "L7OK",
    "Layer7 wrong status": "L7STS",
    "Layer7 invalid response": "L7RSP",
    "Layer7 timeout": "L7TOUT",
}

L4_OK = CheckResult(True, "Layer4 check passed")
L4_TIMEOUT = CheckResult(False, "Layer4 timeout")
L7_TIMEOUT = CheckResult(False, "Layer7 timeout")


def l4_failure(info: str) -> CheckResult:
    return CheckResult(False, "Layer4 connection problem", info=info)


def transition_message(
    proxy_name: str,
    server_name: str,
    backup: bool,
    transition: str,
    result: CheckResult,
    duration_ms: int,
    active_up: int,
    backup_up: int,
    sessions: int = 0,
) -> str:
    """The log line HAProxy writes when a check moves a server UP or DOWN."""
    who = f"{'Backup ' if backup else ''}Server {proxy_name}/{server_name}"
    head = f"{who} is {transition}, {result.describe()}, check duration: {duration_ms}ms."
    if transition == DOWN:
        return (
            f"{head} {active_up} active and {backup_up} backup servers left. "
            f"{sessions} sessions active, 0 requeued, 0 remaining in queue."
        )
    return f"{head} {active_up} active and {backup_up} backup servers online. 0 sessions requeued, 0 total in queue."


def no_server_message(proxy_name: str) -> str:
    return f"backend {proxy_name} has no server available!"


# --------------------------------------------------------------------------- HTTP checks


def build_check_request(
    method: str, uri: str, version: str, host: str | None, headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """The request an ``option httpchk`` check sends, as HAProxy 2.6 writes it: header
    names in lower case, ``host`` first, ``connection: close`` last on HTTP/1.1.
    The pre-2.2 form that smuggles headers into the version
    (``HTTP/1.1\\r\\nHost:\\ www``) is understood too."""
    version, *smuggled = version.split("\r\n")
    fields: list[tuple[str, str]] = []
    for line in smuggled:
        name, sep, value = line.partition(":")
        if sep and name.strip():
            fields.append((name.strip(), value.strip()))
    fields.extend(headers)
    names = {k.lower() for k, _ in fields}
    lines = [f"{method} {uri} {version}"]
    if host and "host" not in names:
        lines.append(f"host: {host}")
    lines.extend(f"{k.lower()}: {v}" for k, v in fields)
    if version.upper() == "HTTP/1.1" and "connection" not in names:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Expectation:
    """``http-check expect [!] status CODES | rstatus RE | string TEXT | rstring RE``;
    without one, any 2xx or 3xx status passes."""

    def __init__(self, words: Sequence[str] = ()):
        words = list(words)
        self.negate = bool(words) and words[0] == "!"
        if self.negate:
            words = words[1:]
        self.kind = words[0] if words else ""
        self.pattern = " ".join(words[1:]) if len(words) > 1 else ""
        self._codes: list[tuple[int, int]] = []
        self._regex: re.Pattern[str] | None = None
        if self.kind == "status":
            for part in self.pattern.replace(" ", ",").split(","):
                if not part:
                    continue
                low, _, high = part.partition("-")
                self._codes.append((int(low), int(high or low)))
        elif self.kind in ("rstatus", "rstring"):
            self._regex = re.compile(self.pattern)

    @property
    def needs_body(self) -> bool:
        return self.kind in ("string", "rstring")

    def judge(self, code: int, reason: str, body: bytes) -> CheckResult:
        if self.kind in ("", "status", "rstatus"):
            if self.kind == "":
                ok = 200 <= code < 400
            elif self.kind == "status":
                ok = any(low <= code <= high for low, high in self._codes)
            else:
                assert self._regex is not None
                ok = self._regex.search(str(code)) is not None
            if self.negate:
                ok = not ok
            if ok:
                return CheckResult(True, "Layer7 check passed", code=code)
            return CheckResult(False, "Layer7 wrong status", code=code, info=reason or None)
        text = body.decode("latin-1")
        if self.kind == "string":
            ok = self.pattern in text
        else:
            assert self._regex is not None
            ok = self._regex.search(text) is not None
        if self.negate:
            ok = not ok
        if ok:
            return CheckResult(True, "Layer7 check passed", code=code)
        return CheckResult(False, "Layer7 invalid response", info="HTTP content check did not match")


_STATUS_LINE = re.compile(rb"^HTTP/\d\.\d (\d{3})(?: ([^\r\n]*))?\r?$")


class HttpCheckReader:
    """Fed the bytes of a check response; returns a `CheckResult` once it can decide.

    ``feed`` returns None while more bytes are needed; ``eof`` decides with what came.
    At most `CHECK_RESPONSE_LIMIT` bytes are kept.
    """

    def __init__(self, expectation: Expectation):
        self.expectation = expectation
        self.buffer = b""
        self.code: int | None = None
        self.reason = ""
        self._body_at: int | None = None

    def feed(self, data: bytes) -> CheckResult | None:
        room = CHECK_RESPONSE_LIMIT - len(self.buffer)
        self.buffer += data[: max(room, 0)]
        if self.code is None:
            eol = self.buffer.find(b"\n")
            if eol < 0:
                if len(self.buffer) >= CHECK_RESPONSE_LIMIT:
                    return CheckResult(False, "Layer7 invalid response", info="response line too long")
                return None
            m = _STATUS_LINE.match(self.buffer[:eol])
            if m is None:
                return CheckResult(False, "Layer7 invalid response", info="invalid HTTP status line")
            self.code = int(m.group(1))
            self.reason = (m.group(2) or b"").decode("latin-1").strip()
        if not self.expectation.needs_body:
            return self.expectation.judge(self.code, self.reason, b"")
        if self._body_at is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return None
            self._body_at = end + 4
        body = self.buffer[self._body_at :]
        verdict = self.expectation.judge(self.code, self.reason, body)
        if verdict.success != self.expectation.negate or len(self.buffer) >= CHECK_RESPONSE_LIMIT:
            return verdict
        return None  # not found yet: wait for more of the body, or the end

    def eof(self) -> CheckResult:
        if self.code is None:
            if not self.buffer:
                return CheckResult(False, "Layer7 invalid response", info="socket closed before any data")
            return CheckResult(False, "Layer7 invalid response", info="invalid HTTP status line")
        body = self.buffer[self._body_at :] if self._body_at is not None else b""
        return self.expectation.judge(self.code, self.reason, body)


def __getattr__(name: str):
    # `HealthChecker` lives in the Twisted adapter; importing it from here is allowed
    # without making this pure module import Twisted at load time.
    if name == "HealthChecker":
        from minilb.http.healthcheck import HealthChecker

        return HealthChecker
    raise AttributeError(name)
