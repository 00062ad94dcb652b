"""minilb.master: the master process (sockets, worker generations, reload, master CLI).

`main(argv)` is the ``python -m minilb.master`` entry point; `minilb.master.service`
holds `MasterService`.  Importing this package imports nothing from Twisted (the
generations state machine and the control values are pure).
"""


def main(argv=None) -> int:
    from minilb.master.run import main as run_main

    return run_main(argv)
