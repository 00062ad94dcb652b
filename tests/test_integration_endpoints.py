"""End to end: address families and TLS on both sides, health checks over TLS, daemon mode."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import sys
import time

import pytest

from tests.support.procs import (
    free_port,
    has_ipv6,
    procs_fixture,  # noqa: F401 (the `procs` fixture)
    wait_for_port,
)
from tests.support.tlscerts import ScratchCA
from tests.test_integration_proxy import DEFAULTS, get, needs_plugin

pytestmark = pytest.mark.integration


@pytest.fixture
def pki(procs):
    ca = ScratchCA()
    return {
        "ca": ca.write_ca(procs.tmp / "ca.pem"),
        "origin": ca.issue(procs.tmp / "origin.pem", "origin.test", "127.0.0.1"),
        "other_ca": ScratchCA("another CA").write_ca(procs.tmp / "other-ca.pem"),
    }


def unix_get(path: str, target: str = "/", abstract: bool = False) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(("\0" + path) if abstract else path)
    s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return data


@needs_plugin
def test_tls_to_the_server_with_verification_and_sni(procs, pki):
    o = procs.origin("secure", tls_crt=pki["origin"])
    good, wrong_ca, wrong_name = free_port(), free_port(), free_port()
    cfg = (
        DEFAULTS
        + f"""
frontend good
    bind 127.0.0.1:{good}
    default_backend verified
frontend wrong_ca
    bind 127.0.0.1:{wrong_ca}
    default_backend untrusted
frontend wrong_name
    bind 127.0.0.1:{wrong_name}
    default_backend misnamed
backend verified
    option httpchk GET /health
    server s1 127.0.0.1:{o.port} ssl verify required ca-file {pki["ca"]} sni str(origin.test) check inter 300
backend untrusted
    retries 0
    server s1 127.0.0.1:{o.port} ssl verify required ca-file {pki["other_ca"]} sni str(origin.test)
backend misnamed
    retries 0
    server s1 127.0.0.1:{o.port} ssl verify required ca-file {pki["ca"]} sni str(elsewhere.test)
"""
    )
    lb = procs.twistd(procs.write_config(cfg), wait_port=good)
    r, body = get(good, "/")
    assert r.status == 200 and body == b"hello from secure"
    assert get(wrong_ca, "/")[0].status == 503
    assert get(wrong_name, "/")[0].status == 503
    time.sleep(1)  # a few HTTP checks over TLS have run by now (a plain-text one would fail)
    assert "verified/s1 is DOWN" not in lb.output


@needs_plugin
@pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
def test_ipv6_bind_and_ipv6_server(procs):
    o = procs.origin("s1")
    inner, outer = free_port(), free_port()
    cfg = (
        DEFAULTS
        + f"""
listen v6_front
    bind ipv6@::1:{outer}
    server relay ipv6@::1:{inner}
listen v6_relay
    bind [::1]:{inner}
    server s1 127.0.0.1:{o.port}
"""
    )
    procs.twistd(procs.write_config(cfg))
    wait_for_port(outer, host="::1")
    conn = http.client.HTTPConnection("::1", outer, timeout=20)
    conn.request("GET", "/headers")
    r = conn.getresponse()
    assert r.status == 200 and r.read().startswith(b"GET /headers HTTP/1.1")
    conn.close()


@needs_plugin
def test_unix_and_abstract_binds(procs):
    o = procs.origin("s1")
    path = str(procs.tmp / "lb.sock")
    abns = f"minilb-it-{os.getpid()}-{free_port()}"
    tcp = free_port()
    cfg = (
        DEFAULTS
        + f"""
frontend fe
    bind 127.0.0.1:{tcp}
    bind unix@{path} mode 600
    bind abns@{abns}
    default_backend be
backend be
    server s1 127.0.0.1:{o.port}
"""
    )
    procs.twistd(procs.write_config(cfg), wait_port=tcp)
    # the master binds every socket before it starts the worker, UNIX paths included
    deadline = time.monotonic() + 15
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert unix_get(path).endswith(b"hello from s1")
    assert unix_get(abns, abstract=True).endswith(b"hello from s1")


@needs_plugin
def test_unix_socket_server(procs):
    """A backend server reached over a UNIX socket (minilb in front of minilb)."""
    o = procs.origin("deep")
    inner_sock = str(procs.tmp / "inner.sock")
    outer = free_port()
    inner_cfg = DEFAULTS + f"\nlisten inner\n    bind {inner_sock}\n    server s1 127.0.0.1:{o.port}\n"
    procs.twistd(procs.write_config(inner_cfg, "inner.cfg"))
    deadline = time.monotonic() + 20
    while not os.path.exists(inner_sock) and time.monotonic() < deadline:
        time.sleep(0.05)
    outer_cfg = DEFAULTS + f"\nlisten outer\n    bind 127.0.0.1:{outer}\n    server s1 unix@{inner_sock}\n"
    procs.twistd(procs.write_config(outer_cfg, "outer.cfg"), wait_port=outer)
    r, body = get(outer, "/")
    assert r.status == 200 and body == b"hello from deep"


def test_daemon_mode_forks_writes_the_pidfile_and_stops_on_sigterm(procs):
    o = procs.origin("s1")
    port = free_port()
    pidfile = procs.tmp / "daemon.pid"
    cfg = procs.write_config(
        DEFAULTS + f"\nlisten l\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:{o.port}\n"
    )
    p = procs.run([sys.executable, "-m", "minilb", "-D", "-q", "-f", cfg, "-p", str(pidfile)])
    assert p.returncode == 0  # the parent returns once the daemon is forked
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (pidfile.exists() and pidfile.read_text().endswith("\n")):
        time.sleep(0.05)  # the daemon writes its pid once forked
    pid = int(pidfile.read_text())
    try:
        wait_for_port(port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        r, body = get(port, "/", conn)
        assert body == b"hello from s1"
        conn.close()
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the daemon did not stop on SIGTERM")


def test_fd_bind_serves_on_an_inherited_socket(procs):
    """``bind fd@N``: the socket is opened by the parent (as systemd or a master does)."""
    o = procs.origin("s1")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    fd = sock.fileno()
    cfg = procs.write_config(DEFAULTS + f"\nlisten l\n    bind fd@{fd}\n    server s1 127.0.0.1:{o.port}\n")
    procs.minilb("-db", "-f", cfg, pass_fds=(fd,))
    for _ in range(2):  # the second request proves the first accept did not block the reactor
        r, body = get(port, "/")  # served by minilb (the test never accepts on its copy)
        assert r.status == 200 and body == b"hello from s1"
    sock.close()


@needs_plugin
def test_port_in_use_is_an_alert_and_exit_1(procs):
    taken = socket.socket()  # bound without SO_REUSEPORT: nobody can share it
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    cfg = procs.write_config(DEFAULTS + f"\nlisten l\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:9\n")
    try:
        for argv in (
            [shutil.which("twistd"), "--pidfile=", "-n", "minilb", "-c", cfg],
            [sys.executable, "-m", "minilb", "-db", "-f", cfg],
            [sys.executable, "-m", "minilb", "-D", "-f", cfg],  # reported before forking, as haproxy
        ):
            p = procs.run(argv)
            out = p.stdout + p.stderr
            assert p.returncode == 1
            assert f"cannot bind socket (Address already in use) for [127.0.0.1:{port}]".encode() in out
            assert b"Traceback" not in out
    finally:
        taken.close()


@needs_plugin
def test_tls_frontend_selects_the_certificate_by_sni(procs):
    import ssl

    o = procs.origin("s1")
    ca = ScratchCA()
    cafile = ca.write_ca(procs.tmp / "ca.pem")
    first = ca.issue(procs.tmp / "a.pem", "a.test")
    second = ca.issue(procs.tmp / "b.pem", "b.test")
    port = free_port()
    cfg = DEFAULTS + (
        f"\nlisten tls\n    bind 127.0.0.1:{port} ssl crt {first} crt {second}\n    server s1 127.0.0.1:{o.port}\n"
    )
    procs.twistd(procs.write_config(cfg), wait_port=port)
    ctx = ssl.create_default_context(cafile=cafile)
    for name in ("a.test", "b.test"):
        with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as tls:  # verifies the name too
                tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := tls.recv(65536):
                    data += chunk
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello from s1")


@needs_plugin
def test_accept_proxy_with_ssl_rules_see_the_header_address(procs):
    """``bind ... ssl accept-proxy``: the PROXY header (v1 or v2) comes before the TLS
    handshake, and the rules see its source address."""
    import ssl
    import struct

    ca = ScratchCA()
    crt = ca.issue(procs.tmp / "front.pem", "front.test")
    port = free_port()
    cfg = DEFAULTS + (
        f"\nfrontend tls\n    bind 127.0.0.1:{port} ssl crt {crt} accept-proxy\n"
        "    tcp-request connection reject if { src 192.0.2.66 }\n"
        '    http-request return status 200 content-type text/plain lf-string "src=%[src]:%[src_port]"\n'
    )
    procs.twistd(procs.write_config(cfg), wait_port=port)
    ctx = ssl.create_default_context(cafile=ca.write_ca(procs.tmp / "ca.pem"))

    def fetch(header: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
            raw.sendall(header)
            try:
                with ctx.wrap_socket(raw, server_hostname="front.test") as tls:
                    tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    data = b""
                    while chunk := tls.recv(65536):
                        data += chunk
                    return data
            except (ssl.SSLError, ConnectionResetError):
                return b""

    v1 = fetch(b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 443\r\n")
    assert v1.startswith(b"HTTP/1.1 200") and v1.endswith(b"src=192.0.2.7:5555")
    addresses = (
        socket.inet_aton("198.51.100.9") + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 4242, 443)
    )
    v2 = fetch(b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + struct.pack("!H", len(addresses)) + addresses)
    assert v2.startswith(b"HTTP/1.1 200") and v2.endswith(b"src=198.51.100.9:4242")
    assert fetch(b"PROXY TCP4 192.0.2.66 127.0.0.1 5555 443\r\n") == b""  # rejected by its header address
    assert fetch(b"") == b""  # no header: closed, as haproxy does
