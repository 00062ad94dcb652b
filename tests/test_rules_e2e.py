"""The requests of tests/support/rules_capture.py sent to a real minilb process running
the same config: every answer must be byte for byte what haproxy 2.6.12 sent
(tests/data/rules_haproxy_replies.json)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from tests.support import rules_capture
from tests.support.procs import free_port
from tests.support.rules import exchange_head, haproxy_replies


@pytest.fixture(scope="module")
def minilb_port(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    errorfile = tmp / "503.http"
    errorfile.write_bytes(b"HTTP/1.1 503 Busy\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nbusy\n")
    port, origin_port = free_port(), free_port()
    cfg = tmp / "e2e.cfg"
    cfg.write_text(rules_capture.CONFIG.format(port=port, origin_port=origin_port, errorfile=errorfile))
    proc = subprocess.Popen(
        [sys.executable, "-m", "minilb", "-db", "-f", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"minilb exited: {proc.stderr.read().decode(errors='replace')}")
                if time.monotonic() > deadline:
                    pytest.fail("minilb did not start listening within 20 s")
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.parametrize("name", [n for n, _ in rules_capture.REQUESTS])
def test_same_bytes_as_haproxy(minilb_port, name):
    request = dict(rules_capture.REQUESTS)[name]
    assert exchange_head(minilb_port, request) == haproxy_replies()[name]
