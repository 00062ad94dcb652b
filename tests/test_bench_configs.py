"""The generated haproxy.cfg and nginx.conf of the benchmark harness, checked by their readers."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import requires_haproxy
from tests.support.bench import configs


def test_every_scenario_has_a_unique_name_and_the_naive_proxy_skips_rule_scenarios():
    names = [scenario.name for scenario in configs.SCENARIOS]
    assert len(names) == len(set(names))
    with_rules = {scenario.name for scenario in configs.SCENARIOS if scenario.frontend_lines}
    assert with_rules == {scenario.name for scenario in configs.SCENARIOS if scenario.needs_rules}


def test_deny_scenario_expects_429_and_no_origin_traffic():
    deny = configs.SCENARIOS_BY_NAME["deny"]
    assert deny.expected_status == 429
    assert not deny.expects_origin
    assert any("deny_status 429" in line for line in deny.frontend_lines)


def test_haproxy_config_places_ports_rules_and_system_globals():
    text = configs.haproxy_config(
        configs.SCENARIOS_BY_NAME["keys65k"],
        listen_port=18080,
        origin_port=18081,
        global_lines=("nbthread 1",),
    )
    lines = [line.strip() for line in text.splitlines()]
    assert "nbthread 1" in lines
    assert lines.index("global") < lines.index("nbthread 1") < lines.index("defaults")
    assert "bind 127.0.0.1:18080" in lines
    assert "server origin 127.0.0.1:18081" in lines
    assert "http-request track-sc0 req.hdr(x-forwarded-for)" in lines
    assert lines.index("http-request track-sc0 req.hdr(x-forwarded-for)") < lines.index(
        "default_backend be_origin"
    )


@requires_haproxy
@pytest.mark.parametrize("scenario", configs.SCENARIOS, ids=lambda scenario: scenario.name)
def test_haproxy_accepts_every_generated_config(tmp_path, scenario):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        configs.haproxy_config(scenario, listen_port=1, origin_port=2, global_lines=("nbthread 1",))
    )
    checked = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=10)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_nginx_config_keeps_everything_inside_the_prefix_and_on_loopback():
    text = configs.nginx_config(prefix="/tmp/bench-x", port=18081)
    assert "listen 127.0.0.1:18081;" in text
    assert "daemon off;" in text and "access_log off;" in text
    assert "pid /tmp/bench-x/nginx.pid;" in text
    assert '"minilb benchmark origin: a small fixed body\\n"' in text


@pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx")
def test_nginx_accepts_the_generated_config(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(configs.nginx_config(prefix=str(tmp_path), port=1))
    checked = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert checked.returncode == 0, checked.stderr


def test_stub_status_request_count():
    page = "Active connections: 3 \nserver accepts handled requests\n 10 10 12345 \nReading: 0 Writing: 1 Waiting: 2 \n"
    assert configs.parse_stub_status_requests(page) == 12345
    with pytest.raises(ValueError):
        configs.parse_stub_status_requests("<html>404</html>")


@pytest.mark.parametrize("scenario", configs.SCENARIOS, ids=lambda scenario: scenario.name)
def test_minilb_accepts_every_generated_config_without_warnings(tmp_path, scenario):
    from minilb.check import check_config

    cfg = tmp_path / "minilb.cfg"
    cfg.write_text(configs.haproxy_config(scenario, listen_port=1, origin_port=2))
    result = check_config([str(cfg)])
    assert result.ok and result.diagnostics == (), [d.message for d in result.diagnostics]
