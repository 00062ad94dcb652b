"""The HTTP benchmark harness of minilb: pure parts (wrk output, statistics, generated configs, report
rendering) and the process plumbing that `scripts/bench_http.py` drives.

Modules: `wrk` (command lines and output parsing), `stats` (medians, spreads, ratios), `configs`
(scenarios, haproxy.cfg and nginx.conf text), `procs` (starting, pinning, sampling and stopping
processes), `report` (BENCHMARKS.md blocks and tables), `runner` (the interleaved run itself).
"""
