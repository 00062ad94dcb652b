"""The naive Twisted reverse proxy the benchmarks compare minilb with: `twisted.web.proxy`'s
ReverseProxyResource in a plain `Site`, as a tutorial would write it (one new origin connection per
request, whole bodies buffered). It has no rules, so it only takes part in the rule-free scenarios.

    python scripts/naive_proxy.py --port 8080 --origin-port 8081
"""

from __future__ import annotations

import argparse

from twisted.internet import reactor
from twisted.web.proxy import ReverseProxyResource
from twisted.web.server import Site


def build_site(origin_host: str, origin_port: int) -> Site:
    site = Site(ReverseProxyResource(origin_host, origin_port, b""))
    site.noisy = False
    return site


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--origin-host", default="127.0.0.1")
    parser.add_argument("--origin-port", type=int, required=True)
    args = parser.parse_args()
    reactor.listenTCP(
        args.port, build_site(args.origin_host, args.origin_port), backlog=1024, interface=args.host
    )
    reactor.run()  # the reactor stops on SIGTERM and SIGINT


if __name__ == "__main__":
    main()
