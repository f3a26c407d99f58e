"""Loopback fakes of the providers' HTTP APIs (Twilio REST, Telegram Bot API).

Test infrastructure, not product code: the tests and the benchmarks (bench/) import them;
no palaute package does, and they are not installed with palaute. They answer with the
real payloads kept in tests/data/.
"""
