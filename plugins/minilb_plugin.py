"""twistd plugin: ``twistd -n minilb -c FILE [-c FILE ...] [-L NAME] [--check]``.

Installed as ``twisted/plugins/minilb_plugin.py`` by ``pip install .``; the options
and the service live in `minilb.cli`.
"""

from twisted.application.service import ServiceMaker

minilb = ServiceMaker(
    "minilb",
    "minilb.cli",
    "HAProxy 2.6 compatible HTTP/TCP load balancer (reads haproxy.cfg)",
    "minilb",
)
