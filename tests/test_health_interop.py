"""Health-check log lines compared with real HAProxy 2.6 on the same configuration."""

from __future__ import annotations

import re

import pytest

from tests.conftest import haproxy_binary, requires_haproxy
from tests.support.procs import (
    Proc,
    free_port,
    procs_fixture,  # noqa: F401 (the `procs` fixture)
    wait_for_port,
)
from tests.test_integration_proxy import needs_plugin

pytestmark = [pytest.mark.integration, pytest.mark.interop]

HEADER = """\
global
    log stdout format raw local0 info
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""

TRANSITION = re.compile(r"((?:Backup )?Server \S+ is (?:UP|DOWN), .*)$")


def transitions(output: str) -> set[str]:
    """The server transition lines, check durations blanked (they are timings)."""
    found = set()
    for line in output.splitlines():
        m = TRANSITION.search(line)
        if m:
            found.add(re.sub(r"check duration: \d+ms", "check duration: Nms", m.group(1)))
    return found


@requires_haproxy
@needs_plugin
def test_down_lines_match_haproxy(procs):
    o = procs.origin("alive")
    dead = free_port()

    def config(port: int) -> str:
        return (
            HEADER
            + f"""\
    timeout check 1s
frontend fe
    bind 127.0.0.1:{port}
    default_backend tcpchk
backend tcpchk
    server alive 127.0.0.1:{o.port} check inter 200 fall 1 rise 1
    server dead 127.0.0.1:{dead} check inter 200 fall 1 rise 1
backend httpchk
    option httpchk GET /status?code=503
    http-check expect status 200
    server web 127.0.0.1:{o.port} check inter 200 fall 1 rise 1
backend strchk
    option httpchk GET /health
    http-check expect string nope
    server web 127.0.0.1:{o.port} check inter 200 fall 1 rise 1
backend backups
    server b1 127.0.0.1:{dead} check inter 200 fall 1 rise 1 backup
"""
        )

    expected_lines = 4
    hp_port = free_port()
    hp = Proc([haproxy_binary(), "-db", "-f", procs.write_config(config(hp_port), "hp.cfg")], procs.env)
    procs.procs.append(hp)
    wait_for_port(hp_port, proc=hp.popen)
    hp.wait_for_line("Server backups/b1 is DOWN")
    for name in ("tcpchk/dead", "httpchk/web", "strchk/web"):
        hp.wait_for_line(f"Server {name} is DOWN")

    lb_port = free_port()
    lb = procs.twistd(procs.write_config(config(lb_port), "lb.cfg"), wait_port=lb_port)
    lb.wait_for_line("Server backups/b1 is DOWN")
    for name in ("tcpchk/dead", "httpchk/web", "strchk/web"):
        lb.wait_for_line(f"Server {name} is DOWN")

    theirs, ours = transitions(hp.output), transitions(lb.output)
    assert len(theirs) == expected_lines, theirs
    assert ours == theirs, (ours, theirs)


@requires_haproxy
@needs_plugin
def test_up_lines_match_haproxy(procs):
    late = free_port()  # nothing listens yet: DOWN first, UP once the origin starts

    def config(port: int) -> str:
        return (
            HEADER
            + f"""\
frontend fe
    bind 127.0.0.1:{port}
    default_backend tcpchk
backend tcpchk
    server s1 127.0.0.1:{late} check inter 200 fall 1 rise 2
backend httpchk
    option httpchk GET /health
    server s1 127.0.0.1:{late} check inter 200 fall 1 rise 1
"""
        )

    hp_port, lb_port = free_port(), free_port()
    hp = Proc([haproxy_binary(), "-db", "-f", procs.write_config(config(hp_port), "hp.cfg")], procs.env)
    procs.procs.append(hp)
    lb = procs.twistd(procs.write_config(config(lb_port), "lb.cfg"), wait_port=lb_port)
    for p in (hp, lb):
        p.wait_for_line("Server tcpchk/s1 is DOWN")
        p.wait_for_line("Server httpchk/s1 is DOWN")
    procs.origin("late", port=late)
    for p in (hp, lb):
        p.wait_for_line("Server tcpchk/s1 is UP")
        p.wait_for_line("Server httpchk/s1 is UP")
    theirs, ours = transitions(hp.output), transitions(lb.output)
    assert len(theirs) == 4, theirs
    assert ours == theirs, (ours, theirs)
