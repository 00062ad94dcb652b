"""The ``minilb`` console script: a drop-in for the ``haproxy`` binary (see `minilb.cli`)."""

from __future__ import annotations

import os
import sys


def main() -> int:
    from minilb.cli import haproxy_main

    try:
        return haproxy_main()
    except BrokenPipeError:  # output piped into `head`: stop quietly, as haproxy does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
