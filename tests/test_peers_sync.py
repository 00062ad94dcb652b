"""Replication logic of `PeersSync`, driven on a task.Clock with in-memory connections."""

from __future__ import annotations

import random

import pytest
from twisted.internet import task

from minilb.config.model import StoreItem, TableSpec
from minilb.errors import BUILTIN
from minilb.peers import codec
from minilb.peers import messages as m
from minilb.peers import sync as s
from tests.support.peers import ST_IP_SPEC, FakeTable, PeerNet, captured_streams

ST_IP = ST_IP_SPEC
ST_STR = TableSpec(
    BUILTIN,
    "st_str",
    "st_str",
    "string",
    33,
    1000,
    expire=60000,
    peers="mypeers",
    store=(
        StoreItem("server_id"),
        StoreItem("gpt0"),
        StoreItem("bytes_in_cnt"),
        StoreItem("server_key"),
        StoreItem("gpc", count=3),
        StoreItem("gpc_rate", period=10000, count=2),
    ),
)
PEERS = ("hapA", "hapB")
IP1, IP2, IP3 = 0x0A000001, 0x0A000002, 0x0A000003


def make(
    name: str, clock, specs=(ST_IP,), seed: int | None = None, synced: bool = False, **kw
) -> s.PeersSync:
    tables = [FakeTable(spec, clock) for spec in specs]
    rng = random.Random(name if seed is None else seed)  # peers never share a jitter sequence
    sync = s.PeersSync(name, kw.pop("peers", PEERS), tables, clock, rng, 1000 + len(name), **kw)
    if synced:  # as if its resync timers had run out: it asks nobody for a resync
        sync.local_done = sync.remote_done = True
        sync.resync_deadline_ms = None
    return sync


def updates(msgs: list) -> list[m.Update]:
    return [x for x in msgs if isinstance(x, m.Update)]


@pytest.fixture
def clock() -> task.Clock:
    c = task.Clock()
    c.advance(1_000_000)
    return c


def test_defines_match_haproxy_bytes() -> None:
    captured = {st.id: st for st in captured_streams()}
    rows = captured["exp2-string-table/stream7_server_20001-to-46338.hex"].rows
    clock = task.Clock()
    assert s.SharedTable(FakeTable(ST_IP, clock), 1).encoded_define == bytes.fromhex(
        "0a8212010573745f6970 0404f452f0971c0af0e203".replace(" ", "")
    )
    assert s.SharedTable(FakeTable(ST_STR, clock), 2).encoded_define == rows[1].raw


def test_two_peers_converge_both_ways(clock: task.Clock) -> None:
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock))
    b = net.add("hapB", make("hapB", clock))
    ta, tb = a.tables[0].table, b.tables[0].table
    ta.set_local(IP1, gpc0=5)
    ta.set_local(IP2, http_req_cnt=300, http_req_rate=7)
    tb.set_local(IP3, gpc0=1234)
    net.run(3)  # both dial at once: the crossing hellos collide, one redial wins
    assert tb.get(IP1, "gpc0") == 5 and tb.get(IP2, "http_req_cnt") == 300
    assert tb.get(IP2, "http_req_rate")[0] == 7  # curr, rebuilt on B's clock
    assert ta.get(IP3, "gpc0") == 1234
    assert len(net.open_conns()) == 1  # one session per pair of peers
    # learned entries get remote ids and are not announced as local changes
    assert tb.local_update == 1 and ta.local_update == 2


def test_first_push_is_define_then_update_and_incremental_update(clock: task.Clock) -> None:
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock, synced=True))
    net.add("hapB", make("hapB", clock, synced=True))
    ta = a.tables[0].table
    ta.set_local(IP1, gpc0=5)
    ta.set_local(IP2, gpc0=6)
    ta.set_local(IP3, gpc0=1)
    ta.set_local(IP3, gpc0=2)  # renumbered: ids 1, 2, 4
    net.run(3)
    (conn,) = net.open_conns()  # the session that survived the start-up collision
    msgs = conn.messages("hapA", "hapB")
    assert isinstance(msgs[0], m.Define) and msgs[0].name == "st_ip"
    ups = updates(msgs)
    assert [(u.update_id, u.type_code) for u in ups] == [(1, 0x80), (None, 0x81), (4, 0x80)]
    assert [a for a in conn.messages("hapB", "hapA") if isinstance(a, m.Ack)] == [m.Ack(1, 4)]


def test_batches_of_max_updates_at_once(clock: task.Clock) -> None:
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock, max_updates=200, synced=True))
    b = net.add("hapB", make("hapB", clock, synced=True))
    ta = a.tables[0].table
    net.run(3)
    for i in range(450):
        ta.set_local(0x0B000000 + i, gpc0=i)
    net.run(1)
    (conn,) = net.open_conns()
    ups = updates(conn.messages("hapA", "hapB"))
    assert len(ups) == 450
    assert [u.update_id for u in ups if u.update_id is not None] == [1, 201, 401]
    acks = [x for x in conn.messages("hapB", "hapA") if isinstance(x, m.Ack)]
    assert acks == [m.Ack(1, 200), m.Ack(1, 400), m.Ack(1, 450)]  # one ACK per batch
    assert b.tables[0].table.get(0x0B000000 + 449, "gpc0") == 449


def test_define_again_when_switching_tables(clock: task.Clock) -> None:
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock, specs=(ST_IP, ST_STR), synced=True))
    b = net.add("hapB", make("hapB", clock, specs=(ST_IP, ST_STR), synced=True))
    net.run(3)
    (conn,) = net.open_conns()
    ta, ts = (t.table for t in a.tables)
    ta.set_local(IP1, gpc0=1)
    net.run(0.1)
    ts.set_local(b"alice", gpt0=7, server_key="s1")
    net.run(0.1)
    ta.set_local(IP2, gpc0=2)
    net.run(0.1)
    assert net.open_conns() == [conn]
    kinds = [
        (type(x).__name__, getattr(x, "name", None))
        for x in conn.messages("hapA", "hapB")
        if not isinstance(x, m.Heartbeat)
    ]
    assert kinds == [
        ("Define", "st_ip"),
        ("Update", None),
        ("Define", "st_str"),
        ("Update", None),
        ("Define", "st_ip"),
        ("Update", None),
    ]
    assert b.tables[1].table.get(b"alice", "server_key") == "s1"


def test_heartbeat_after_3s_idle_and_liveness_drop_after_silence(clock: task.Clock) -> None:
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock))
    net.add("hapB", make("hapB", clock))
    net.run(3)
    (conn,) = net.open_conns()
    sent, received = a.peers["hapB"].tx_heartbeats, a.peers["hapB"].rx_heartbeats
    net.run(9)  # every 3.0 s from each side when idle
    assert a.peers["hapB"].tx_heartbeats - sent == 3
    assert a.peers["hapB"].rx_heartbeats - received == 3
    assert net.open_conns() == [conn]
    # B goes silent (its bytes are lost): A drops it 5-10 s after B's last message,
    # which was a heartbeat at most 3 s before now
    silent_from = clock.seconds()
    net.blackholed.add(("hapB", "hapA"))
    net.run(1.9)
    assert conn.open
    while conn.open:
        net.run(0.1)
    assert 2 <= clock.seconds() - silent_from <= 10.1
    link = conn.a_link if conn.a_name == "hapA" else conn.b_link
    assert link.close_reason == "peer silent for 5 s"


def test_reconnect_jitter_is_drawn_from_the_injected_random(clock: task.Clock) -> None:
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock, seed=42))
    net.add("hapB", make("hapB", clock))
    net.run(3)
    assert len(net.open_conns()) == 1
    twin = random.Random()
    twin.setstate(a.rng.getstate())
    expected = twin.randint(50, 2050)
    net.blackholed.add(("hapB", "hapA"))  # A hears nothing: A's liveness check kills
    now = None
    for _ in range(120):
        net.run(0.1)
        if a.peers["hapB"].link is None:
            now = a.now()
            break
    assert now is not None
    assert a.peers["hapB"].next_dial_ms - now <= expected  # drawn at the kill, up to 100 ms ago
    assert a.peers["hapB"].next_dial_ms - now > expected - 101


def test_connect_retries_then_5s_cadence(clock: task.Clock) -> None:
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock))  # nobody listens for hapB
    attempts = []
    real_failed = a.connection_failed

    def failed(name: str) -> None:
        attempts.append(round(clock.seconds() - 1_000_000, 3))
        real_failed(name)

    a.connection_failed = failed
    net.run(11)
    assert attempts == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11]


def test_collision_last_hello_wins(clock: task.Clock) -> None:
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock, seed=3))
    b = net.add("hapB", make("hapB", clock, seed=4))
    a.tables[0].table.set_local(IP1, gpc0=1)
    net.run(8)
    assert len(net.open_conns()) == 1
    assert a.peers["hapB"].collisions + b.peers["hapA"].collisions >= 1
    assert b.tables[0].table.get(IP1, "gpc0") == 1


def test_resume_from_last_ack_after_reconnect(clock: task.Clock) -> None:
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock, seed=5, synced=True))
    b = net.add("hapB", make("hapB", clock, synced=True))
    ta = a.tables[0].table
    for i in range(3):
        ta.set_local(IP1 + i, gpc0=i)
    net.run(3)
    assert a.peers["hapB"].cursors[1].acked == 3
    conns = len(net.conns)
    a.close_all("test: break the session")
    net.pump()
    ta.set_local(IP3 + 10, gpc0=99)
    net.run(6)
    assert len(net.conns) > conns
    later = []
    for conn in net.conns[conns:]:
        later += updates(conn.messages("hapA", "hapB"))
    assert [u.update_id for u in later] == [4]
    assert b.tables[0].table.get(IP3 + 10, "gpc0") == 99


def test_resync_request_teach_and_confirm(clock: task.Clock) -> None:
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock))
    ta = a.tables[0].table
    ta.set_local(IP1, gpc0=5)
    ta.set_local(IP2, gpc0=6)
    net.run(6)  # A alone for > 5 s: synchronised
    assert a.synced
    b = net.add("hapB", make("hapB", clock))
    net.run(0.5)
    to_a = net.messages("hapB", "hapA")
    to_b = net.messages("hapA", "hapB")
    assert to_a[0] == m.ResyncRequest()
    assert m.ResyncConfirm() in to_a
    finished = to_b.index(m.ResyncFinished())
    timed = [u for u in updates(to_b[:finished]) if u.expire is not None]
    assert sorted(int(u.key) for u in timed) == [IP1, IP2]
    assert all(0 < u.expire <= 60000 for u in timed)
    assert b.synced and b.source is None
    assert b.tables[0].table.get(IP2, "gpc0") == 6
    # unlike HAProxy (pitfall 12), A does not push the taught entries once more after
    # CONFIRM; a change made afterwards goes out as a plain update
    assert updates(to_b[finished:]) == []
    ta.set_local(IP3, gpc0=7)
    net.run(0.5)
    after = updates(net.messages("hapA", "hapB")[len(to_b) :])
    assert [(int(u.key), u.expire) for u in after] == [(IP3, None)]
    assert b.tables[0].table.get(IP3, "gpc0") == 7


def test_unsynchronised_teacher_answers_partial_and_learner_tries_another(clock: task.Clock) -> None:
    net = PeerNet(clock)
    peers = ("hapA", "hapB", "hapC")
    a = net.add("hapA", make("hapA", clock, peers=peers))
    net.add("hapB", make("hapB", clock, peers=peers), up=False)
    net.add("hapC", make("hapC", clock, peers=peers), up=False)
    net.run(0.1)
    assert not a.synced
    b = net.syncs["hapB"]
    net.up.add("hapB")
    net.run(0.2)
    # whoever asked first got PARTIAL from an unsynchronised teacher
    partial = [
        x for x in net.messages("hapA", "hapB") + net.messages("hapB", "hapA") if x == m.ResyncPartial()
    ]
    assert partial
    assert any(p.not_up_to_date for p in list(a.peers.values()) + list(b.peers.values()))


def test_teach_without_peers_becomes_finished_after_5s(clock: task.Clock) -> None:
    a = make("hapA", clock)
    assert a.local_done and not a.synced  # no old process: only remote learning is left
    clock.advance(4.999)
    a.tick()
    assert not a.synced
    clock.advance(0.001)
    a.tick()
    assert a.synced and a.resync_deadline_ms is None


def test_dictionary_cache_per_session(clock: task.Clock) -> None:
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock, specs=(ST_STR,), synced=True))
    b = net.add("hapB", make("hapB", clock, specs=(ST_STR,), synced=True))
    ts = a.tables[0].table
    ts.set_local(b"alice", server_key="s1", server_id=1)
    ts.set_local(b"bob", server_key="s1", server_id=1)
    net.run(3)
    (conn,) = net.open_conns()
    raw = conn.bytes_from("hapA")
    assert raw.count(bytes.fromhex("0401027331")) == 1  # "s1" sent once, then slot 1
    assert raw.count(bytes.fromhex("0101")) >= 1
    assert b.tables[0].table.get(b"bob", "server_key") == "s1"
    # a new session flushes the caches: the full string is sent again
    a.close_all("test")
    net.pump()
    ts.set_local(b"carol", server_key="s1")
    net.run(6)
    (later,) = net.open_conns()
    assert later is not conn
    assert later.bytes_from("hapA").count(bytes.fromhex("0401027331")) == 1


def test_learned_entries_are_not_relayed_by_incremental_push(clock: task.Clock) -> None:
    net = PeerNet(clock)
    peers = ("hapA", "hapB", "hapC")
    a = net.add("hapA", make("hapA", clock, peers=peers))
    b = net.add("hapB", make("hapB", clock, peers=peers))
    c = net.add("hapC", make("hapC", clock, peers=peers))
    for x in (a, b, c):
        x.remote_done = True
        x.resync_deadline_ms = None
    net.up.discard("hapC")
    net.routes[("hapA", "hapC")] = "nowhere"
    net.routes[("hapC", "hapA")] = "nowhere"
    a.tables[0].table.set_local(IP1, gpc0=1)
    net.run(3)
    net.up.add("hapC")
    net.run(6)
    assert b.tables[0].table.get(IP1, "gpc0") == 1
    assert c.tables[0].table.lookup(IP1) is None
    assert not updates(net.messages("hapB", "hapC"))


def test_mismatched_define_is_ignored_and_logged_once(clock: task.Clock) -> None:
    logs: list[str] = []
    a = make("hapA", clock, log=logs.append)
    link = a.incoming()
    enc = codec.Encoder()
    bad = m.Define(8, "st_ip", m.KEY_STRING, 33, 1 << 2, 60000)
    wire = b"HAProxyS 2.1\nhapA\nhapB 1 1\n" + b"".join(
        enc.encode(x)
        for x in (bad, m.Update(1, None, b"x", (("gpc0", 1),)), bad, m.Update(2, None, b"y", (("gpc0", 1),)))
    )
    a.data_received(link, wire)
    out = link.data_to_send()
    assert out.startswith(b"200\n")
    assert b"\x0a\x84" not in out  # no ACK for an ignored table
    assert len(logs) == 1 and "st_ip" in logs[0]
    assert not link.should_close


def test_reload_handover_old_teaches_new_before_remote_learning(clock: task.Clock) -> None:
    net = PeerNet(clock)
    old = net.add("old", make("hapA", clock, seed=1))
    old.local_done = old.remote_done = False  # not synchronised: HAProxy would skip the hand-over
    ta = old.tables[0].table
    ta.set_local(IP1, gpc0=5)
    ta.set_local(IP2, gpc0=7)
    net.run(0.1)
    new = net.add("new", make("hapA", clock, seed=2, has_old_process=True))
    remote = net.add("hapB", make("hapB", clock), up=False)
    net.routes[("old", "hapA")] = "new"
    net.routes[("new", "hapB")] = "hapB"
    assert new.dials_due() == []  # no remote peer before the local transfer
    old.begin_handover()
    net.run(0.1)
    assert old.handover_done and old.handover_ok
    assert new.tables[0].table.get(IP1, "gpc0") == 5 and new.tables[0].table.get(IP2, "gpc0") == 7
    to_new = net.messages("old", "new")
    assert to_new[-1] == m.ResyncPartial()  # not synced, but taught anyway (issue 6)
    assert all(u.expire is not None and u.expire > 0 for u in updates(to_new))
    back = net.messages("new", "old")
    assert back[-1] == m.ResyncConfirm() and m.Ack(1, 2) in back
    # PARTIAL: the new process goes on to ask a remote peer for a resync
    assert new.local_done and not new.remote_done
    net.up.add("hapB")
    remote.remote_done = remote.local_done = True
    net.run(1)
    assert m.ResyncRequest() in net.messages("new", "hapB")
    assert new.synced


def test_second_old_process_gets_300(clock: task.Clock) -> None:
    a = make("hapA", clock, has_old_process=True)
    first = a.incoming()
    a.data_received(first, b"HAProxyS 2.1\nhapA\nhapA 10 1\n")
    assert first.data_to_send() == b"200\n"
    second = a.incoming()
    a.data_received(second, b"HAProxyS 2.1\nhapA\nhapA 11 1\n")
    assert second.data_to_send() == b"300\n" and second.should_close


def test_show_peers_lists_peers_states_and_cursors(clock: task.Clock) -> None:
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock, synced=True))
    b = net.add("hapB", make("hapB", clock, synced=True))
    net.run(3)  # past the start-up collision
    b.tables[0].table.set_local(IP1, gpc0=1)
    a.tables[0].table.set_local(IP2, gpc0=2)
    net.run(0.5)
    lines = a.show_peers("mypeers", {"hapA": "127.0.0.1:20001", "hapB": "127.0.0.1:20002"})
    text = "\n".join(lines)
    assert lines[0].split(": ", 1)[1].startswith("id=mypeers disabled=0 flags=0x3 resync_timeout=<NEVER>")
    assert "id=hapA(local,inactive) addr=127.0.0.1:20001 last_status=NONE last_hdshk=<NEVER>" in text
    assert "id=hapB(remote,active) addr=127.0.0.1:20002 last_status=ESTA" in text
    remote = text[text.index("id=hapB(remote") :]
    assert "local_id=1 remote_id=1 flags=0x0 remote_data=0x614" in remote
    assert "last_acked=1 last_pushed=1 last_get=1 teaching_origin=0 update=1" in remote
    assert "id=st_ip update=2 localupdate=1 commitupdate=1 refcnt=1" in remote
    assert f"coll={a.peers['hapB'].collisions}" in remote and "tx_hbt=" in remote


def test_teach_towards_a_2_0_peer_uses_no_timed_updates(clock: task.Clock) -> None:
    a = make("hapA", clock, synced=True)
    a.tables[0].table.set_local(IP1, gpc0=5)
    a.tables[0].table.set_local(IP2, gpc0=6)
    link = a.incoming()
    a.data_received(link, b"HAProxyS 2.0\nhapA\nhapB 4242 1\n\x00\x00")
    a.tick()
    out = link.data_to_send()
    assert out.startswith(b"200\n")
    msgs = codec.Decoder().feed(out[4:])
    assert [u.type_code for u in updates(msgs)] == [0x80, 0x81]
    assert msgs[-1] == m.ResyncFinished()


def test_new_process_without_old_one_dials_remote_peers_after_5s(clock: task.Clock) -> None:
    new = make("hapA", clock, has_old_process=True)
    assert new.dials_due() == []
    clock.advance(4.9)
    new.tick()
    assert new.dials_due() == [] and not new.local_done
    clock.advance(0.1)
    new.tick()
    assert new.local_done and new.dials_due() == ["hapB"]
    link = new.connection_made("hapB")
    link.data_to_send()
    new.data_received(link, b"200\n")
    assert link.data_to_send() == b"\x00\x00"  # no table from an old process: ask hapB


def test_a_silent_handshake_is_dropped_after_5s_and_redialled(clock: task.Clock) -> None:
    a = make("hapA", clock, synced=True)
    assert a.dials_due() == ["hapB"]
    out = a.connection_made("hapB")  # the remote side never answers the hello
    inbound = a.incoming()  # and someone connects to us without saying anything
    assert a.next_deadline() <= clock.seconds() + 5
    clock.advance(5)
    a.tick()
    assert out.should_close and inbound.should_close
    assert out.close_reason == "no handshake within 5 s"
    a.connection_lost(out)
    a.connection_lost(inbound)
    assert a.dials_due() == ["hapB"]


def test_paused_link_reports_no_immediate_work(clock: task.Clock) -> None:
    a = make("hapA", clock, synced=True)
    a.tables[0].table.set_local(IP1, gpc0=1)
    link = a.incoming()
    link.paused = True  # the transport is full
    a.data_received(link, b"HAProxyS 2.1\nhapA\nhapB 1 1\n\x00\x00")
    assert link.data_to_send() == b"200\n"
    assert a.next_deadline() > clock.seconds()  # no busy loop while paused
    a.resume(link)
    assert b"\x0a\x85" in link.data_to_send()  # the teach goes on
