"""`python -m bench`: the end-to-end benchmarks (`bench/e2e.py`)."""

from bench.e2e import main

raise SystemExit(main())
