"""Load and latency benchmarks: ``python -m bench [--quick] [--json out.json] [--only name,...]``.

One run starts one embedded Valkey (append-only, as in production), shared by every scenario and flushed between
them. Each server under test runs as its own OS process (``bench.serve``), and the load comes from other processes
(``bench.load``, over the lean client of ``bench.wsclient``), so the server's CPU is measured alone with psutil.

Scenarios, one module each: ``baseline`` (a bare endpoint: the ceiling of the stack), ``ingest``, ``alert``,
``watcher``, ``connections`` and ``scaleout``. Results are one JSON document with stable keys; see
docs/performance.md.
"""
