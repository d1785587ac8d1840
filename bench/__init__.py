"""Benchmarks, run from a checkout (`make bench`, `make bench-quick`, `python -m bench.senders`).

Outside the package and the image: they drive real processes against the vendor fakes of
`tests/fakes`, and report figures; they never assert. `bench/results*.json` (ignored by git) keeps
the last run's figures beside the previous one's.
"""
