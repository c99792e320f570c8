"""The long-haul table: throughput across an emulated wide-area link (`make bench-long`).

See benchmarks/long_haul/bench.py for what runs and how; `python -m benchmarks.long_haul`.
"""
