"""Real servers for the integration tests: redis-server and OpenSSH sshd.

``tests/conftest.py`` registers the fixtures of ``redis_server`` and ``sshd`` as
plugins; the classes can also be used directly (benchmarks, the demo's tests).
"""
