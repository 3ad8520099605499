"""Fixtures shared by every test: real redis-server and sshd processes (tests/support)."""

pytest_plugins = ["support.redis_server", "support.sshd"]
