"""HTTP through aiohttp: one session per run, the environment's proxy and CAs, bounded answers.

aiohttp's errors are translated here into the engine's tree (`batch.errors`), by what
happened: timeouts, connections, protocol, and configuration that cannot work.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from batch.errors import (
    AnswerTimeout,
    ConnectionFailure,
    ConnectTimeout,
    NameResolutionError,
    ProtocolError,
    StaleConnection,
    Unreachable,
)
from batch.http import diagnose
from batch.http.connections import Oversized, StrictConnector

MAX_BODY = 1 << 20  # a real answer is a few hundred bytes; a megabyte is plenty
MAX_FIELD = 8190  # one header line; aiohttp's default, kept
MAX_HEADERS = 64  # a gateway's answer carries a dozen
# An answer's head, any 1xx answers before it, and its body (as sent) count together.
MAX_HEAD = MAX_FIELD * MAX_HEADERS


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What came back for one request, before interpretation; header names are lower-case."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    connection: int = 0  # which connection it came on (0: not known)
    reused: bool = False  # whether an answer came on that connection before


@dataclass(frozen=True, slots=True)
class TransportSettings:
    """Where requests go and how long and how large they may be."""

    base_url: str
    headers: Mapping[str, str] = field(repr=False)  # carries credentials
    connections: int
    connect_timeout: float = 10.0
    answer_timeout: float = 10.0
    max_body: int = MAX_BODY


def tls_context() -> ssl.SSLContext:
    """Verify against the system CAs, plus `SSL_CERT_FILE`/`SSL_CERT_DIR` (a bank's private CA)."""
    diagnose.check_ca_files()
    context = ssl.create_default_context()  # OpenSSL reads SSL_CERT_FILE/SSL_CERT_DIR here
    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        # Those variables replace the system store; load it as well, so that a private
        # CA is added to the public ones instead of replacing them.
        defaults = ssl.get_default_verify_paths()
        if defaults.openssl_cafile and Path(defaults.openssl_cafile).is_file():
            context.load_verify_locations(cafile=defaults.openssl_cafile)
        if defaults.openssl_capath and Path(defaults.openssl_capath).is_dir():
            context.load_verify_locations(capath=defaults.openssl_capath)
    return context


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (host:port only, never credentials)."""
    proxy, _ = environment_proxy(url)
    if proxy is None:
        return None
    return f"{proxy.host}:{proxy.port}" if proxy.port else proxy.host


def environment_proxy(url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """HTTPS_PROXY/HTTP_PROXY/NO_PROXY for `url`, credentials apart, as aiohttp reads them."""
    try:
        return get_env_proxy_for_url(URL(url))
    except LookupError:  # no proxy for this URL, or NO_PROXY names its host
        return None, None


class HttpTransport:
    """POSTs bodies to paths under one base URL over a pool of kept-alive connections."""

    def __init__(self, settings: TransportSettings) -> None:
        self.settings = settings
        self._base = settings.base_url.rstrip("/") + "/"
        self._host = urlsplit(settings.base_url).hostname or "?"
        self._session: aiohttp.ClientSession | None = None
        self._proxy: URL | None = None
        self._proxy_headers: dict[str, str] | None = None
        self._connector: StrictConnector | None = None
        # Until anything answers, what never heals by waiting is configuration (Unreachable).
        self._answered = False

    @property
    def unsolicited_answers(self) -> int:
        """Answers that arrived on an idle connection; each closed its connection."""
        return self._connector.unsolicited if self._connector is not None else 0

    def tainted(self) -> set[int]:
        """Connections on which an answer nobody asked for arrived (call with none in flight)."""
        if self._connector is None:
            return set()
        self._connector.sweep()
        return self._connector.tainted

    def distrust(self, connection: int) -> None:
        """An answer on `connection` was not its request's: suspect it, reuse none again."""
        if self._connector is not None:
            self._connector.distrust(connection)

    async def __aenter__(self) -> Self:
        self._connector = StrictConnector(
            answer_limit=self.settings.max_body + MAX_HEAD,
            limit=self.settings.connections,
            ssl=tls_context(),
            ttl_dns_cache=300,
        )
        self._proxy, auth = environment_proxy(self.settings.base_url)
        # Credentials from the proxy URL go to the proxy only (on CONNECT), never logged.
        self._proxy_headers = {"Proxy-Authorization": auth.encode()} if auth else None
        self._session = aiohttp.ClientSession(
            connector=self._connector,
            headers=dict(self.settings.headers),
            # The environment's proxy is read once above, by the function trust_env=True
            # calls; trust_env itself would call it, and read ~/.netrc, in a thread on every
            # request (measured: half of the job's CPU per request, and pacing jitter).
            trust_env=False,
            timeout=aiohttp.ClientTimeout(
                total=self.settings.connect_timeout + self.settings.answer_timeout,
                sock_connect=self.settings.connect_timeout,
                sock_read=self.settings.answer_timeout,
            ),
            max_field_size=MAX_FIELD,
            max_line_size=MAX_FIELD,
            max_headers=MAX_HEADERS,
            cookie_jar=aiohttp.DummyCookieJar(),  # a gateway's cookies must not follow us
            trace_configs=[_reuse_trace()],
            raise_for_status=False,
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, path: str, body: bytes) -> HttpAnswer:
        """One POST; raise a `TransportError` or `ConfigurationError` when no answer came."""
        assert self._session is not None, "use HttpTransport as an async context manager"
        sent: dict[str, bool] = {}
        try:
            try:
                return await self._exchange(self._session, path, body, sent)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # tinyproxy closes kept-alive connections without a word: a request sent as
                # the close is on its way meets the end of the stream, or the reset it causes.
                if sent.get("reused") and not isinstance(exc, aiohttp.ClientConnectorError):
                    raise StaleConnection("a kept-alive connection closed as it went") from exc
                raise
        except aiohttp.ClientError as exc:
            error = await self._explained(exc)
            if isinstance(error, Unreachable) and not self._answered:
                raise error.as_configuration() from exc  # waiting would not heal it
            raise error from exc
        except TimeoutError as exc:  # the total budget ran out: the answer was too slow
            raise AnswerTimeout(f"no answer within {self.settings.answer_timeout:g} s") from exc

    async def _exchange(
        self, session: aiohttp.ClientSession, path: str, body: bytes, sent: dict[str, bool]
    ) -> HttpAnswer:
        async with session.post(
            self._base + path,
            data=body,
            allow_redirects=False,
            proxy=self._proxy,
            proxy_headers=self._proxy_headers,
            trace_request_ctx=sent,
        ) as response:
            self._answered = self._answered or response.status != 407
            if response.status == 407:  # a plain-HTTP proxy's refusal comes as an answer
                url = self.settings.base_url
                raise diagnose.proxy_credentials(url, given=self._proxy_headers is not None)
            # The connection it came on; aiohttp lets a small answer's go before we read.
            serial = getattr(getattr(response, "_protocol", None), "serial", 0)
            content = await self._read_bounded(response)
            if diagnose.speaks_tls(self.settings.base_url, response.status, content):
                raise diagnose.plain_http_to_tls(self.settings.base_url)
            headers = {name.lower(): value for name, value in response.headers.items()}
            return HttpAnswer(response.status, headers, content, serial, sent.get("reused", False))

    async def _read_bounded(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self.settings.max_body
        if response.content_length is not None and response.content_length > limit:
            raise ProtocolError(f"an answer of {response.content_length} bytes, over {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise ProtocolError(f"an answer of more than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _explained(self, exc: aiohttp.ClientError) -> Exception:
        """The engine's error; for a certificate, the names it was issued for if they differ."""
        if not isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return self._translate(exc)
        error = exc.certificate_error
        reason = getattr(error, "verify_message", "") or str(error)
        names: list[str] = []
        if diagnose.is_hostname_mismatch(reason):
            names = await diagnose.certificate_names(
                self.settings.base_url,
                tls_context(),
                self._proxy,
                self._proxy_headers,
                self.settings.connect_timeout,
            )
        return diagnose.certificate_failed(self._host, reason, names)

    def _translate(self, exc: aiohttp.ClientError) -> Exception:
        """The engine's error for what aiohttp saw; the reason never holds a secret."""
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return NameResolutionError(
                f"cannot resolve {exc.host} ({_os_reason(exc)}); check the API's URL, or set "
                "HTTPS_PROXY if the API is reached through a proxy",
                setting="base_url",
            )
        if isinstance(exc, aiohttp.ClientHttpProxyError):
            given = self._proxy_headers is not None
            return diagnose.proxy_failure(exc.status, exc.headers, self.settings.base_url, given)
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return ConnectTimeout(f"no connection within {self.settings.connect_timeout:g} s")
        if isinstance(exc, aiohttp.ServerTimeoutError):
            return AnswerTimeout(f"no answer within {self.settings.answer_timeout:g} s")
        if isinstance(exc, Oversized):
            return ProtocolError(f"an answer of {exc}, head and 1xx answers included")
        if isinstance(exc, aiohttp.ClientResponseError):  # the answer's head was not HTTP
            # aiohttp's message quotes the peer's bytes; an output must never repeat them.
            return ProtocolError(f"an answer that is not valid HTTP (status {exc.status})")
        if isinstance(exc, aiohttp.ClientPayloadError):
            return ConnectionFailure("the answer broke off before its end")
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return ConnectionFailure("the server closed the connection without an answer")
        if isinstance(exc, aiohttp.ClientProxyConnectionError):
            return diagnose.proxy_down(self.settings.base_url, _os_reason(exc))
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = f"cannot connect to {exc.host}:{exc.port} ({_os_reason(exc)})"
            if isinstance(exc.os_error, ConnectionRefusedError):
                return Unreachable(f"{reason}; nothing listens there", setting="base_url")
            return ConnectionFailure(reason)
        return ConnectionFailure(f"connection failed ({type(exc).__name__})")


def _reuse_trace() -> aiohttp.TraceConfig:
    """Marks a request's trace context when it went out on a kept-alive connection."""

    async def reused(_: object, context: Any, __: object) -> None:
        if isinstance(context.trace_request_ctx, dict):
            context.trace_request_ctx["reused"] = True

    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(reused)
    return trace


def _os_reason(exc: aiohttp.ClientOSError) -> str:
    error = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    if isinstance(error, socket.gaierror):
        return error.strerror or "name not known"
    if isinstance(error, OSError) and error.errno:  # asyncio's strerror repeats the address
        return os.strerror(error.errno)
    return getattr(error, "strerror", None) or type(error).__name__


class Transport(Protocol):
    """What the gate sends through: `HttpTransport`, or a test's stand-in."""

    @property
    def unsolicited_answers(self) -> int: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any: ...

    async def post(self, path: str, body: bytes) -> HttpAnswer:
        """One POST: the whole answer, or raise a `TransportError` or `ConfigurationError`."""
        ...

    def tainted(self) -> set[int]:
        """Connections found to carry an answer nobody asked for, since last asked."""
        ...

    def distrust(self, connection: int) -> None:
        """An answer on `connection` was not its request's: suspect what came on it."""
        ...
