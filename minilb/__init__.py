"""minilb: an HAProxy-compatible load balancer on Twisted."""

__version__ = "0.1.0"
#: The HAProxy version whose configuration language and peers protocol minilb follows.
HAPROXY_COMPAT_VERSION = "2.6"
