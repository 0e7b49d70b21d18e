"""Fixtures over tests/servers.py, as a plugin: `pytest_plugins = ["tests.conftest_servers"]`.

A plugin module rather than tests/conftest.py, so that only the modules that start real
servers load it; import helpers from tests.servers, never from here (pytest must import
this module itself to rewrite its asserts).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import KOSCOM_HOST, JsonUpstream, Proxy, json_upstream, squid_proxy, tinyproxy


@pytest.fixture
def koscom_squid() -> Iterator[Proxy]:
    """squid that alone knows the API's test host name (api.koscom.test → 127.0.0.1)."""
    with squid_proxy({KOSCOM_HOST: "127.0.0.1"}) as proxy:
        yield proxy


@pytest.fixture
def tinyproxy_server() -> Iterator[Proxy]:
    """tinyproxy without auth: CONNECT to any loopback port, plain HTTP too."""
    with tinyproxy() as proxy:
        yield proxy


@pytest.fixture
def upstream() -> Iterator[JsonUpstream]:
    """A stand-in JSON API to put nginx in front of; stop() and start() it for an outage."""
    with json_upstream() as api:
        yield api
