"""The TLS version, ticket and cipher-order words of bind, server, default-server and
peers lines, read and checked as haproxy 2.6.12 does (its messages quoted in comments)."""

from __future__ import annotations

from minilb.config.model import TLSOptions
from minilb.config.options import tls_line_problems, tls_versions
from tests.support.config import DEFAULTS, load

FIX = "Use only 'ssl-min-ver' and 'ssl-max-ver' to fix."


def test_words_become_tls_options(tmp_path):
    config, lines = load(
        tmp_path,
        DEFAULTS
        + """\
        frontend f
            bind :8443 ssl crt /a.pem no-tlsv13 no-tls-tickets prefer-client-ciphers
            bind :8444 ssl crt /a.pem force-tlsv12
            default_backend b
        backend b
            default-server no-tls-tickets force-tlsv13
            server s1 127.0.0.1:1 ssl verify none
            server s2 127.0.0.1:2 ssl verify none tls-tickets ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2
            server s3 127.0.0.1:3 ssl verify none no-sslv3 no-tlsv10
        """,
    )
    b1, b2 = (b.tls for b in config.proxy("f").binds)
    assert (b1.no_versions, b1.tls_tickets, b1.prefer_client_ciphers) == (("TLSv1.3",), False, True)
    assert (b2.ssl_min_ver, b2.ssl_max_ver) == ("TLSv1.2", "TLSv1.2")
    s1, s2, s3 = (s.tls for s in config.proxy("b").servers)
    assert (s1.tls_tickets, s1.ssl_min_ver, s1.ssl_max_ver) == (False, "TLSv1.3", "TLSv1.3")
    assert (s2.tls_tickets, s2.ssl_min_ver, s2.ssl_max_ver) == (True, "TLSv1.2", "TLSv1.2")
    # s3 inherits force-tlsv13: its no-* words are then ignored, as haproxy warns
    assert s3.no_versions == ("SSLv3", "TLSv1.0")
    assert lines == [f"WARNING parsing [t.cfg:14] : no-sslv3/no-tlsv1x are ignored for server 'b/s3'. {FIX}"]


def test_no_version_words_are_refused_on_default_server(tmp_path):
    # haproxy: [d.cfg:7] : 'no-tlsv13' option is not accepted in default-server sections
    _, lines = load(tmp_path, DEFAULTS + "backend b\n    default-server no-tlsv13\n")
    assert lines == [
        "ALERT parsing [t.cfg:7] : 'default-server' : 'no-tlsv13' option is not accepted in default-server sections"
    ]


def test_disabled_versions_and_holes_as_haproxy(tmp_path):
    _, lines = load(
        tmp_path,
        DEFAULTS
        + """\
        frontend f
            bind :8443 ssl crt /a.pem no-tlsv12 no-tlsv13
            bind :8444 ssl crt /a.pem ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.2
            default_backend b
        backend b
            server s1 127.0.0.1:1 ssl verify none no-tlsv11
            server s2 127.0.0.1:2 ssl verify none no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13
        """,
    )
    # haproxy: all SSL/TLS versions are disabled for bind ':8443' at [t.cfg:7].
    # haproxy: SSL/TLS versions range not contiguous for server 's1'. Hole find for TLSv1.1. ...
    assert lines == [
        "ALERT parsing [t.cfg:7] : all SSL/TLS versions are disabled for bind ':8443'.",
        "ALERT parsing [t.cfg:8] : all SSL/TLS versions are disabled for bind ':8444'.",
        "WARNING parsing [t.cfg:11] : SSL/TLS versions range not contiguous for server 'b/s1'. "
        f"Hole find for TLSv1.1. {FIX}",
        "ALERT parsing [t.cfg:12] : all SSL/TLS versions are disabled for server 'b/s2'.",
    ]


def test_version_ranges():
    on = TLSOptions(enabled=True)
    assert tls_versions(on, bind=True) == ("TLSv1.2", "TLSv1.3")  # haproxy's bind default
    assert tls_versions(on, bind=False) == ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
    no11 = TLSOptions(enabled=True, no_versions=("TLSv1.1",))
    assert tls_versions(no11, bind=False) == ("TLSv1.0", "TLSv1.2", "TLSv1.3")
    assert tls_versions(no11, bind=True) == ("TLSv1.2", "TLSv1.3")
    ranged = TLSOptions(enabled=True, ssl_min_ver="TLSv1.1", no_versions=("TLSv1.2",))
    assert tls_versions(ranged, bind=True) == ("TLSv1.1", "TLSv1.2", "TLSv1.3")
    assert tls_line_problems(ranged, True, "bind 'x'") == (
        [],
        [f"no-sslv3/no-tlsv1x are ignored for bind 'x'. {FIX}"],
    )
    assert tls_line_problems(TLSOptions(no_versions=("TLSv1.2", "TLSv1.3")), True, "bind 'x'") == ([], [])


def test_bind_verify_needs_a_ca_file(tmp_path):
    _, lines = load(
        tmp_path,
        DEFAULTS
        + """\
        frontend f
            bind :8443 ssl crt /a.pem verify required
            bind :8444 ssl crt /a.pem verify optional ca-file /ca.pem
            bind :8445 ssl crt /a.pem ca-file /ca.pem
        """,
    )
    # haproxy: Proxy 'f': verify is enabled but no CA file specified for bind ':8443' at [t.cfg:7].
    assert lines == ["ALERT parsing [t.cfg:7] : verify is enabled but no CA file specified for bind ':8443'."]
