"""Real servers on loopback: nginx as the API's TLS gateway, squid and tinyproxy as egress proxies.

Each is the Debian package's binary (scripts/ensure-network-servers.sh installs them), started
in the foreground with a config of its own in a temp folder, on a free 127.0.0.1 port, and
stopped when its context ends. A test that cannot have one is skipped with the reason, or
fails where NETWORK_SERVERS_REQUIRED=1 says the machine must have them.

    with nginx_gateway(upstream, limit_rps=10, gzip=True) as gateway:
        run the job with --base-url gateway.base_url and SSL_CERT_FILE=gateway.ca_file
        gateway.statuses()[429]

Fixtures for the common shapes are in tests/conftest_servers.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote, urlsplit

import pytest
import trustme

INSTALL_HINT = "run scripts/ensure-network-servers.sh as root"
REQUIRED_ENV = "NETWORK_SERVERS_REQUIRED"
START_TIMEOUT = 15.0  # a cold start on a busy 2-core machine; a normal one takes well under 1 s
STOP_TIMEOUT = 5.0
START_TRIES = 3  # a free port found by bind-and-close can be taken before the server binds it
KOSCOM_HOST = "api.koscom.test"  # never in /etc/hosts: resolvable only through a proxy


class ServerUnavailable(Exception):
    """A server could not be had here; the message says why and what to do."""


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it where the machine is meant to have the servers (CI)."""
    if os.environ.get(REQUIRED_ENV) == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def find_binary(name: str, more: str = "") -> str:
    # /usr/sbin is not on every PATH (a non-root shell's), and that is where nginx and squid live.
    path = ":".join(filter(None, ["/usr/sbin:/usr/bin:/sbin:/bin", more]))
    found = shutil.which(name) or shutil.which(name, path=path)
    if not found:
        raise ServerUnavailable(f"{name} is not installed: {INSTALL_HINT}")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int, pid: int) -> bool:
    """Whether process `pid` listens on 127.0.0.1:port.

    Read from the kernel's socket table rather than by connecting: a probe connection would
    show in the servers' access logs (squid logs it as an error) that tests count. And the
    socket must be the server's own: a port taken by someone else meanwhile is not a start.
    """
    wanted = f"0100007F:{port:04X}"  # 127.0.0.1 in /proc/net/tcp's little-endian hex
    try:
        table = Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]
    except OSError:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        return False
    inodes = {
        f"socket:[{fields[9]}]"
        for fields in (line.split() for line in table)
        if fields[1] == wanted and fields[3] == "0A"  # 0A: TCP_LISTEN
    }
    return bool(inodes) and not inodes.isdisjoint(open_files(pid))


def open_files(pid: int) -> set[str]:
    """What the process's file descriptors point at (`socket:[inode]` for sockets)."""
    found = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # a descriptor closed while we look
                found.add(str(fd.readlink()))
    return found


def tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(text.strip().splitlines()[-lines:])


def stop_process(proc: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> None:
    """`how` (SIGTERM: nginx's and tinyproxy's fast shutdown), then SIGKILL to the group.

    The group matters: nginx's workers outlive a killed master and would keep the port.
    """
    if proc.poll() is None:
        proc.send_signal(how)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the group id is its pid
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_TIMEOUT)


def wait_until_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Poll until the process listens on the port, dies, or the deadline passes."""
    deadline = time.monotonic() + START_TIMEOUT
    delay = 0.005
    while not listening(port, proc.pid):
        if proc.poll() is not None:
            raise ServerUnavailable(f"exited with code {proc.returncode}: {tail(log)}")
        if time.monotonic() > deadline:
            raise ServerUnavailable(f"not listening after {START_TIMEOUT:.0f} s: {tail(log)}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


@contextlib.contextmanager
def foreground(
    name: str,
    argv: Sequence[str],
    port: int,
    log: Path,
    stop: signal.Signals = signal.SIGTERM,
) -> Iterator[None]:
    """Run a server in the foreground, in its own session, until the context ends."""
    with log.open("wb") as out:  # each try's own log: its tail is the reason it failed
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one group to kill, and no terminal signals from pytest's
            umask=0o022,  # its files as usual, whatever umask an in-process job run left
        )
    try:
        try:
            wait_until_listening(proc, port, log)
        except ServerUnavailable as failed:
            raise ServerUnavailable(f"{name} did not start ({failed})") from None
        yield
    finally:
        stop_process(proc, stop)


@contextlib.contextmanager
def started(name: str, launch: Callable[[int], AbstractContextManager[None]]) -> Iterator[int]:
    """Start a server on a free port, retrying a few ports; skip the test when it cannot be had.

    `launch(port)` is a context manager that starts the server on that port and stops it.
    """
    last = f"{name} did not start"
    for _ in range(START_TRIES):
        port = free_port()
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(launch(port))
            except ServerUnavailable as failed:
                last = str(failed)
                if "in use" in last:  # the port was taken meanwhile: another one will do
                    continue
                break
            yield port
            return
    unavailable(last)


@contextlib.contextmanager
def work_folder(prefix: str, owner: str | None = None) -> Iterator[Path]:
    """A temp folder for a server's config, logs and pid; readable by the user it drops to."""
    folder = Path(tempfile.mkdtemp(prefix=f"member-recon-{prefix}-"))
    try:
        if owner and os.geteuid() == 0:
            with contextlib.suppress(LookupError, OSError):
                shutil.chown(folder, owner, owner)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def put(path: Path, text: str) -> None:
    """Write a file the server can read after it dropped root.

    Explicit mode: the job sets umask 077 in-process (its outputs hold CIs), and a test run
    after it would otherwise write the config and hosts files unreadable to squid's user.
    """
    path.write_text(text, encoding="utf-8")
    path.chmod(0o644)


def read_log(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


class AccessLog:
    """A server's access log, still readable after the server stopped and its folder is gone.

    Complete once the server has stopped; while it runs, a line is written just after its
    answer was sent, so a client may see the answer a moment before the line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._kept: list[str] | None = None

    def lines(self) -> list[str]:
        return self._kept if self._kept is not None else read_log(self.path)

    def keep(self) -> None:
        """Read the log for good: called when the server has stopped."""
        self._kept = read_log(self.path)


@contextlib.contextmanager
def keeping(log: AccessLog) -> Iterator[AccessLog]:
    try:
        yield log
    finally:
        log.keep()


# --- a stand-in API --------------------------------------------------------------------------


class _JsonHandler(BaseHTTPRequestHandler):
    """Answers every request with the server's JSON body; HTTP/1.0, one request a connection.

    One request a connection: a stopped upstream then has no kept-alive connection left that
    would go on answering, which is what an outage test needs.
    """

    server: _JsonServer

    def _answer(self) -> None:
        self.server.seen.append(dict(self.headers.items()))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = self.server.body
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # the names http.server dispatches to
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, *_: object) -> None:  # quiet: nginx's access log tells what happened
        return


class _JsonServer(ThreadingHTTPServer):
    daemon_threads = True
    body: bytes
    seen: list[dict[str, str]]


class JsonUpstream:
    """A tiny HTTP API on 127.0.0.1 to put nginx in front of; stop() and start() make an outage.

    It keeps its port across a restart, and records each request's headers in `seen`.
    """

    def __init__(self, body: bytes = b'{"result": "member"}', path: str = "/v1/common/member"):
        self.body, self.path = body, path
        self.seen: list[dict[str, str]] = []
        self.port = 0
        self._server: _JsonServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> JsonUpstream:
        server = _JsonServer(("127.0.0.1", self.port), _JsonHandler)
        server.body, server.seen = self.body, self.seen
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()  # returns within one poll interval (0.05 s)
            self._server.server_close()
            self._thread.join(STOP_TIMEOUT)
            self._server = None


@contextlib.contextmanager
def json_upstream(body: bytes = b'{"result": "member"}') -> Iterator[JsonUpstream]:
    upstream = JsonUpstream(body).start()
    try:
        yield upstream
    finally:
        upstream.stop()


# --- nginx: the API's TLS gateway -------------------------------------------------------------

# First field the status, so that tests count 429s and 502s; the rest explains a failure.
GATEWAY_LOG_FORMAT = (
    "$status $request_method $request_uri upstream=$upstream_status"
    ' conn=$connection:$connection_requests ae="$http_accept_encoding" rt=$request_time'
    " t=$msec"
)


@dataclass(frozen=True, eq=False)
class Gateway:
    """nginx in front of the API: HTTPS on `port`, its certificate signed by `ca_file`."""

    port: int
    base_url: str  # https://SERVER_NAME:PORT + the upstream's path
    ca_file: Path  # PEM; the job trusts it through SSL_CERT_FILE
    access_log: AccessLog  # one line a request: GATEWAY_LOG_FORMAT, the status first

    def env(self) -> dict[str, str]:
        """What the job's environment needs to trust this gateway.

        Mind that aiohttp builds its default verifying context when it is imported, so an
        in-process run sees SSL_CERT_FILE only if it makes its own ssl.create_default_context().
        """
        return {"SSL_CERT_FILE": str(self.ca_file)}

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def log_lines(self) -> list[str]:
        return self.access_log.lines()

    def statuses(self) -> Counter[int]:
        """Answers nginx gave its clients, by status code (502s and 429s included)."""
        return Counter(int(line.split(" ", 1)[0]) for line in self.log_lines() if line)


def limit_rate(rps: float) -> str:
    # limit_req_zone takes whole requests per second or per minute.
    if rps == int(rps):
        return f"{int(rps)}r/s"
    return f"{max(1, round(rps * 60))}r/m"


def nginx_config(
    folder: Path,
    port: int,
    upstream: str,
    *,
    limit_rps: float | None,
    burst: int,
    nodelay: bool,
    gzip: bool,
    keepalive_requests: int | None,
    server_name: str,
) -> str:
    origin = urlsplit(upstream)
    if origin.scheme != "http" or not origin.port:
        raise ValueError(f"upstream must be http://HOST:PORT[/path], not {upstream!r}")
    inner = folder / "inner.sock"
    limit_zone = limit = ""
    if limit_rps:
        rate = limit_rate(limit_rps)
        limit_zone = f"limit_req_zone $binary_remote_addr zone=api:1m rate={rate};"
        limit = f"limit_req zone=api{f' burst={burst}' if burst else ''}"
        limit += f"{' nodelay' if nodelay else ''}; limit_req_status 429;"
    # gzip regardless of the client: nginx's gzip filter only compresses when the *request*
    # says Accept-Encoding: gzip, and core nginx cannot rewrite a request header in place.
    # So the TLS server hands each request to a second server (a unix socket) with
    # Accept-Encoding forced to gzip; that one gzips the API's JSON, and the TLS server passes
    # the compressed body and its Content-Encoding to the client unchanged.
    front_target = "http://gzipper" if gzip else "http://api"
    return textwrap.dedent(f"""\
        {"user root;" if os.geteuid() == 0 else ""}
        worker_processes 1;
        pid {folder}/nginx.pid;
        error_log {folder}/error.log warn;
        events {{ worker_connections 1024; }}
        http {{
            client_body_temp_path {folder}/client_body;
            proxy_temp_path {folder}/proxy;
            fastcgi_temp_path {folder}/fastcgi;
            uwsgi_temp_path {folder}/uwsgi;
            scgi_temp_path {folder}/scgi;
            log_format gateway '{GATEWAY_LOG_FORMAT}';
            access_log off;
            {limit_zone}
            # max_fails=0: a failed connect must not mark the only server down for 10 s,
            # or 502s would go on after the API is back.
            upstream api {{ server {origin.hostname}:{origin.port} max_fails=0; keepalive 16; }}
            upstream gzipper {{ server unix:{inner} max_fails=0; keepalive 16; }}
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 1s;
            proxy_read_timeout 30s;
            server {{
                listen 127.0.0.1:{port} ssl;
                server_name {server_name};
                ssl_certificate {folder}/server.pem;
                ssl_certificate_key {folder}/server.key;
                access_log {folder}/access.log gateway;
                {f"keepalive_requests {keepalive_requests};" if keepalive_requests else ""}
                location / {{
                    {limit}
                    {'proxy_set_header Accept-Encoding "gzip";' if gzip else ""}
                    proxy_pass {front_target};
                }}
            }}
            server {{
                listen unix:{inner};
                gzip on;
                gzip_types application/json;
                gzip_min_length 0;
                gzip_proxied any;
                location / {{ proxy_pass http://api; }}
            }}
        }}
        """)


def write_certificates(folder: Path, server_name: str) -> Path:
    """A throwaway CA and a server certificate from it; returns the CA's PEM file."""
    ca = trustme.CA()
    names = list(dict.fromkeys([server_name, "localhost", "127.0.0.1"]))
    cert = ca.issue_cert(*names)
    (folder / "server.pem").write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(folder / "server.key"))
    ca_file = folder / "ca.pem"
    put(ca_file, ca.cert_pem.bytes().decode())
    return ca_file


def write_certificate_for_its_name_only(folder: Path, server_name: str) -> Path:
    """As `write_certificates`, but the certificate names `server_name` alone (not 127.0.0.1):
    monkeypatch it over `write_certificates` to meet a certificate issued for another name."""
    ca = trustme.CA()
    cert = ca.issue_cert(server_name)
    (folder / "server.pem").write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(folder / "server.key"))
    put(folder / "ca.pem", ca.cert_pem.bytes().decode())
    return folder / "ca.pem"


@contextlib.contextmanager
def nginx_gateway(
    upstream: str,
    *,
    limit_rps: float | None = None,
    burst: int = 0,
    nodelay: bool = True,
    gzip: bool = False,
    keepalive_requests: int | None = None,
    server_name: str = "localhost",
) -> Iterator[Gateway]:
    """nginx as the API's TLS gateway in front of `upstream` (http://127.0.0.1:PORT/path).

    limit_rps: limit_req per client address, over-limit requests answered 429 (burst extra
    requests are let through at once with nodelay, queued without it). gzip: the JSON answers
    are gzipped whatever the request's Accept-Encoding. keepalive_requests: nginx closes a
    client connection after that many requests. A stopped upstream gives nginx's own 502 page.
    """
    try:
        nginx = find_binary("nginx")
    except ServerUnavailable as missing:
        unavailable(str(missing))
    with work_folder("nginx") as folder:
        ca_file = write_certificates(folder, server_name)

        @contextlib.contextmanager
        def launch(port: int) -> Iterator[None]:
            config = folder / "nginx.conf"
            put(
                config,
                nginx_config(
                    folder,
                    port,
                    upstream,
                    limit_rps=limit_rps,
                    burst=burst,
                    nodelay=nodelay,
                    gzip=gzip,
                    keepalive_requests=keepalive_requests,
                    server_name=server_name,
                ),
            )
            (folder / "inner.sock").unlink(missing_ok=True)  # left by a try that failed
            # -e: the error log before the config is read (else /var/log/nginx/error.log).
            argv = [nginx, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")]
            with foreground("nginx", [*argv, "-g", "daemon off;"], port, folder / "error.log"):
                yield

        path = urlsplit(upstream).path.rstrip("/")
        with keeping(AccessLog(folder / "access.log")) as log, started("nginx", launch) as port:
            yield Gateway(port, f"https://{server_name}:{port}{path}", ca_file, log)


# --- squid and tinyproxy: egress proxies ------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Proxy:
    """An HTTP proxy on loopback: set HTTPS_PROXY/HTTP_PROXY to `url`."""

    url: str  # http://[user:password@]127.0.0.1:PORT
    port: int
    access_log: AccessLog  # squid's access.log; tinyproxy's log (LogLevel Connect)

    def env(self) -> dict[str, str]:
        """The job's environment to go through this proxy (and nothing bypassing it)."""
        return {"HTTPS_PROXY": self.url, "HTTP_PROXY": self.url, "NO_PROXY": ""}

    def log_lines(self) -> list[str]:
        return self.access_log.lines()


def squid_config(
    folder: Path,
    port: int,
    names: Sequence[str],
    unresolvable: Sequence[str] = (),
    passwords: Path | None = None,
) -> str:
    """squid's configuration, loopback only. `unresolvable` names are let through to a lookup
    that can only fail (its resolver is not there); `passwords` asks every client to log in."""
    rules = []
    if passwords is not None:
        helper = find_binary("basic_ncsa_auth", "/usr/lib/squid:/usr/lib64/squid")
        rules += [
            f"auth_param basic program {helper} {passwords}",
            "acl logged_in proxy_auth REQUIRED",
            "http_access deny !logged_in",
        ]
    if unresolvable:
        rules += [
            f"acl unresolvable dstdomain -n {' '.join(unresolvable)}",
            "http_access allow unresolvable",
        ]
    # The lines are dedented once interpolated: each must be indented as the others.
    extra = "".join(f"{rule}\n        " for rule in rules)
    # No cache_dir: memory only, nothing to initialise; `cache deny all` stores nothing anyway.
    # Only loopback clients, only loopback destinations: no test can reach another address.
    return textwrap.dedent(f"""\
        http_port 127.0.0.1:{port}
        visible_hostname member-recon-squid
        pid_filename {folder}/squid.pid
        cache_log {folder}/cache.log
        access_log stdio:{folder}/access.log
        cache_store_log none
        coredump_dir {folder}
        netdb_filename none
        pinger_enable off
        hosts_file {folder}/hosts
        # Should a lookup happen at all (the ACLs below refuse unknown names first), it goes
        # to a resolver that is not there, never the machine's. UDP sockets stay on loopback.
        dns_nameservers 127.0.0.1
        dns_timeout 2 seconds
        udp_incoming_address 127.0.0.1
        udp_outgoing_address 127.0.0.1
        icp_port 0
        htcp_port 0
        cache deny all
        cache_mem 0 MB
        shutdown_lifetime 0 seconds
        max_filedescriptors 1024
        acl known_name dstdomain -n {" ".join(names)}
        acl loopback_ip dstdom_regex -n ^127\\.[0-9.]+$
        acl loopback_dst dst 127.0.0.0/8
        http_access deny !localhost
        # A name it was not given is refused (403) before any lookup; the rest must be loopback.
        http_access deny !known_name !loopback_ip
        {extra}http_access deny !loopback_dst
        http_access allow all
        """)


@contextlib.contextmanager
def squid_proxy(
    hosts: Mapping[str, str],
    unresolvable: Sequence[str] = (),
    basic_auth: tuple[str, str] | None = None,
) -> Iterator[Proxy]:
    """squid on loopback, resolving `hosts` (name → address) from a hosts file of its own.

    Those names resolve only through the proxy, as a bank's API host does behind its egress
    proxy. CONNECT goes to any port, and plain HTTP is proxied, to 127.0.0.0/8 only.
    `unresolvable` names are let through to a lookup that fails (squid then answers 500).
    With `basic_auth`, clients without those credentials get 407; `url` carries them.
    """
    try:
        squid = find_binary("squid")
    except ServerUnavailable as missing:
        unavailable(str(missing))
    # As root, squid drops to its cache_effective_user (proxy) to write its logs.
    with work_folder("squid", owner="proxy") as folder:
        hosts = {"localhost": "127.0.0.1", **hosts}
        lines = [f"{address} {name}" for name, address in hosts.items()]
        put(folder / "hosts", "\n".join([*lines, ""]))
        passwords = folder / "passwords" if basic_auth else None
        if basic_auth and passwords:
            put(passwords, f"{basic_auth[0]}:{md5_crypt(basic_auth[1])}\n")

        @contextlib.contextmanager
        def launch(port: int) -> Iterator[None]:
            config = folder / "squid.conf"
            names = [*hosts, *unresolvable]
            put(config, squid_config(folder, port, names, unresolvable, passwords))
            argv = [squid, "-N", "-f", str(config)]
            # SIGKILL: a clean shutdown takes 1.5 s even with shutdown_lifetime 0, and there is
            # nothing to save (no cache; access.log is written line by line, unbuffered).
            with foreground("squid", argv, port, folder / "out.log", signal.SIGKILL):
                yield

        log = AccessLog(folder / "access.log")
        with keeping(log), started("squid", launch) as port:
            yield Proxy(f"http://{url_credentials(basic_auth)}127.0.0.1:{port}", port, log)


def url_credentials(basic_auth: tuple[str, str] | None) -> str:
    """`user:password@` for a proxy URL, quoted; nothing without credentials."""
    if not basic_auth:
        return ""
    return ":".join(quote(part, safe="") for part in basic_auth) + "@"


def md5_crypt(password: str) -> str:
    """An htpasswd line's MD5-crypt hash, which squid's basic_ncsa_auth reads (openssl makes it)."""
    made = subprocess.run(
        ["openssl", "passwd", "-1", password], capture_output=True, text=True, check=True
    )
    return made.stdout.strip()


def tinyproxy_config(folder: Path, port: int, basic_auth: tuple[str, str] | None) -> str:
    # No ConnectPort line: tinyproxy then allows CONNECT to every port (tests use random ones).
    # As root, drop to the package's user after binding, as its own config does (without
    # User, tinyproxy would go on as root with a warning).
    user = "User tinyproxy\nGroup tinyproxy\n" if os.geteuid() == 0 else ""
    auth = f"BasicAuth {basic_auth[0]} {basic_auth[1]}\n" if basic_auth else ""
    return (
        f"{user}Port {port}\nListen 127.0.0.1\nBindSame no\nTimeout 30\nMaxClients 64\n"
        f'LogFile "{folder}/tinyproxy.log"\nLogLevel Connect\nPidFile "{folder}/tinyproxy.pid"\n'
        f"Allow 127.0.0.1\nDisableViaHeader yes\n{auth}"
    )


@contextlib.contextmanager
def tinyproxy(*, basic_auth: tuple[str, str] | None = None) -> Iterator[Proxy]:
    """tinyproxy on loopback; with basic_auth, clients without those credentials get 407.

    `url` carries the credentials when there are some, as HTTPS_PROXY would.
    """
    try:
        binary = find_binary("tinyproxy")
    except ServerUnavailable as missing:
        unavailable(str(missing))
    with work_folder("tinyproxy", owner="tinyproxy") as folder:

        @contextlib.contextmanager
        def launch(port: int) -> Iterator[None]:
            config = folder / "tinyproxy.conf"
            put(config, tinyproxy_config(folder, port, basic_auth))
            argv = [binary, "-d", "-c", str(config)]
            # Its LogFile is its own to create: as root it writes it as the tinyproxy user.
            with foreground("tinyproxy", argv, port, folder / "out.log"):
                yield

        log = AccessLog(folder / "tinyproxy.log")
        with keeping(log), started("tinyproxy", launch) as port:
            yield Proxy(f"http://{url_credentials(basic_auth)}127.0.0.1:{port}", port, log)
