"""Benchmarks that print figures; run each from the repository root as a module,
e.g. ``.venv/bin/python -m bench.webhook_sms --help``. They import palaute's packages and
the loopback provider fakes (``fakes/``), never the tests."""
