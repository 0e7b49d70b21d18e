"""Why a connection failed, in words that name the setting or variable to change.

The transport asks here once aiohttp has failed or a refusal came back; each function
gives the engine's error for it. A hint must fit the cause: a certificate issued for
another name is not a missing CA, and credentials the proxy refused were not missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from yarl import URL

from batch.errors import (
    CertificateError,
    ConfigurationError,
    ConnectionFailure,
    ProxyRefused,
    Unreachable,
)

_PEEK_HEAD = 16 * 1024  # a proxy's answer to CONNECT is a few hundred bytes


def proxy_variable(url: str) -> str:
    """The environment variable that names the proxy for `url`, as urllib reads them."""
    scheme = urlsplit(url).scheme or "https"
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):  # lower-case wins there
        if os.environ.get(name):
            return name
    return f"{scheme.upper()}_PROXY"


def check_ca_files() -> None:
    """A CA bundle or folder named in the environment that is not there, said before any request.

    OpenSSL skips a missing one silently, and every certificate then fails as if no CA
    had been given.
    """
    for name, exists, kind in (
        ("SSL_CERT_FILE", Path.is_file, "file"),
        ("SSL_CERT_DIR", Path.is_dir, "folder"),
    ):
        value = os.environ.get(name)
        if value and not exists(Path(value)):
            raise ConfigurationError(
                f"{name} names {value}, which is not a {kind}; set it to your CA's PEM "
                f"{'bundle' if kind == 'file' else 'folder'}, or unset it"
            )


def certificate_failed(host: str, reason: str, names: list[str]) -> CertificateError:
    """The certificate failed: for another name, by a CA not given, or by none we know."""
    failed = f"the TLS certificate of {host} failed verification ({reason})"
    if names:
        return CertificateError(
            f"{failed}: it was issued for {', '.join(names)}, and {host} was asked for; "
            "use a URL with one of its names",
            setting="base_url",
        )
    given = os.environ.get("SSL_CERT_FILE")
    if given and "mismatch" not in reason.lower():
        return CertificateError(
            f"{failed}; the CAs in {given} did not issue it: set SSL_CERT_FILE to the PEM "
            "bundle of the CA that did"
        )
    return CertificateError(
        f"{failed}; if your network uses its own CA, set SSL_CERT_FILE to its PEM bundle"
    )


def is_hostname_mismatch(reason: str) -> bool:
    return "hostname mismatch" in reason.lower() or "ip address mismatch" in reason.lower()


async def certificate_names(
    url: str,
    context: ssl.SSLContext,
    proxy: URL | None,
    proxy_headers: Mapping[str, str] | None,
    within: float,
) -> list[str]:
    """The names the server's certificate was issued for; none when they cannot be had.

    A TLS handshake only, the chain verified as always and the name not checked: nothing
    is sent over it, so no key or body reaches a server that is not the one asked for.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    peek = context  # a fresh one, the run's CAs in it
    peek.check_hostname = False  # the one check left out: the names are what we want
    try:
        async with asyncio.timeout(within):
            if proxy is None:
                _, writer = await asyncio.open_connection(
                    host, port, ssl=peek, server_hostname=host
                )
            else:
                writer = await _tunnel(proxy, proxy_headers or {}, host, port)
                await writer.start_tls(peek, server_hostname=host)
    except (OSError, TimeoutError, ssl.SSLError, ValueError):
        return []
    with contextlib.suppress(OSError):
        certificate = writer.get_extra_info("peercert") or {}
        writer.close()
    alternatives = certificate.get("subjectAltName", ())
    return [str(value) for kind, value in alternatives if kind in ("DNS", "IP Address")]


async def _tunnel(
    proxy: URL, headers: Mapping[str, str], host: str, port: int
) -> asyncio.StreamWriter:
    """A CONNECT tunnel through the proxy, ready for TLS."""
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port or 80)
    lines = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > _PEEK_HEAD or head.split(b" ", 2)[1:2] != [b"200"]:
        writer.close()
        raise OSError("the proxy did not open the tunnel")
    return writer


def proxy_credentials(url: str, *, given: bool) -> ProxyRefused:
    """407: the credentials were missing, or the proxy refused those in the variable."""
    variable = proxy_variable(url)
    if given:
        return ProxyRefused(
            f"the proxy refused the credentials in {variable} (407); check the user and "
            "password there (special characters percent-encoded)"
        )
    return ProxyRefused(
        "the proxy asks for credentials (407); put them in the proxy URL, "
        f"e.g. {variable}=http://user:password@proxy:3128"
    )


def proxy_failure(
    status: int, headers: Mapping[str, str] | None, url: str, given: bool
) -> Exception:
    """A proxy's refusal of CONNECT: configuration, what never heals at first, or an outage."""
    host = urlsplit(url).hostname or "?"
    squid_error = (headers or {}).get("X-Squid-Error", "").split(" ")[0]
    variable = proxy_variable(url)
    if status == 407:
        return proxy_credentials(url, given=given)
    if status == 403:
        return ProxyRefused(
            f"the proxy refused to connect to {host} (403); ask for it to be allowed"
        )
    said = f"HTTP {status}" + (f", {squid_error}" if squid_error else "")
    if status in (400, 500) or squid_error in ("ERR_DNS_FAIL", "ERR_CONNECT_FAIL"):
        return Unreachable(
            f"the proxy in {variable} could not reach {host} ({said}); check the API's URL "
            f"and {variable}",
            setting="base_url",
        )
    return ConnectionFailure(f"the proxy could not reach {host} ({said})")


def proxy_down(url: str, reason: str) -> Unreachable:
    """Nothing listens where the variable says the proxy is."""
    variable = proxy_variable(url)
    return Unreachable(f"cannot connect to the proxy in {variable} ({reason}); check {variable}")


def speaks_tls(url: str, status: int, body: bytes) -> bool:
    """A TLS server's plain-HTTP refusal (nginx, Apache) of a request sent as http://."""
    return status == 400 and urlsplit(url).scheme == "http" and b"plain HTTP" in body[:4096]


def plain_http_to_tls(url: str) -> ConfigurationError:
    parts = urlsplit(url)
    return ConfigurationError(
        f"plain HTTP was sent to a TLS port ({parts.hostname}:{parts.port} speaks HTTPS); "
        "the API's URL must begin with https://",
        setting="base_url",
    )
