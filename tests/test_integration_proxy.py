"""End to end: ``twistd -n minilb`` (and the ``minilb`` script) as real processes on 127.0.0.1
in front of real origin servers (tests/support/origin.py)."""

from __future__ import annotations

import hashlib
import http.client
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from tests.support.procs import (
    REPO,
    free_port,
    procs_fixture,  # noqa: F401 (the `procs` fixture)
    rss_kb,
    wait_for_port,
)
from tests.support.tlscerts import ScratchCA

pytestmark = pytest.mark.integration

MB = 1 << 20


def _plugin_installed() -> bool:
    twistd = shutil.which("twistd")
    if twistd is None:
        return False
    out = subprocess.run([twistd, "--help"], capture_output=True, timeout=60).stdout
    return b"minilb" in out


PLUGIN = _plugin_installed()
needs_plugin = pytest.mark.skipif(
    not PLUGIN, reason="the twistd plugin is not installed: run `pip install .`"
)


DEFAULTS = """\
global
    log stdout format raw local0 info
defaults
    mode http
    log global
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 1s
"""


def http_proxy_config(port: int, servers: str, extra_backend: str = "", extra_frontend: str = "") -> str:
    return (
        DEFAULTS
        + f"""
frontend fe
    bind 127.0.0.1:{port}
{extra_frontend}    default_backend be
backend be
{extra_backend}{servers}"""
    )


def get(port: int, path: str, conn: http.client.HTTPConnection | None = None, **kw):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request(kw.pop("method", "GET"), path, **kw)
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r, body


class RssSampler:
    """Peak resident memory of a process, sampled in the background."""

    def __init__(self, pid: int):
        self.pid = pid
        self.base = rss_kb(pid)
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except (OSError, RuntimeError):
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=2)
        return (self.peak - self.base) // 1024  # MB of growth


# --------------------------------------------------------------------------- HTTP basics


@needs_plugin
def test_get_and_backend_keep_alive_reuse(procs):
    o = procs.origin("s1")
    port = free_port()
    cfg = procs.write_config(http_proxy_config(port, f"    server s1 127.0.0.1:{o.port}\n"))
    procs.twistd(cfg, wait_port=port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn_ids = set()
    for _ in range(5):
        r, body = get(port, "/", conn)
        assert r.status == 200 and body == b"hello from s1"
        conn_ids.add(r.getheader("X-Conn-Id"))
    conn.close()
    assert len(conn_ids) == 1, "the backend connection is reused across requests of a keep-alive client"


@needs_plugin
def test_roundrobin_over_two_servers(procs):
    a, b = procs.origin("a"), procs.origin("b")
    port = free_port()
    servers = f"    server a 127.0.0.1:{a.port}\n    server b 127.0.0.1:{b.port}\n"
    procs.twistd(procs.write_config(http_proxy_config(port, servers)), wait_port=port)
    names = [get(port, "/")[0].getheader("X-Server") for _ in range(6)]
    assert sorted(names) == ["a", "a", "a", "b", "b", "b"]


@needs_plugin
def test_streamed_100mb_post_and_get_keep_memory_flat(procs):
    o = procs.origin("s1")
    port = free_port()
    cfg = procs.write_config(http_proxy_config(port, f"    server s1 127.0.0.1:{o.port}\n"))
    lb = procs.twistd(cfg, wait_port=port)
    get(port, "/")  # warm up
    size = 100 * MB
    block = bytes(range(256)) * 256  # 64 KiB
    digest = hashlib.sha256()
    for _ in range(size // len(block)):
        digest.update(block)

    def body():
        for _ in range(size // len(block)):
            yield block

    sampler = RssSampler(lb.pid)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/count", body=body(), headers={"Content-Length": str(size)})
    r = conn.getresponse()
    answer = r.read()
    assert r.status == 200
    assert answer == f"bytes={size} sha256={digest.hexdigest()}".encode()

    conn.request("GET", f"/download?size={size}")
    r = conn.getresponse()
    got = 0
    while True:
        chunk = r.read(256 * 1024)
        if not chunk:
            break
        got += len(chunk)
    conn.close()
    growth = sampler.stop()
    assert r.status == 200 and got == size
    assert growth < 60, f"minilb grew by {growth} MB while streaming 100 MB each way"


@needs_plugin
def test_chunked_both_ways(procs):
    o = procs.origin("s1")
    port = free_port()
    procs.twistd(
        procs.write_config(http_proxy_config(port, f"    server s1 127.0.0.1:{o.port}\n")), wait_port=port
    )
    r, body = get(port, "/chunked?chunks=5&size=1000")
    assert r.status == 200 and body == b"".join(bytes([0x61 + i]) * 1000 for i in range(5))
    assert r.getheader("Transfer-Encoding") == "chunked"
    parts = [b"first-", b"second-" * 1000, b"third"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request(
        "POST", "/echo", body=iter(parts), encode_chunked=True, headers={"Transfer-Encoding": "chunked"}
    )
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b"".join(parts)
    conn.close()


# --------------------------------------------------------------------------- servers up and down


@needs_plugin
def test_down_server_is_skipped_and_logged(procs):
    o = procs.origin("alive")
    dead = free_port()
    port = free_port()
    servers = (
        f"    server alive 127.0.0.1:{o.port} check inter 200 fall 1 rise 1\n"
        f"    server dead 127.0.0.1:{dead} check inter 200 fall 1 rise 1\n"
    )
    lb = procs.twistd(procs.write_config(http_proxy_config(port, servers)), wait_port=port)
    line = lb.wait_for_line("Server be/dead is DOWN")
    assert 'reason: Layer4 connection problem, info: "Connection refused"' in line
    assert "1 active and 0 backup servers left." in line
    for _ in range(6):
        r, body = get(port, "/")
        assert r.status == 200 and r.getheader("X-Server") == "alive"


@needs_plugin
def test_503_when_every_server_is_down(procs):
    port = free_port()
    servers = f"    server s1 127.0.0.1:{free_port()} check inter 200 fall 1\n"
    lb = procs.twistd(procs.write_config(http_proxy_config(port, servers)), wait_port=port)
    lb.wait_for_line("backend be has no server available!")
    r, body = get(port, "/")
    assert r.status == 503
    assert b"<h1>503 Service Unavailable</h1>" in body


@needs_plugin
def test_http_check_marks_server_down_on_wrong_status(procs):
    o = procs.origin("s1")
    port = free_port()
    servers = f"    server s1 127.0.0.1:{o.port} check inter 200 fall 1\n"
    backend = "    option httpchk GET /status?code=500\n    http-check expect status 200\n"
    lb = procs.twistd(procs.write_config(http_proxy_config(port, servers, backend)), wait_port=port)
    line = lb.wait_for_line("Server be/s1 is DOWN")
    assert "reason: Layer7 wrong status, code: 500" in line


@needs_plugin
def test_504_on_a_slow_server(procs):
    o = procs.origin("slow")
    port = free_port()
    cfg = http_proxy_config(port, f"    timeout server 500ms\n    server s1 127.0.0.1:{o.port}\n")
    procs.twistd(procs.write_config(cfg), wait_port=port)
    r, body = get(port, "/slow?delay=5")
    assert r.status == 504
    assert b"<h1>504 Gateway Time-out</h1>" in body


# --------------------------------------------------------------------------- TLS, TCP


@needs_plugin
def test_tls_frontend(procs):
    o = procs.origin("s1")
    ca = ScratchCA()
    cafile = ca.write_ca(procs.tmp / "ca.pem")
    crt = ca.issue(procs.tmp / "site.pem", "localhost", "127.0.0.1")
    port = free_port()
    cfg = (
        DEFAULTS
        + f"""
frontend fe
    bind 127.0.0.1:{port} ssl crt {crt} alpn http/1.1
    default_backend be
backend be
    server s1 127.0.0.1:{o.port}
"""
    )
    procs.twistd(procs.write_config(cfg), wait_port=port)
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=20)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b"hello from s1"
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.close()


@needs_plugin
def test_tcp_mode(procs):
    o = procs.origin("s1")
    port = free_port()
    cfg = (
        DEFAULTS
        + f"""
listen tcp_in
    mode tcp
    bind 127.0.0.1:{port}
    server s1 127.0.0.1:{o.port}
"""
    )
    procs.twistd(procs.write_config(cfg), wait_port=port)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(b"GET /headers HTTP/1.1\r\nHost: x\r\nX-Raw: 1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"X-Raw: 1\r\n" in data  # bytes pass untouched
    assert b"X-Forwarded-For" not in data


# --------------------------------------------------------------------------- entry points


@needs_plugin
def test_twistd_check_mode_exit_codes(procs):
    good = procs.write_config(http_proxy_config(free_port(), "    server s1 127.0.0.1:9\n"), "good.cfg")
    p = procs.run([shutil.which("twistd"), "-n", "minilb", "-c", good, "--check"])
    assert p.returncode == 0 and b"Configuration file is valid" in p.stdout
    bad = procs.write_config("frontend fe\n    bindd :80\n", "bad.cfg")
    p = procs.run([shutil.which("twistd"), "-n", "minilb", "-c", bad, "--check"])
    assert p.returncode == 1
    assert b"parsing [" + bad.encode() + b":2] : unknown keyword 'bindd'" in p.stderr
    # the same bad file at start: diagnostics, exit 1, no traceback
    p = procs.run([shutil.which("twistd"), "--pidfile=", "-n", "minilb", "-c", bad])
    assert p.returncode == 1
    assert b"Traceback" not in p.stdout + p.stderr and b"unknown keyword 'bindd'" in p.stderr


def test_minilb_check_mode_exit_codes(procs):
    good = procs.write_config(http_proxy_config(free_port(), "    server s1 127.0.0.1:9\n"), "good.cfg")
    p = procs.run([sys.executable, "-m", "minilb", "-c", "-f", good])
    assert (p.returncode, p.stdout) == (0, b"Configuration file is valid\n")
    bad = procs.write_config("backend b\n    server s1 127.0.0.1:9 wieght 3\n", "bad.cfg")
    p = procs.run([sys.executable, "-m", "minilb", "-c", "-f", bad])
    assert p.returncode == 1 and b"[ALERT]" in p.stderr


def test_minilb_runs_like_twistd_and_soft_stops_on_sigusr1(procs):
    o = procs.origin("s1")
    port = free_port()
    cfg = procs.write_config(http_proxy_config(port, f"    server s1 127.0.0.1:{o.port}\n"))
    pidfile = procs.tmp / "minilb.pid"
    lb = procs.minilb("-db", "-f", cfg, "-p", str(pidfile), wait_port=port)
    r, body = get(port, "/")
    assert r.status == 200 and body == b"hello from s1"
    assert int(pidfile.read_text()) == lb.pid
    # a second minilb takes over the port, then soft-stops the first (-sf), as haproxy
    lb2 = procs.minilb("-db", "-f", cfg, "-sf", str(lb.pid))
    assert lb.wait(timeout=20) == 0
    wait_for_port(port, proc=lb2.popen)
    assert get(port, "/")[0].status == 200
    lb2.signal(signal.SIGTERM)
    assert lb2.wait(timeout=20) == 0


@needs_plugin
def test_basic_cfg_answers_and_gives_503_for_the_down_app(procs):
    port = free_port()
    text = (REPO / "conf" / "basic.cfg").read_text().replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    text = text.replace("127.0.0.1:9 ", f"127.0.0.1:{free_port()} ")
    lb = procs.twistd(procs.write_config(text), wait_port=port)
    r, body = get(port, "/")
    assert r.status == 200 and body.startswith(b"minilb is running.")
    lb.wait_for_line("Server app/app1 is DOWN")
    r, body = get(port, "/app/")
    assert r.status == 503


def test_origin_server_itself(procs):
    """The test origin behaves as the other tests assume (keep-alive ids, counting)."""
    o = procs.origin("solo")
    conn = http.client.HTTPConnection("127.0.0.1", o.port, timeout=20)
    r1, _ = get(o.port, "/", conn)
    r2, b2 = get(o.port, "/count", conn, method="POST", body=b"abc")
    assert r1.getheader("X-Conn-Id") == r2.getheader("X-Conn-Id") and r2.getheader("X-Req-Num") == "2"
    assert b2 == b"bytes=3 sha256=" + hashlib.sha256(b"abc").hexdigest().encode()
    r3, b3 = get(o.port, "/slow?delay=0.2", conn)
    assert b3 == b"slow from solo"
    conn.close()


def test_sf_lets_the_old_process_finish_its_requests(procs):
    """``-sf``: the old minilb stops accepting but completes the request in flight."""
    o = procs.origin("s1")
    port = free_port()
    cfg = procs.write_config(http_proxy_config(port, f"    server s1 127.0.0.1:{o.port}\n"))
    old = procs.minilb("-db", "-f", cfg, wait_port=port)
    result = {}

    def slow_request():
        try:
            r, body = get(port, "/slow?delay=2")
            result["answer"] = (r.status, body)
        except OSError as e:
            result["answer"] = e

    t = threading.Thread(target=slow_request)
    t.start()
    deadline = time.monotonic() + 20
    while "Connect from" not in old.output and time.monotonic() < deadline:
        time.sleep(0.02)  # the slow request reached the old process
    new = procs.minilb("-db", "-f", cfg, "-sf", str(old.pid))
    t.join(timeout=30)
    assert result["answer"] == (200, b"slow from s1")
    assert old.wait(timeout=20) == 0
    assert get(port, "/")[0].status == 200  # the new one serves
    assert new.poll() is None


@needs_plugin
def test_several_config_files_and_a_directory(procs):
    o = procs.origin("s1")
    port = free_port()
    base = procs.write_config(DEFAULTS, "00-base.cfg")
    site = procs.write_config(
        f"frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n"
        f"backend be\n    server s1 127.0.0.1:{o.port}\n",
        "10-site.cfg",
    )
    lb = procs.twistd(base, "-c", site, wait_port=port)
    assert get(port, "/")[1] == b"hello from s1"
    lb.stop()
    procs.minilb("-db", "-f", str(procs.tmp), wait_port=port)  # a directory: its *.cfg in order
    assert get(port, "/")[1] == b"hello from s1"
