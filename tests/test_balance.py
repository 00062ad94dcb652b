"""Balancing algorithms: distribution by weight, backups, maxconn, hash stability."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from minilb.config.model import Address, Balance, Server
from minilb.errors import BUILTIN
from minilb.http.balance import (
    ServerState,
    domain_only,
    make_balancer,
    sdbm_hash,
    uri_key,
    url_param_value,
)
from minilb.rules.txn import Session, Txn


def servers(*specs: tuple) -> list[ServerState]:
    """specs: (name, weight[, backup[, maxconn]])."""
    out = []
    for i, spec in enumerate(specs, 1):
        name, weight = spec[0], spec[1]
        backup = spec[2] if len(spec) > 2 else False
        maxconn = spec[3] if len(spec) > 3 else None
        model = Server(
            BUILTIN,
            name,
            Address("ipv4", "127.0.0.1", 8000 + i),
            weight=weight,
            backup=backup,
            maxconn=maxconn,
            id=i,
        )
        out.append(ServerState.from_model(model))
    return out


def txn(uri: bytes = b"/", headers=()) -> Txn:
    path, _, query = uri.decode().partition("?")
    return Txn(Session(src="10.0.0.1"), "GET", uri, path, query or None, "1.1", [list(h) for h in headers])


def picks(balancer, n, **kw):
    return Counter(balancer.pick(kw.get("txn"), kw.get("src", "10.0.0.1")).name for _ in range(n))


def test_from_model_copies_the_server_line():
    model = Server(BUILTIN, "s1", Address("ipv4", "10.1.1.1", 80), weight=7, backup=True, maxconn=3, id=4)
    s = ServerState.from_model(model)
    assert (s.name, s.weight, s.backup, s.maxconn, s.id, s.up, s.cur_conns) == ("s1", 7, True, 3, 4, True, 0)
    assert s.model is model and s.address.port == 80
    disabled = ServerState.from_model(Server(BUILTIN, "s2", None, disabled=True), position=2)
    assert disabled.up is False and disabled.id == 2


def test_roundrobin_follows_weights_smoothly():
    farm = servers(("a", 3), ("b", 1))
    b = make_balancer(Balance("roundrobin"), farm, random.Random(1))
    seq = [b.pick(None, "").name for _ in range(8)]
    assert Counter(seq) == {"a": 6, "b": 2}
    # smooth: b is never starved for more than 3 picks in a row
    assert "b" in seq[:4] and "b" in seq[4:]


def test_roundrobin_skips_down_server_and_returns_none_when_all_down():
    farm = servers(("a", 1), ("b", 1), ("c", 1))
    b = make_balancer(Balance("roundrobin"), farm, random.Random(1))
    farm[1].up = False
    assert set(picks(b, 10)) == {"a", "c"}
    for s in farm:
        s.up = False
    assert b.pick(None, "") is None


def test_static_rr_and_weight_zero():
    farm = servers(("a", 2), ("b", 0), ("c", 1))
    b = make_balancer(Balance("static-rr"), farm, random.Random(1))
    assert picks(b, 30) == {"a": 20, "c": 10}


def test_backup_used_only_when_no_active_is_up():
    farm = servers(("a", 1), ("bk1", 1, True), ("bk2", 1, True))
    b = make_balancer(Balance("roundrobin"), farm, random.Random(1))
    assert picks(b, 4) == {"a": 4}
    farm[0].up = False
    assert picks(b, 4) == {"bk1": 4}  # the first backup only
    all_b = make_balancer(Balance("roundrobin"), farm, random.Random(1), allbackups=True)
    assert picks(all_b, 4) == {"bk1": 2, "bk2": 2}


def test_maxconn_reached_server_is_skipped_and_exclude():
    farm = servers(("a", 1, False, 1), ("b", 1))
    b = make_balancer(Balance("roundrobin"), farm, random.Random(1))
    farm[0].cur_conns = 1
    assert picks(b, 5) == {"b": 5}
    assert b.pick(None, "", exclude=frozenset({"b"})) is None
    farm[0].cur_conns = 0
    assert b.pick(None, "", exclude=frozenset({"b"})).name == "a"


def test_leastconn_prefers_lowest_load_per_weight_and_rotates_ties():
    farm = servers(("a", 1), ("b", 1), ("c", 2))
    b = make_balancer(Balance("leastconn"), farm, random.Random(1))
    farm[0].cur_conns, farm[1].cur_conns, farm[2].cur_conns = 3, 1, 3
    assert b.pick(None, "").name == "b"  # b (1+1)/1 ties c (3+1)/2: lowest id first
    farm[1].cur_conns = 5
    assert b.pick(None, "").name == "c"
    for s in farm:
        s.cur_conns = 0
    farm[2].weight = 1
    assert {b.pick(None, "").name for _ in range(3)} == {"a", "b", "c"}


def test_first_fills_lowest_id_up_to_maxconn():
    farm = servers(("a", 1, False, 2), ("b", 1, False, 2), ("c", 1, False, 2))
    b = make_balancer(Balance("first"), farm, random.Random(1))
    got = []
    for _ in range(5):
        s = b.pick(None, "")
        s.cur_conns += 1
        got.append(s.name)
    assert got == ["a", "a", "b", "b", "c"]
    farm[0].cur_conns = 0
    assert b.pick(None, "").name == "a"


def test_source_hash_is_stable_and_follows_weights():
    farm = servers(("a", 1), ("b", 3))
    b = make_balancer(Balance("source"), farm, random.Random(1))
    first = {f"10.0.{i}.{j}": b.pick(None, f"10.0.{i}.{j}").name for i in range(20) for j in range(50)}
    again = {ip: b.pick(None, ip).name for ip in first}
    assert first == again
    counts = Counter(first.values())
    assert 0.15 < counts["a"] / 1000 < 0.35
    # map-based: with a server down, the remaining one takes every client
    farm[0].up = False
    assert {b.pick(None, ip).name for ip in first} == {"b"}


def test_consistent_hash_moves_only_the_down_servers_keys():
    farm = servers(("a", 1), ("b", 1), ("c", 1))
    b = make_balancer(Balance("source"), farm, random.Random(1), hash_type=("consistent",))
    ips = [f"192.168.{i}.{j}" for i in range(10) for j in range(40)]
    before = {ip: b.pick(None, ip).name for ip in ips}
    assert set(before.values()) == {"a", "b", "c"}
    farm[1].up = False
    after = {ip: b.pick(None, ip).name for ip in ips}
    for ip in ips:
        if before[ip] != "b":
            assert after[ip] == before[ip]
        else:
            assert after[ip] in ("a", "c")


def test_uri_hash_options():
    assert uri_key(b"/a/b/c?x=1") == b"/a/b/c"
    assert uri_key(b"/a/b/c?x=1", whole=True) == b"/a/b/c?x=1"
    assert uri_key(b"/a/b/c", depth=2) == b"/a/b"
    assert uri_key(b"/abcdef", length=3) == b"/ab"
    farm = servers(("a", 1), ("b", 1), ("c", 1))
    b = make_balancer(Balance("uri", options=("depth", "1")), farm, random.Random(1))
    same = {b.pick(txn(f"/img/{i}.png?v={i}".encode()), "").name for i in range(30)}
    assert len(same) == 1
    spread = {b.pick(txn(f"/p{i}/x".encode()), "").name for i in range(60)}
    assert spread == {"a", "b", "c"}


def test_url_param_hash_and_round_robin_fallback():
    assert url_param_value("a=1&user=bob&c=", "user") == "bob"
    assert url_param_value("a=1&c=", "c") is None
    assert url_param_value(None, "c") is None
    farm = servers(("a", 1), ("b", 1))
    b = make_balancer(Balance("url_param", arg="user"), farm, random.Random(1))
    assert len({b.pick(txn(f"/x?z={i}&user=alice".encode()), "").name for i in range(20)}) == 1
    assert picks(b, 10, txn=txn(b"/x?z=1")) == {"a": 5, "b": 5}


def test_hdr_hash_case_insensitive_and_domain_only():
    assert domain_only(b"haproxy.1wt.eu") == b"1wt"
    assert domain_only(b"www.example.com:8080") == b"example"
    farm = servers(("a", 1), ("b", 1), ("c", 1))
    b = make_balancer(Balance("hdr(Host)", options=("use_domain_only",)), farm, random.Random(1))
    names = {b.pick(txn(b"/", [(b"host", f"h{i}.example.com".encode())]), "").name for i in range(20)}
    assert len(names) == 1
    b2 = make_balancer(Balance("hdr", arg="X-User"), farm, random.Random(1))
    keyed = {b2.pick(txn(b"/", [(b"X-USER", b"carol")]), "").name for _ in range(10)}
    assert len(keyed) == 1
    assert picks(b2, 9, txn=txn(b"/")) == {"a": 3, "b": 3, "c": 3}


def test_random_draws_respect_weights_and_prefer_least_loaded():
    farm = servers(("a", 1), ("b", 4))
    b = make_balancer(Balance("random", arg="1"), farm, random.Random(42))
    counts = picks(b, 2000)
    assert 0.12 < counts["a"] / 2000 < 0.28
    # two draws: a heavily loaded server is avoided whenever the other is drawn
    farm2 = servers(("a", 1), ("b", 1))
    farm2[0].cur_conns = 100
    b2 = make_balancer(Balance("random(2)"), farm2, random.Random(7))
    counts2 = picks(b2, 1000)
    assert counts2["b"] > 700  # only both-draws-on-a picks a (~25%)


def test_random_is_reproducible_with_the_same_seed():
    farm = servers(("a", 1), ("b", 1), ("c", 1))
    b1 = make_balancer(Balance("random"), farm, random.Random(3))
    b2 = make_balancer(Balance("random"), farm, random.Random(3))
    assert [b1.pick(None, "").name for _ in range(50)] == [b2.pick(None, "").name for _ in range(50)]


def test_sdbm_hash_is_stable():
    assert sdbm_hash(b"") == 0
    assert sdbm_hash(b"a") == 97
    assert sdbm_hash(b"ab") == (98 + (97 << 6) + (97 << 16) - 97) & 0xFFFFFFFF


@given(st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=8))
def test_roundrobin_gives_each_server_exactly_its_weight_per_cycle(weights):
    farm = servers(*[(f"s{i}", w) for i, w in enumerate(weights)])
    b = make_balancer(Balance("roundrobin"), farm, random.Random(0))
    cycle = sum(weights)
    for _ in range(2):
        assert picks(b, cycle) == {f"s{i}": w for i, w in enumerate(weights)}


@given(st.lists(st.integers(min_value=1, max_value=5), min_size=2, max_size=6), st.data())
def test_map_based_hash_only_ever_picks_up_servers(weights, data):
    farm = servers(*[(f"s{i}", w) for i, w in enumerate(weights)])
    down = data.draw(st.sets(st.integers(min_value=0, max_value=len(weights) - 1), max_size=len(weights) - 1))
    for i in down:
        farm[i].up = False
    b = make_balancer(Balance("source"), farm, random.Random(0))
    ip = data.draw(st.ip_addresses(v=4)).exploded
    chosen = b.pick(None, ip)
    assert chosen is not None and chosen.up
    assert b.pick(None, ip) is chosen
