"""``python -m minilb.master -f CFG ...``: see `minilb.master.run`."""

import sys

from minilb.master.run import main

if __name__ == "__main__":
    sys.exit(main())
