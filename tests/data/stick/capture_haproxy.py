"""Capture HAProxy 2.6's stats socket answers for the stick-table commands.

How the captures in ``cli_captures.json`` were made (haproxy 2.6.12-1+deb12u4):

    python tests/data/stick/capture_haproxy.py > tests/data/stick/cli_captures.json

It starts ``haproxy -f`` on the config below (no traffic: only CLI-made entries,
so everything but entry addresses and ``exp=`` countdowns is deterministic), sends
each command on a fresh connection to the socket of the given level, stores the
raw answer, and stops haproxy.  The tests replay the same commands against
`minilb.runtime.cli` and compare byte for byte after masking the pointer and the
``exp=`` value.
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

CONFIG = """\
global
    stats socket {dir}/admin.sock level admin
    stats socket {dir}/operator.sock level operator
    stats socket {dir}/user.sock level user
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend fe
    bind 127.0.0.1:18480
    stick-table type ip size 1m expire 60s store http_req_rate(10s),gpc0,http_req_cnt
backend allt
    stick-table type string len 8 size 10 expire 30s store server_id,gpt0,gpc0,gpc0_rate(1s),conn_cnt,conn_rate(2s),conn_cur,sess_cnt,sess_rate(3s),http_req_cnt,http_req_rate(4s),http_err_cnt,http_err_rate(5s),bytes_in_cnt,bytes_in_rate(6s),bytes_out_cnt,bytes_out_rate(7s),gpc1,gpc1_rate(8s),server_key,http_fail_cnt,http_fail_rate(9s)
backend arr
    stick-table type integer size 10 store gpt(2),gpc(3),gpc_rate(2,10s)
backend b6
    stick-table type ipv6 size 5 expire 10s nopurge store gpc0
backend bin
    stick-table type binary len 6 size 5 store gpc0
"""

# (level, command) in order; the state carries over from one to the next
COMMANDS = [
    ("admin", "show table"),
    ("admin", "show table fe"),
    ("admin", "set table fe key 10.0.0.2 data.gpc0 3"),
    ("admin", "set table fe key 9.0.0.1 data.http_req_cnt 4 data.http_req_rate 7"),
    ("admin", "show table fe"),
    ("admin", "show table fe key 10.0.0.2"),
    ("admin", "show table fe key 10.0.0.9"),
    ("admin", "show table fe data.gpc0 gt 0"),
    ("admin", "show table fe data.gpc0 eq 3 data.http_req_cnt eq 0"),
    ("admin", "show table fe data.http_req_rate ge 7"),
    ("admin", "show table fe data.gpc0 foo 0"),
    ("admin", "show table fe data.foo gt 0"),
    ("admin", "show table fe data.gpc0 gt"),
    ("admin", "show table fe data.gpc0 gt x"),
    ("admin", "show table fe data.gpc0 gt 0 data.xx"),
    ("admin", "show table fe data.gpc0 gt 0 data.gpc0 gt 0 data.gpc0 gt 0 data.gpc0 gt 0 data.gpc0 gt 0"),
    ("admin", "show table fe data.conn_cnt gt 0"),
    ("admin", "show table fe key"),
    ("admin", "show table nosuch"),
    ("admin", "show table fe foo"),
    (
        "admin",
        "set table allt key abc data.gpc0 5 data.http_req_rate 7 data.server_id 3 data.bytes_in_cnt 123456789012",
    ),
    ("admin", "set table allt key abcdefghijk data.gpc0 1 data.server_id -2"),
    ("admin", "set table allt key a\\ b=c data.gpc0 1"),
    ("admin", "show table allt"),
    ("admin", "set table arr key 5 data.gpt1 77"),
    ("admin", "set table arr key 1 data.gpt0 1"),
    ("admin", "set table arr key 256 data.gpc 9"),
    ("admin", "set table arr key 2 data.gpc_rate 4"),
    ("admin", "set table arr key 5abc"),
    ("admin", "set table arr key 4294967297"),
    ("admin", "set table arr key -1"),
    ("admin", "set table arr key abc"),
    ("admin", "show table arr"),
    ("admin", "show table arr data.gpc gt 0"),
    ("admin", "set table b6 key ::1 data.gpc0 1"),
    ("admin", "set table b6 key 2001:db8::1:0:0:1 data.gpc0 2"),
    ("admin", "set table b6 key 1.2.3.4 data.gpc0 1"),
    ("admin", "show table b6"),
    ("admin", "set table bin key abc data.gpc0 2"),
    ("admin", "show table bin key abc"),
    ("admin", "clear table bin key abc"),
    ("admin", "show table bin"),
    ("admin", "set table fe"),
    ("admin", "set table fe key"),
    ("admin", "set table fe key 1.1.1.1 data.gpc0"),
    ("admin", "set table fe key 1.1.1.1 data.gpc0 abc"),
    ("admin", "set table fe key 1.1.1.1 data.gpc0 +5"),
    ("admin", "set table fe key 1.1.1.1 data.nosuch 1"),
    ("admin", "set table fe key 1.1.1.1 data.conn_rate 1"),
    ("admin", "set table fe key 1.1.1.1 foo"),
    ("admin", "set table fe key 1.1.1.1 data.gpc0 -1"),
    ("admin", "set table fe key ::1 data.gpc0 1"),
    ("admin", "set table fe foo"),
    ("admin", "set table"),
    ("admin", "set table nosuch key 1"),
    ("admin", "show table fe"),
    ("user", "show table"),
    ("user", "show table fe"),
    ("user", "show table fe key 1.1.1.1"),
    ("user", "set table fe key 1.1.1.1 data.gpc0 1"),
    ("user", "clear table fe key 1.1.1.1"),
    ("user", "clear table fe"),
    ("user", "show cli level"),
    ("user", "operator"),
    ("operator", "show cli level"),
    ("operator", "show table fe key 1.1.1.1"),
    ("operator", "set table fe key 1.1.1.1 data.gpc0 2"),
    ("operator", "clear table fe key 1.1.1.1"),
    ("admin", "show table fe"),
    ("admin", "clear table fe key 10.0.0.2"),
    ("admin", "clear table fe key 10.0.0.99"),
    ("admin", "clear table fe data.http_req_cnt gt 3"),
    ("admin", "show table fe"),
    ("admin", "clear table fe foo"),
    ("admin", "clear table"),
    ("admin", "clear table allt"),
    ("admin", "show table allt"),
    ("admin", "show table bin;show table b6"),
    ("admin", "show table bin;quit;show table b6"),
    ("admin", "quit"),
    ("admin", "show cli level"),
]


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
            f.write(CONFIG.format(dir=tmp))
        proc = subprocess.Popen(["haproxy", "-f", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if all(
                    os.path.exists(os.path.join(tmp, f"{lv}.sock")) for lv in ("admin", "operator", "user")
                ):
                    break
                time.sleep(0.05)
            results = [[level, cmd, ask(os.path.join(tmp, f"{level}.sock"), cmd)] for level, cmd in COMMANDS]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
    version = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    json.dump({"haproxy": version, "config": CONFIG, "captures": results}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
