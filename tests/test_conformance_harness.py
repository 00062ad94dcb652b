"""The conformance harness's own comparison: what it masks and what it must not."""

from __future__ import annotations

from tests.support.conformance import (
    EXP_TOLERANCE_MS,
    Observation,
    PortPool,
    differences,
    parse_show_table,
    render,
)

HAPROXY_DUMP = (
    "# table: fe, type: ip, size:100, used:2\n"
    "0x55f2857873f0: key=127.0.0.2 use=0 exp=9998 gpc0=1 http_req_rate(1000)=5\n"
    "0x7f99840466c0: key=127.0.0.3 use=1 exp=4000 gpc0=0 http_req_rate(1000)=1\n\n"
)


def minilb_dump() -> str:
    """The same table with minilb's pointers."""
    return HAPROXY_DUMP.replace("0x55f2857873f0", "0x5bc9d0000000").replace(
        "0x7f99840466c0", "0x5bc9d0000070"
    )


def table_step(haproxy: str, minilb: str) -> list[str]:
    return differences(
        [Observation(3, "cli show table fe", haproxy)], [Observation(3, "cli show table fe", minilb)]
    )


def test_pointers_are_masked_and_exp_compared_within_the_tolerance():
    assert (
        parse_show_table(HAPROXY_DUMP).entries[0] == "key=127.0.0.2 use=0 exp=* gpc0=1 http_req_rate(1000)=5"
    )
    assert table_step(HAPROXY_DUMP, minilb_dump()) == []
    near = HAPROXY_DUMP.replace("exp=4000", f"exp={4000 + EXP_TOLERANCE_MS}")
    assert table_step(HAPROXY_DUMP, near) == []
    far = HAPROXY_DUMP.replace("exp=4000", f"exp={4001 + EXP_TOLERANCE_MS}")
    assert table_step(HAPROXY_DUMP, far) == [
        f"step 3 cli show table fe: key=127.0.0.3 exp=4000 (haproxy) exp={4001 + EXP_TOLERANCE_MS} (minilb)"
    ]


def test_every_other_difference_in_a_table_is_reported():
    for changed in (
        HAPROXY_DUMP.replace("gpc0=1", "gpc0=2"),
        HAPROXY_DUMP.replace("use=1", "use=0"),
        HAPROXY_DUMP.replace("used:2", "used:3"),
        HAPROXY_DUMP.replace("(1000)=1", "(1000)=0"),
        HAPROXY_DUMP.replace("127.0.0.2", "127.0.0.4"),
        # the same entries in another order
        "".join(HAPROXY_DUMP.splitlines(keepends=True)[i] for i in (0, 2, 1, 3)),
    ):
        assert len(table_step(HAPROXY_DUMP, changed)) == 1, changed


def test_statuses_and_connection_outcomes_are_compared_exactly():
    h = [Observation(0, "127.0.0.2 GET / #1", 200), Observation(0, "127.0.0.2 GET / #2", 429)]
    m = [Observation(0, "127.0.0.2 GET / #1", 200), Observation(0, "127.0.0.2 GET / #2", "closed")]
    assert differences(h, m) == ["step 0 127.0.0.2 GET / #2: haproxy 429, minilb 'closed'"]
    assert differences(h, h[:1]) == ["2 observations from haproxy, 1 from minilb"]


def test_each_placeholder_gets_one_port_and_sides_never_share_one():
    pool = PortPool()
    try:
        text_a, ports_a = render("bind 127.0.0.1:@FE@\nserver s 127.0.0.1:@ORIGIN@\nbind :@FE@\n", pool)
        _, ports_b = render("bind 127.0.0.1:@FE@\nserver s 127.0.0.1:@ORIGIN@\n", pool)
    finally:
        pool.release()
    assert text_a.splitlines()[0] == f"bind 127.0.0.1:{ports_a['FE']}"
    assert text_a.splitlines()[2] == f"bind :{ports_a['FE']}"
    assert len({*ports_a.values(), *ports_b.values()}) == 4
