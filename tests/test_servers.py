"""The real-server fixtures themselves: nginx gateway, squid and tinyproxy on loopback.

These check that each server behaves as the job's network tests assume, with stdlib and
aiohttp clients, so that a failure there is the job's and not the setup's.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import shutil
import socket
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import pytest

from tests.conftest import API_KEY, customers
from tests.servers import (
    KOSCOM_HOST,
    REQUIRED_ENV,
    Gateway,
    JsonUpstream,
    Proxy,
    nginx_gateway,
    squid_proxy,
    tinyproxy,
)

pytest_plugins = ["tests.conftest_servers"]

SEARCH = "/v1/common/member/register/search"
TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest.fixture
def job_umask() -> Iterator[None]:
    """The umask an in-process run of the job leaves behind (077: its outputs hold CIs)."""
    previous = os.umask(0o077)
    yield
    os.umask(previous)


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes  # as sent, before any decoding

    def text(self) -> str:
        gzipped = self.headers["Content-Encoding"] == "gzip"
        return (gzip.decompress(self.body) if gzipped else self.body).decode()


def connect(gateway: Gateway) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(
        "localhost", gateway.port, context=gateway.ssl_context(), timeout=10
    )


def post(conn: http.client.HTTPSConnection, path: str = SEARCH) -> Answer:
    """POST {} with no Accept-Encoding header at all (http.client adds `identity` otherwise)."""
    conn.putrequest("POST", path, skip_accept_encoding=True)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", "2")
    conn.endheaders(b"{}")
    answer = conn.getresponse()
    return Answer(answer.status, answer.headers, answer.read())


@pytest.mark.parametrize("gzip_on", [True, False])
def test_gateway_gzips_json_for_a_client_that_did_not_ask(upstream: JsonUpstream, gzip_on):
    with nginx_gateway(upstream.url, gzip=gzip_on) as gateway:
        answer = post(connect(gateway))
    assert answer.status == 200
    assert answer.headers["Content-Encoding"] == ("gzip" if gzip_on else None)
    assert json.loads(answer.text()) == {"result": "member"}
    assert gateway.base_url == f"https://localhost:{gateway.port}/v1/common/member"
    assert 'ae="-"' in gateway.log_lines()[0]  # nginx saw no Accept-Encoding from the client
    assert upstream.seen[0].get("Accept-Encoding") == ("gzip" if gzip_on else None)


def test_gateway_answers_429_over_its_limit(upstream: JsonUpstream):
    with nginx_gateway(upstream.url, limit_rps=5) as gateway:
        conn = connect(gateway)
        statuses = [post(conn).status for _ in range(20)]
    assert statuses[0] == 200
    assert statuses.count(429) >= 10  # 20 requests in far less than the 2 s that 5 r/s allows
    assert gateway.statuses() == Counter(statuses)
    assert len(upstream.seen) == statuses.count(200)  # a 429 never reaches the API


def test_gateway_lets_a_burst_through(upstream: JsonUpstream):
    with nginx_gateway(upstream.url, limit_rps=1, burst=4) as gateway:
        conn = connect(gateway)
        statuses = [post(conn).status for _ in range(8)]
    assert statuses[:5] == [200] * 5
    assert statuses.count(429) >= 2


def test_gateway_closes_a_connection_after_keepalive_requests(upstream: JsonUpstream):
    with nginx_gateway(upstream.url, keepalive_requests=3) as gateway:
        conn = connect(gateway)
        answers = [post(conn) for _ in range(4)]  # http.client reconnects after a close
    closing = [a.headers["Connection"] for a in answers]
    assert closing == ["keep-alive", "keep-alive", "close", "keep-alive"]
    connections = [line.split(" conn=")[1].split()[0] for line in gateway.log_lines()]
    first, second = connections[0].split(":")[0], connections[3].split(":")[0]
    assert connections == [f"{first}:1", f"{first}:2", f"{first}:3", f"{second}:1"]


@pytest.mark.parametrize("gzip_on", [True, False])
def test_gateway_gives_its_own_502_page_while_the_api_is_down(upstream: JsonUpstream, gzip_on):
    with nginx_gateway(upstream.url, gzip=gzip_on) as gateway:
        conn = connect(gateway)
        assert post(conn).status == 200
        upstream.stop()
        down = post(conn)
        upstream.start()
        back = post(conn)  # at once: nginx does not hold the failure against the API
    assert down.status == 502
    assert down.headers.get_content_type() == "text/html"
    assert "502 Bad Gateway" in down.text()
    assert back.status == 200
    assert gateway.statuses() == Counter({200: 2, 502: 1})


def test_the_api_host_is_unknown_on_this_machine():
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(KOSCOM_HOST, 443)


async def test_squid_reaches_the_api_host_by_connect(koscom_squid: Proxy, upstream: JsonUpstream):
    with nginx_gateway(upstream.url, server_name=KOSCOM_HOST, gzip=True) as gateway:
        assert gateway.base_url.startswith(f"https://{KOSCOM_HOST}:")
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.post(
                f"{gateway.base_url}/register/search",
                json={},
                proxy=koscom_squid.url,
                ssl=gateway.ssl_context(),
            ) as answer,
        ):
            assert answer.status == 200
            assert await answer.json() == {"result": "member"}
    assert any(f"CONNECT {KOSCOM_HOST}:{gateway.port}" in x for x in koscom_squid.log_lines())


@pytest.mark.usefixtures("job_umask")  # squid, no longer root, must still read its hosts file
def test_squid_proxies_plain_http_to_the_api_host(upstream: JsonUpstream):
    url = f"http://{KOSCOM_HOST}:{upstream.port}/v1/common/member/register/search"
    with squid_proxy({KOSCOM_HOST: "127.0.0.1"}) as squid:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": squid.url}))
        with opener.open(url, timeout=10) as answer:
            assert json.load(answer) == {"result": "member"}
    assert any(f"GET {url}" in line for line in squid.log_lines())


def test_squid_refuses_a_name_it_was_not_given(upstream: JsonUpstream):
    # Refused by its rules before any lookup: it asks no resolver, here or elsewhere.
    with squid_proxy({"known.test": "127.0.0.1"}) as proxy:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(f"http://unknown.test:{upstream.port}/", timeout=10)
        with opener.open(f"http://known.test:{upstream.port}/", timeout=10) as answer:
            assert answer.status == 200
    assert refused.value.code == 403
    assert len(upstream.seen) == 1


async def test_the_sandbox_through_squid_and_a_gzipping_gateway(koscom_squid: Proxy, sandbox):
    """The real stack the job will meet: proxy by name, TLS, gzip unasked, the sandbox's API."""
    ci, name = customers(1)[0]
    envelope = {
        "partner": {"comId": "F0995", "srvId": "297"},
        "commonHeader": {"reqIdPlatform": "", "reqIdConsumer": "servers-smoke-1", "ci": ci},
        "body": {"korName": name},
    }
    with nginx_gateway(sandbox.base_url, server_name=KOSCOM_HOST, gzip=True) as gateway:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT, skip_auto_headers=["Accept-Encoding"]) as s,
            s.post(
                f"{gateway.base_url}/register/search",
                json=envelope,
                headers={"apikey": API_KEY},
                proxy=koscom_squid.url,
                ssl=gateway.ssl_context(),
            ) as answer,
        ):
            assert answer.status == 200
            assert answer.headers["Content-Encoding"] == "gzip"
            assert (await answer.json())["result"] in {"member", "nonMember"}
    assert sandbox.sandbox.stats.answered["register/search"] == 1


def test_tinyproxy_without_auth_passes_plain_http(tinyproxy_server: Proxy, upstream: JsonUpstream):
    proxies = {"http": tinyproxy_server.url}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies))
    with opener.open(f"{upstream.url}/register/search", timeout=10) as answer:
        assert json.load(answer) == {"result": "member"}


@pytest.mark.usefixtures("job_umask")
async def test_tinyproxy_asks_for_credentials(upstream: JsonUpstream):
    with (
        tinyproxy(basic_auth=("recon", "s3cret")) as proxy,
        nginx_gateway(upstream.url) as gateway,
    ):
        anonymous = proxy.url.replace("recon:s3cret@", "")
        assert anonymous != proxy.url
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            url, tls = f"{gateway.base_url}/register/search", gateway.ssl_context()
            with pytest.raises(aiohttp.ClientHttpProxyError) as refused:
                await session.post(url, json={}, proxy=anonymous, ssl=tls)
            assert refused.value.status == 407
            async with session.post(url, json={}, proxy=proxy.url, ssl=tls) as answer:
                assert answer.status == 200
                assert await answer.json() == {"result": "member"}
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": anonymous}))
        with pytest.raises(urllib.error.HTTPError) as plain:
            opener.open(f"{upstream.url}/register/search", timeout=10)
        assert plain.value.code == 407
    assert gateway.statuses() == Counter({200: 1})  # the refused CONNECT never got there


def test_a_missing_server_skips_with_how_to_install_it(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *_, **__: None)
    monkeypatch.delenv(REQUIRED_ENV, raising=False)
    hint = "nginx is not installed: run scripts/ensure-network-servers.sh as root"
    with pytest.raises(pytest.skip.Exception, match=hint):
        nginx_gateway("http://127.0.0.1:9/").__enter__()
    monkeypatch.setenv(REQUIRED_ENV, "1")  # where the servers must be there, it is a failure
    with pytest.raises(pytest.fail.Exception, match="squid is not installed"):
        squid_proxy({}).__enter__()


def test_a_server_that_does_not_start_skips_with_its_own_words(monkeypatch):
    monkeypatch.delenv(REQUIRED_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"tinyproxy did not start \(exited") as skip:
        tinyproxy(basic_auth=("two words", "secret")).__enter__()  # a line it cannot parse
    assert "Syntax error" in str(skip.value)
