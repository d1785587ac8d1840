"""`python -m bench.profiled OUT.prof <streamproc arguments>`: a `streamproc` process under cProfile,
its stats written to OUT.prof when it exits (for the call counts of `bench.counts`)."""

from __future__ import annotations

import atexit
import cProfile
import sys


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    profiler = cProfile.Profile()

    def dump() -> None:
        profiler.disable()
        profiler.dump_stats(out)

    atexit.register(dump)
    from streamproc.cli import main as cli_main

    profiler.enable()
    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
