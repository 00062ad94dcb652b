"""Capture what HAProxy 2.6 answers and stores for a small stick-table traffic scenario.

How ``traffic_captures.json`` was made (haproxy 2.6.12-1+deb12u4):

    python tests/data/stick/capture_traffic.py > tests/data/stick/traffic_captures.json

haproxy runs the config below; each request goes on its own connection
(``Connection: close``) from 127.0.0.1, one after the other, well within one rate
period; then ``show table`` of both tables is read on the stats socket.  The test
replays the same requests through minilb's compiled rules and tracking calls and
compares statuses and ``show table`` lines (entry address and ``exp=`` masked).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

PORT = 18481

CONFIG = """\
global
    stats socket {dir}/admin.sock level admin
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend fe
    bind 127.0.0.1:{port}
    stick-table type ip size 1m expire 60s store http_req_rate(10s),gpc0,http_req_cnt,http_err_cnt,conn_cnt,conn_cur,sess_cnt
    tcp-request connection track-sc1 src table conns
    http-request track-sc0 src
    http-request sc-inc-gpc0(0) if {{ path_beg /admin }}
    http-request deny deny_status 403 if {{ sc0_get_gpc0 gt 0 }} {{ path_beg /private }}
    http-request deny deny_status 429 if {{ sc_http_req_rate(0) gt 4 }}
    http-request return status 200 content-type text/plain string ok
backend conns
    stick-table type ip size 1m expire 60s store conn_cnt,conn_cur,sess_cnt,sess_rate(10s),http_req_cnt,http_req_rate(10s),http_err_cnt
"""

PATHS = ["/", "/", "/private", "/admin", "/private", "/", "/"]


def request(path: str) -> int:
    sock = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    return int(data.split(b" ", 2)[1])


def ask(path: str, command: str) -> str:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    sock.connect(path)
    sock.sendall(command.encode() + b"\n")
    out = b""
    while True:
        data = sock.recv(65536)
        if not data:
            break
        out += data
    sock.close()
    return out.decode()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "h.cfg")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(dir=tmp, port=PORT))
        proc = subprocess.Popen(["haproxy", "-f", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            sock_path = os.path.join(tmp, "admin.sock")
            for _ in range(100):
                if os.path.exists(sock_path):
                    break
                time.sleep(0.05)
            statuses = [request(p) for p in PATHS]
            time.sleep(0.2)  # let the last connections close
            tables = {name: ask(sock_path, f"show table {name}") for name in ("fe", "conns")}
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
    version = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    json.dump(
        {"haproxy": version, "config": CONFIG, "paths": PATHS, "statuses": statuses, "tables": tables},
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
