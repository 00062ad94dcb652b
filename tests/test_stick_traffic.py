"""A traffic scenario replayed through minilb's rules and tracking, compared with what
HAProxy 2.6.12 answered and stored (tests/data/stick/traffic_captures.json, made by
capture_traffic.py next to it)."""

import json
import pathlib
import re

from twisted.internet.task import Clock

import minilb.stick.fetches  # noqa: F401  (registers the keywords)
from minilb.config.load import load_config
from minilb.rules.compile import compile_rules
from minilb.rules.txn import Session, Txn
from minilb.runtime.cli import CommandProcessor
from minilb.stick import tracking
from minilb.stick.table import StickTable

DATA = json.loads((pathlib.Path(__file__).parent / "data" / "stick" / "traffic_captures.json").read_text())


def mask(text: str) -> str:
    text = re.sub(r"^0x[0-9a-f]+:", "0xADDR:", text, flags=re.M)
    return re.sub(r" exp=\d+", " exp=N", text)


def test_statuses_and_tables_match_haproxy(tmp_path):
    cfg = tmp_path / "h.cfg"
    cfg.write_text(DATA["config"].format(dir=tmp_path, port=18481))
    config, _ = load_config([str(cfg)])
    clock = Clock()
    clock.advance(1000)
    tables = {spec.name: StickTable(spec, clock) for spec in config.tables()}
    rules = compile_rules(config, tables)["fe"]
    statuses = []
    for path in DATA["paths"]:
        sess = Session(src="127.0.0.1", src_port=40000, dst="127.0.0.1", dst_port=18481, frontend="fe")
        assert rules.tcp_connection(sess)
        tracking.on_session_accept(sess)
        txn = Txn(sess, "GET", path.encode(), path, None, "1.1", [[b"Host", b"t"], [b"Connection", b"close"]])
        tracking.on_http_request(txn)
        reply = rules.http_request(txn)
        assert reply is not None  # every request is answered by a rule in this config
        if reply.status != 200:
            tracking.on_http_denied(txn)  # the deny rules answered (the 200 is "http-request return")
        statuses.append(reply.status)
        tracking.on_txn_end(txn)
        tracking.on_session_end(sess)
        clock.advance(0.01)
    assert statuses == DATA["statuses"]
    admin = CommandProcessor(tables.values()).session("admin")
    for name, expected in DATA["tables"].items():
        out, _ = admin.handle_line(f"show table {name}")
        assert mask(out) == mask(expected)
