"""What never heals is said at once, with a hint that fits: the CLI against real servers.

Until the API has answered once in a run, a refused port, a proxy that is not there or
that cannot reach the API (squid's 500), a certificate for another name, a CA file that
is not there, credentials the proxy refused and plain HTTP sent to a TLS port are
configuration: exit 2 naming the cause and the setting, not an outage waited out for
--max-outage. Each run is given a long --max-outage, so that waiting would show as exit 3.
"""

from __future__ import annotations

import re
import socketserver
import threading
from pathlib import Path

import pytest

from tests import servers
from tests.conftest import customers, job, write_csv
from tests.servers import free_port, nginx_gateway, squid_proxy

pytest_plugins = ["tests.conftest_servers"]

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")
PASSWORD = "sq-s3cret-71be40"  # a throwaway for squid's basic auth
PATIENT = ("--max-outage", "10m")  # waiting it out would end in exit 3, not in seconds


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def people(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "in.csv", customers(40, salt="config"))


def configuration(result, *parts: str) -> str:
    """The last stderr line, after checking the run stopped at once as configuration."""
    assert result.exit_code == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    for part in parts:
        assert part in line, line
    assert "Traceback" not in result.stderr
    assert result.summary()["requests"] <= 2 * 16  # what was started at once, no retries
    return line


# --- 4: what never heals ------------------------------------------------------------------


def test_a_refused_port_is_configuration_at_once(sandbox, people, tmp_path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/common/member"
    result = job(sandbox, people, tmp_path / "out", "--base-url", url, *PATIENT)
    configuration(
        result,
        f"member-recon: cannot connect to 127.0.0.1:{port} (Connection refused)",
        "the API has not answered once in this run",
        "see --base-url (or KOSCOM_BASE_URL)",
    )
    assert result.summary()["outages"] == 0


def test_a_closed_proxy_port_is_configuration_at_once(sandbox, people, tmp_path) -> None:
    with squid_proxy({}) as squid:
        closed = squid.url  # squid stops when the block ends: its port is closed after
    result = job(sandbox, people, tmp_path / "out", *PATIENT, HTTP_PROXY=closed)
    configuration(
        result,
        "cannot connect to the proxy in HTTP_PROXY (Connection refused); check HTTP_PROXY",
        "the API has not answered once in this run",
    )


def test_a_name_the_proxy_cannot_resolve_is_configuration_at_once(sandbox, people, tmp_path):
    name = "api.unknown.test"
    with (
        squid_proxy({}, unresolvable=[name]) as squid,
        nginx_gateway(sandbox.base_url) as gateway,
    ):
        url = gateway.base_url.replace("//localhost:", f"//{name}:")
        result = job(
            gateway,
            people,
            tmp_path / "out",
            "--base-url",
            url,
            *PATIENT,
            **{**squid.env(), **gateway.env()},
        )
        lines = squid.log_lines()
    configuration(
        result,
        f"the proxy in HTTPS_PROXY could not reach {name} (HTTP 500",
        "check the API's URL and HTTPS_PROXY",
        "the API has not answered once in this run",
        "see --base-url (or KOSCOM_BASE_URL)",
    )
    assert lines
    assert all(f"CONNECT {name}:" in line for line in lines)
    assert gateway.log_lines() == []


class _RefusingProxy(socketserver.StreamRequestHandler):
    """A proxy that answers every CONNECT with its own 400, as a misconfigured one does."""

    def handle(self) -> None:
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        self.wfile.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def test_a_proxys_own_400_is_configuration_at_once(sandbox, people, tmp_path) -> None:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RefusingProxy) as proxy:
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{proxy.server_address[1]}"
            api = "https://api.koscom.test/v1/common/member"
            result = job(
                sandbox, people, tmp_path / "out", "--base-url", api, *PATIENT, HTTPS_PROXY=url
            )
        finally:
            proxy.shutdown()
    configuration(
        result,
        "the proxy in HTTPS_PROXY could not reach api.koscom.test (HTTP 400)",
        "the API has not answered once in this run",
    )


# --- 6: hints that fit ----------------------------------------------------------------------


@pytest.mark.parametrize("through", ["direct", "squid"])
def test_a_certificate_for_another_name_names_both(
    sandbox, people, tmp_path, monkeypatch: pytest.MonkeyPatch, through: str
) -> None:
    monkeypatch.setattr(servers, "write_certificates", servers.write_certificate_for_its_name_only)
    with (
        squid_proxy({}) as squid,
        nginx_gateway(sandbox.base_url, server_name="localhost") as gateway,
    ):
        by_address = gateway.base_url.replace("//localhost:", "//127.0.0.1:")
        proxy = squid.env() if through == "squid" else {}
        result = job(
            gateway,
            people,
            tmp_path / "out",
            "--base-url",
            by_address,
            **{**proxy, **gateway.env()},
        )
        sent = gateway.log_lines()
    configuration(
        result,
        "the TLS certificate of 127.0.0.1 failed verification (",
        "it was issued for localhost, and 127.0.0.1 was asked for; "
        "use a URL with one of its names; see --base-url",
    )
    assert "set SSL_CERT_FILE" not in result.stderr
    assert sent == []  # the names were read from the handshake: no request went there


def test_a_ca_file_that_is_not_there_is_named(sandbox, people, tmp_path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    with nginx_gateway(sandbox.base_url) as gateway:
        result = job(gateway, people, tmp_path / "out", SSL_CERT_FILE=str(missing))
        sent = gateway.log_lines()
    assert result.exit_code == 2, result.stderr
    assert f"member-recon: SSL_CERT_FILE names {missing}, which is not a file" in result.stderr
    assert "failed verification" not in result.stderr
    assert sent == []


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_credentials_the_proxy_refused_name_their_variable(
    sandbox, people, tmp_path, variable: str
) -> None:
    with (
        squid_proxy({}, basic_auth=("recon", PASSWORD)) as squid,
        nginx_gateway(sandbox.base_url) as gateway,
    ):
        wrong = squid.url.replace(PASSWORD, "not-the-password")
        result = job(gateway, people, tmp_path / "out", **{variable: wrong, **gateway.env()})
        right = job(gateway, people, tmp_path / "right", HTTPS_PROXY=squid.url, **gateway.env())
    line = configuration(
        result, f"member-recon: the proxy refused the credentials in {variable} (407)"
    )
    assert "put them in the proxy URL" not in line
    assert "not-the-password" not in result.stderr
    assert right.exit_code == 0, right.stderr  # the control: squid takes the right ones
    assert PASSWORD not in right.stderr


def test_plain_http_sent_to_a_tls_port_says_so(sandbox, people, tmp_path) -> None:
    with nginx_gateway(sandbox.base_url) as gateway:
        plain = gateway.base_url.replace("https://", "http://")
        result = job(gateway, people, tmp_path / "out", "--base-url", plain, **gateway.env())
    line = configuration(
        result,
        f"plain HTTP was sent to a TLS port (localhost:{gateway.port} speaks HTTPS); "
        "the API's URL must begin with https://",
    )
    assert "may have changed" not in result.stderr
    assert re.search(r"see --base-url", line)
