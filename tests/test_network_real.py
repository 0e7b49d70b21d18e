"""What a user notices on a real network: the job through nginx, squid and tinyproxy on loopback.

The real CLI, in-process, against the sandbox behind real servers that nobody here wrote:
nginx as the API's TLS gateway (its own CA, gzip unasked, keepalive_requests, limit_req,
its own 502 pages), squid as the egress proxy that alone knows the API's name, tinyproxy
asking for credentials. Each test skips with the reason when its server cannot be had
(scripts/ensure-network-servers.sh installs them).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import orjson
import pytest

from batch.http.classify import read_answer
from batch.http.transport import HttpTransport, TransportSettings
from jobs.api.answers import read_consent
from jobs.api.models import Customer, Partner, envelope
from jobs.sandbox.server import Sandbox, SandboxConfig, SandboxThread, truth
from tests import servers
from tests.conftest import API_KEY, CliResult, customers, job, write_csv
from tests.servers import KOSCOM_HOST, Gateway, nginx_gateway, squid_proxy, tinyproxy
from tests.test_end_to_end import check_truth

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")
PASSWORD = "pr0xy-s3cret-9f2c"  # a throwaway for tinyproxy's BasicAuth


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test says which proxy it wants; one set in the shell running the tests takes no part."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def people(tmp_path: Path) -> tuple[Path, list[str]]:
    rows = customers(40, salt="net")
    return write_csv(tmp_path / "in.csv", rows), [ci for ci, _ in rows]


def log_events(result: CliResult, event: str) -> list[dict[str, Any]]:
    """The job's JSON log lines on stderr with this event name."""
    lines = (json.loads(line) for line in result.stderr.splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("event") == event]


def field(pattern: str, line: str) -> tuple[str, ...]:
    """The groups of `pattern` in one access-log line."""
    found = re.search(pattern, line)
    assert found, f"{pattern!r} not in {line!r}"
    return found.groups()


def connection_uses(gateway: Gateway) -> dict[str, int]:
    """nginx's client connections, each with how many requests it carried."""
    uses: dict[str, int] = {}
    for line in gateway.log_lines():
        connection, count = field(r" conn=(\d+):(\d+) ", line)
        uses[connection] = max(uses.get(connection, 0), int(count))
    return uses


# --- through nginx as the API's TLS gateway ---------------------------------------------------


def test_a_gateway_that_gzips_gives_the_same_outputs(sandbox, people, tmp_path: Path) -> None:
    path, cis = people
    with nginx_gateway(sandbox.base_url, gzip=True) as gateway:
        result = job(gateway, path, tmp_path / "out", **gateway.env())
    assert result.exit_code == 0, result.stderr
    check_truth(result, cis)
    # What the job asks for: aiohttp names gzip and deflate (nginx gzips either way here).
    encodings = {field(r' ae="([^"]*)"', line)[0] for line in gateway.log_lines()}
    assert len(encodings) == 1
    assert "gzip" in encodings.pop()


async def test_a_gzipped_answer_is_read_even_when_identity_was_asked(
    sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 9110 lets a gateway gzip what nobody asked to be gzipped; the answer still reads."""
    with nginx_gateway(sandbox.base_url, gzip=True) as gateway:
        monkeypatch.setenv("SSL_CERT_FILE", str(gateway.ca_file))
        settings = TransportSettings(
            base_url=gateway.base_url,
            headers={"apikey": API_KEY, "Accept-Encoding": "identity"},
            connections=1,
        )
        ci, name = customers(1, salt="net")[0]  # one with two linked accounts
        request = envelope(Partner("F0995", "297"), Customer(ci, name), "gzip-identity-1")
        async with HttpTransport(settings) as transport:
            answer = await transport.post("consent/search", orjson.dumps(request))
    lines = gateway.log_lines()  # whole once nginx has stopped
    assert answer.status == 200
    assert answer.headers["content-encoding"] == "gzip"  # it came gzipped...
    consent = read_answer(answer, read_consent)
    numbers = [account.vt_acc_no for account in consent.accounts]
    assert numbers == [number for _, number, _ in truth(ci).accounts]  # ...and reads
    assert ' ae="identity" ' in lines[0]


def test_a_gateway_that_closes_connections_often_costs_no_retry(
    sandbox, people, tmp_path: Path
) -> None:
    path, cis = people
    with nginx_gateway(sandbox.base_url, keepalive_requests=5) as gateway:
        result = job(gateway, path, tmp_path / "out", **gateway.env())
    assert result.exit_code == 0, result.stderr
    check_truth(result, cis)
    summary = result.summary()
    assert (summary["requests"], summary["retries"]) == (80, 0)
    uses = connection_uses(gateway)
    assert max(uses.values()) == 5  # nginx did close connections after 5 requests...
    assert len(uses) >= 80 // 5  # ...so the 80 requests needed at least 16 connections
    assert sum(gateway.statuses().values()) == 80  # and not one request was sent twice


def test_a_gateway_limit_below_rate_is_found_and_kept(sandbox, tmp_path: Path) -> None:
    """nginx allows 20 r/s (burst 10), the job is told 40: it settles instead of collapsing."""
    people = customers(60, salt="net")
    path = write_csv(tmp_path / "in.csv", people)
    with nginx_gateway(sandbox.base_url, limit_rps=20, burst=10) as gateway:
        result = job(gateway, path, tmp_path / "out", "--rate", "40", **gateway.env())
    assert result.exit_code == 0, result.stderr
    check_truth(result, [ci for ci, _ in people])
    statuses = gateway.statuses()
    summary = result.summary()
    assert statuses[429] > 0  # the gateway did limit the job
    assert summary["http_429"] == statuses[429]
    assert statuses[429] <= 0.2 * statuses.total()
    # 120 answers at 20 r/s take 6 s; halving the rate on every 429 took several times that.
    ideal = 120 / 20
    assert summary["duration_s"] <= 2 * ideal


@pytest.mark.parametrize("rate", ["40", "20"])
def test_a_strict_gateway_without_burst_is_met_without_customers_in_error(
    sandbox, tmp_path: Path, rate: str
) -> None:
    """nginx allows 20 r/s with no burst at all: any two requests closer than 50 ms, one is 429."""
    people = customers(60, salt="strict")
    path = write_csv(tmp_path / "in.csv", people)
    with nginx_gateway(sandbox.base_url, limit_rps=20) as gateway:
        result = job(gateway, path, tmp_path / "out", "--rate", rate, **gateway.env())
    assert result.exit_code == 0, result.stderr
    check_truth(result, [ci for ci, _ in people])
    statuses, summary = gateway.statuses(), result.summary()
    assert summary["http_429"] == statuses[429]
    # Starts are never closer than the interval once the gateway has refused: the 429s
    # stay a small share (the half-interval catch-up used to make every other one a 429).
    assert statuses[429] <= 0.2 * statuses.total()
    if rate == "20":  # its 429s (naming no wait) are jitter, not the rate: the rate stays
        assert summary["rate_cuts"] == 0


class LiveApp:
    """A second loopback client asking through the same nginx zone, as the live app does."""

    def __init__(self, gateway: Gateway, per_second: float) -> None:
        self._gateway = gateway
        self._pause = 1 / per_second
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.statuses: list[int] = []

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        context = self._gateway.ssl_context()
        url = f"{self._gateway.base_url}/register/search"
        ci, name = customers(1, salt="app")[0]
        body = orjson.dumps(envelope(Partner("F0995", "297"), Customer(ci, name), "app-1"))
        while not self._stop.wait(self._pause):
            request = urllib.request.Request(url, data=body, headers={"apikey": API_KEY})
            try:
                with urllib.request.urlopen(request, context=context, timeout=5) as answer:
                    self.statuses.append(answer.status)
            except urllib.error.HTTPError as refused:
                self.statuses.append(refused.code)


def test_a_live_app_in_the_same_nginx_zone_costs_the_job_no_customer(
    sandbox, tmp_path: Path
) -> None:
    people = customers(80, salt="zone")
    path = write_csv(tmp_path / "in.csv", people)
    with (
        nginx_gateway(sandbox.base_url, limit_rps=20, burst=5) as gateway,
        LiveApp(gateway, per_second=6) as app,
    ):
        result = job(gateway, path, tmp_path / "out", "--rate", "20", **gateway.env())
    assert result.exit_code == 0, result.stderr
    check_truth(result, [ci for ci, _ in people])
    assert len(app.statuses) > 0  # the app did share the zone meanwhile
    assert result.summary()["http_429"] + app.statuses.count(429) == gateway.statuses()[429]


@contextlib.contextmanager
def outage_after(
    sandbox: Sandbox, server: SandboxThread, requests: int, seconds: float
) -> Iterator[list[SandboxThread]]:
    """Stop the sandbox once it has seen `requests`; start it on its port `seconds` later."""
    running = [server]

    def stop_and_restart() -> None:
        deadline = time.monotonic() + 30
        while sandbox.stats.requests < requests and time.monotonic() < deadline:
            time.sleep(0.005)
        server.stop()
        time.sleep(seconds)
        running.append(SandboxThread(sandbox, port=server.port).start())

    worker = threading.Thread(target=stop_and_restart, daemon=True)
    worker.start()
    try:
        yield running
    finally:
        worker.join(60)
        running[-1].stop()


def test_the_api_down_behind_the_gateway_for_2s_is_waited_out(tmp_path: Path) -> None:
    people = customers(100, salt="net")
    path = write_csv(tmp_path / "in.csv", people)
    sandbox = Sandbox(SandboxConfig(api_key=API_KEY))
    server = SandboxThread(sandbox).start()
    with (
        nginx_gateway(server.base_url) as gateway,
        outage_after(sandbox, server, requests=60, seconds=2.0) as running,
    ):
        result = job(gateway, path, tmp_path / "out", "--rate", "100", **gateway.env())
    assert len(running) == 2, "the sandbox was not restarted"
    assert result.exit_code == 0, result.stderr
    check_truth(result, [ci for ci, _ in people])
    summary = result.summary()
    assert summary["error"] == 0
    assert summary["outages"] >= 1
    # nginx's own 502 pages were seen, but only by the failures that opened the circuit, what
    # else was in flight then, and the probes.
    assert 1 <= gateway.statuses()[502] <= 16 + 4


# --- configuration errors stop at once, naming the cause --------------------------------------


def test_a_private_ca_without_ssl_cert_file_stops_at_once(sandbox, people, tmp_path) -> None:
    path, _ = people
    with nginx_gateway(sandbox.base_url) as gateway:
        result = job(gateway, path, tmp_path / "out", SSL_CERT_FILE=None)  # unset
    assert result.exit_code == 2
    assert re.search(
        r"member-recon: the TLS certificate of localhost failed verification \(.+\); "
        r"if your network uses its own CA, set SSL_CERT_FILE to its PEM bundle",
        result.stderr,
    ), result.stderr
    assert "Traceback" not in result.stderr
    assert gateway.log_lines() == []  # not one request got through
    assert result.summary()["requests"] <= 2 * 16  # what was started at once, no retries
    assert not (tmp_path / "out" / "reconciled.parquet").exists()


def test_a_certificate_for_another_name_stops_at_once(
    sandbox, people, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(servers, "write_certificates", servers.write_certificate_for_its_name_only)
    path, _ = people
    with nginx_gateway(sandbox.base_url, server_name="localhost") as gateway:
        by_address = gateway.base_url.replace("//localhost:", "//127.0.0.1:")
        result = job(gateway, path, tmp_path / "out", "--base-url", by_address, **gateway.env())
        by_name = job(gateway, path, tmp_path / "by-name", **gateway.env())
    assert result.exit_code == 2
    assert "the TLS certificate of 127.0.0.1 failed verification" in result.stderr
    assert "mismatch, certificate is not valid for '127.0.0.1'" in result.stderr
    assert result.summary()["requests"] <= 2 * 16
    assert by_name.exit_code == 0, by_name.stderr  # the control: the name it was issued for


def test_a_host_name_that_does_not_resolve_stops_at_once(sandbox, people, tmp_path) -> None:
    path, _ = people
    url = "https://api.koscom.invalid/v1/common/member"
    result = job(sandbox, path, tmp_path / "out", "--base-url", url)
    assert result.exit_code == 2
    assert "member-recon: cannot resolve api.koscom.invalid (" in result.stderr
    assert "check the API's URL, or set HTTPS_PROXY" in result.stderr
    assert result.stderr.rstrip().endswith("see --base-url (or KOSCOM_BASE_URL)")
    assert result.summary()["requests"] <= 2 * 16


def test_a_proxy_that_wants_credentials_says_how_to_give_them(sandbox, people, tmp_path) -> None:
    path, _ = people
    with (
        tinyproxy(basic_auth=("recon", PASSWORD)) as proxy,
        nginx_gateway(sandbox.base_url) as gateway,
    ):
        anonymous = proxy.url.replace(f"recon:{PASSWORD}@", "")
        result = job(gateway, path, tmp_path / "out", HTTPS_PROXY=anonymous, **gateway.env())
    assert result.exit_code == 2
    assert (
        "member-recon: the proxy asks for credentials (407); put them in the proxy URL, "
        "e.g. HTTPS_PROXY=http://user:password@proxy:3128"
    ) in result.stderr
    assert gateway.log_lines() == []
    assert result.summary()["requests"] <= 2 * 16


def test_proxy_credentials_in_the_url_work_and_the_password_shows_nowhere(
    sandbox, people, tmp_path
) -> None:
    path, cis = people
    out = tmp_path / "out"
    with (
        tinyproxy(basic_auth=("recon", PASSWORD)) as proxy,
        nginx_gateway(sandbox.base_url) as gateway,
    ):
        result = job(gateway, path, out, "--debug", HTTPS_PROXY=proxy.url, **gateway.env())
    assert result.exit_code == 0, result.stderr
    check_truth(result, cis)
    assert [e["proxy"] for e in log_events(result, "network")] == [f"127.0.0.1:{proxy.port}"]
    assert any(f"CONNECT localhost:{gateway.port}" in line for line in proxy.log_lines())
    assert PASSWORD not in result.stdout + result.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"reconciled.parquet", "summary.json", ".finished.json"} <= {p.name for p in files}
    for file in files:
        assert PASSWORD.encode() not in file.read_bytes(), file.name


# --- through squid, the only one that knows the API's name ------------------------------------


def test_through_an_egress_proxy_that_alone_knows_the_api_name(sandbox, people, tmp_path) -> None:
    path, cis = people
    with (
        squid_proxy({KOSCOM_HOST: "127.0.0.1"}) as squid,  # api.koscom.test resolves only here
        nginx_gateway(sandbox.base_url, server_name=KOSCOM_HOST) as gateway,
    ):
        proxied = job(gateway, path, tmp_path / "out", **squid.env(), **gateway.env())
        direct = job(gateway, path, tmp_path / "direct", **gateway.env())
    assert proxied.exit_code == 0, proxied.stderr
    check_truth(proxied, cis)
    assert [(e["api_host"], e["proxy"]) for e in log_events(proxied, "network")] == [
        (KOSCOM_HOST, f"127.0.0.1:{squid.port}")
    ]
    # squid logs a tunnel when it closes: its log is whole once it has stopped.
    assert any(f"CONNECT {KOSCOM_HOST}:{gateway.port}" in line for line in squid.log_lines())
    # Without HTTPS_PROXY the name resolves nowhere, and the message says what to set.
    assert direct.exit_code == 2
    assert f"member-recon: cannot resolve {KOSCOM_HOST} (" in direct.stderr
    assert "or set HTTPS_PROXY if the API is reached through a proxy" in direct.stderr


def test_no_proxy_sends_the_api_around_the_proxy(sandbox, people, tmp_path) -> None:
    path, _ = people
    with squid_proxy({}) as squid:
        bypassed = job(
            sandbox, path, tmp_path / "bypassed", HTTP_PROXY=squid.url, NO_PROXY="127.0.0.1"
        )
        proxied = job(sandbox, path, tmp_path / "proxied", HTTP_PROXY=squid.url)  # the control
    assert bypassed.exit_code == proxied.exit_code == 0, bypassed.stderr + proxied.stderr
    assert [e["proxy"] for e in log_events(bypassed, "network")] == ["none"]
    assert [e["proxy"] for e in log_events(proxied, "network")] == [f"127.0.0.1:{squid.port}"]
    # Every line squid logged is one of the control's 80 requests: none is the bypassed run's.
    lines = squid.log_lines()
    assert len(lines) == proxied.summary()["requests"] == 80
    assert all(f"POST {sandbox.base_url}/" in line for line in lines)
