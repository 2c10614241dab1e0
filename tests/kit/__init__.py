"""The test kit: what every test folder shares (stores, ports, the served app, server processes).

Tests import its modules by name (``from kit.live import serve``): pytest puts ``tests/`` on the path
through the root conftest. Feature kits (authkit, hookkit, mllpkit) build on it.
"""
