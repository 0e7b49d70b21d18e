"""The `member-recon` command line: `run` and `sandbox`."""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import ipaddress
import os
import resource
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, ClassVar, NoReturn
from urllib.parse import urlsplit

import click

SANDBOX_URL = "https://sandbox-apigw.koscom.co.kr/v1/common/member"
PRODUCTION_HOSTS = frozenset({"apigw.koscom.co.kr", "oap.k-mydata.org"})
INTERNAL_ERROR = 70
_PR_SET_DUMPABLE = 4


class DurationParam(click.ParamType):  # type: ignore[type-arg]
    """Seconds, or a number with s, m or h: `90s`, `15m`, `1h`."""

    name = "duration"
    _UNITS: ClassVar[dict[str, float]] = {"s": 1.0, "m": 60.0, "h": 3600.0}

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip().lower()
        scale = self._UNITS.get(text[-1:], None)
        number = text[:-1] if scale else text
        try:
            seconds = float(number) * (scale or 1.0)
        except ValueError:
            self.fail(f"{value!r} is not a duration such as 90s, 15m or 1h", param, ctx)
        if seconds <= 0:
            self.fail("must be more than zero", param, ctx)
        return seconds


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="member-recon")
def cli() -> None:
    """Reconcile a customer file against KOSCOM's service-integration API."""


def _load_config(ctx: click.Context, _: click.Parameter, path: Path | None) -> Path | None:
    """Read a TOML file whose keys are the flags' names; they rank below flags and environment."""
    if path is None:
        return None
    import tomllib  # noqa: PLC0415

    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise click.BadParameter(f"{path} cannot be read as TOML: {exc}") from None
    by_flag = {
        opt.lstrip("-").replace("-", "_"): param.name
        for param in ctx.command.params
        for opt in param.opts
        if opt.startswith("--") and param.name not in ("config", "input_path")
    }
    defaults: dict[str, Any] = {}
    for key, value in table.items():
        name = by_flag.get(key.replace("-", "_"))
        if name is None:
            raise click.BadParameter(f"unknown key {key!r} in {path}")
        defaults[name] = ",".join(value) if isinstance(value, list) else value
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    is_eager=True,
    expose_value=False,
    callback=_load_config,
    help="TOML file with the same keys as the flags (flag > environment > file > default).",
)
@click.option("--com-id", envvar="KOSCOM_COM_ID", help="partner.comId (5 characters).")
@click.option("--srv-id", envvar="KOSCOM_SRV_ID", help="partner.srvId (up to 20 characters).")
@click.option("--base-url", envvar="KOSCOM_BASE_URL", default=SANDBOX_URL, show_default=True)
@click.option(
    "--api-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the API key from this file instead of KOSCOM_API_KEY.",
)
@click.option(
    "--rate",
    envvar="KOSCOM_RATE",
    type=click.FloatRange(min=0.1),
    default=20.0,
    show_default=True,
    help="Requests per second, both APIs together, in any 1 s window.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    default=16,
    show_default=True,
    help="Requests in flight at most.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: out/<run date>].",
)
@click.option(
    "--dataset",
    "dataset_root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write ROOT/run_date=YYYY-MM-DD/ partitions and ROOT/runs.parquet (instead of --out).",
)
@click.option(
    "--run-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The partition's date with --dataset [default: today, local time].",
)
@click.option(
    "--sink",
    "sinks",
    multiple=True,
    metavar="URL",
    help="With --dataset: load the partition into duckdb:///file.duckdb or postgresql://… "
    "(password from PGPASSWORD); repeatable.",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
)
@click.option("--ci-column", default="ci", show_default=True)
@click.option("--name-column", default="kor_name", show_default=True)
@click.option("--encoding", help="Input text encoding; detected (UTF-8 or CP949) when not given.")
@click.option("--sheet", help="For .xlsx inputs: the sheet to read [default: the first].")
@click.option(
    "--keep-columns",
    default="",
    help="Input columns to carry into reconciled, comma-separated (e.g. a customer number).",
)
@click.option(
    "--pseudonymize",
    is_flag=True,
    help="Write ci_hmac (HMAC-SHA256 under $KOSCOM_PSEUDONYM_KEY) instead of ci.",
)
@click.option("--fresh", is_flag=True, help="Forget the saved progress in the folder; start over.")
@click.option(
    "--max-error-rate",
    type=click.FloatRange(0, 1),
    default=0.05,
    show_default=True,
    help="Exit 1 when more than this fraction of customers ended in error.",
)
@click.option(
    "--daily-reserve",
    envvar="KOSCOM_DAILY_RESERVE",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Stop asking when the day's remaining cap falls to this (exit 4).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for one answer.",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for a connection (through the proxy, if any).",
)
@click.option(
    "--max-outage",
    type=DurationParam(),
    default="15m",
    show_default=True,
    help="How long to wait out an outage (e.g. 90s, 15m, 1h) before giving up with exit 3.",
)
@click.option(
    "--attempts",
    type=click.IntRange(1, 20),
    default=5,
    show_default=True,
    help="Tries per request before the customer ends in error.",
)
@click.option("--dry-run", is_flag=True, help="Read and validate only; write rejects; ask nothing.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Log lines as text or JSON [default: text on a terminal, JSON elsewhere].",
)
@click.option(
    "--progress-interval",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds between progress lines when not on a terminal.",
)
@click.option("--debug", is_flag=True, help="Log every request and show tracebacks.")
def run(**options: Any) -> None:
    """Reconcile INPUT (.csv, .csv.gz, .parquet or .xlsx) and write the outputs to --out."""
    from jobs import logs  # noqa: PLC0415  (lazy: keeps --help fast)

    api_key = _api_key(options["api_key_file"])
    log, redactor = logs.configure(
        log_format=options["log_format"] or ("text" if sys.stderr.isatty() else "json"),
        debug=options["debug"],
        run_id=(run_id := os.urandom(4).hex()),
        secrets=[api_key or "", os.environ.get("KOSCOM_PSEUDONYM_KEY", ""), *_proxy_passwords()],
    )
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    os.umask(0o077)  # outputs and progress hold CIs: never world-readable
    _no_core_dumps()
    try:
        result = _run(options, api_key, run_id, log)
    except KeyboardInterrupt as interrupt:  # before the job could take over
        signum = interrupt.args[0] if interrupt.args else signal.SIGINT
        _fail("interrupted; progress is saved: run the same command again to resume", 128 + signum)
    except Exception as exc:
        _explain(exc, options["debug"], redactor)
    _print_summary(result.summary, result.outputs)
    sys.exit(result.exit_code)


def _run(options: dict[str, Any], api_key: str | None, run_id: str, log: Any) -> Any:
    from batch.dataset import work_dir  # noqa: PLC0415
    from batch.errors import UsageError  # noqa: PLC0415
    from batch.retry import RetryPolicy  # noqa: PLC0415
    from jobs.client import ClientSettings  # noqa: PLC0415
    from jobs.job import RunSettings, run  # noqa: PLC0415
    from jobs.models import Partner  # noqa: PLC0415
    from jobs.sinks import check_sink  # noqa: PLC0415

    com_id, srv_id = options["com_id"], options["srv_id"]
    if not com_id or len(com_id) != 5:
        raise UsageError("--com-id (or KOSCOM_COM_ID) must be 5 characters")
    if not srv_id or len(srv_id) > 20:
        raise UsageError("--srv-id (or KOSCOM_SRV_ID) must be 1 to 20 characters")
    base_url = _checked_base_url(options["base_url"], log)
    if not api_key and not options["dry_run"]:
        raise UsageError("no API key: set KOSCOM_API_KEY or pass --api-key-file")
    run_date = (options["run_date"] or dt.datetime.now().astimezone()).date()
    dataset_root = options["dataset_root"]
    if dataset_root is not None:
        if options["out_dir"] is not None:
            raise UsageError("--dataset and --out name the same thing; give one")
        if options["file_format"] != "parquet":
            raise UsageError("--dataset writes Parquet; drop --format csv")
    elif options["sinks"] or options["run_date"]:
        raise UsageError("--sink and --run-date go with --dataset")
    for url in options["sinks"]:
        check_sink(url)
    out_dir = (
        work_dir(dataset_root, run_date)
        if dataset_root is not None
        else options["out_dir"] or Path("out") / run_date.isoformat()
    )
    pseudonym_key = None
    if options["pseudonymize"]:
        pseudonym_key = os.environ.get("KOSCOM_PSEUDONYM_KEY", "").encode() or None
        if pseudonym_key is None:
            raise UsageError("--pseudonymize needs the key in KOSCOM_PSEUDONYM_KEY")
    keep = tuple(c.strip() for c in options["keep_columns"].split(",") if c.strip())
    client = ClientSettings(
        base_url=base_url,
        api_key=api_key or "",
        partner=Partner(com_id, srv_id),
        rate=options["rate"],
        concurrency=options["concurrency"],
        timeout=options["timeout"],
        connect_timeout=options["connect_timeout"],
        max_outage=options["max_outage"],
        retry=RetryPolicy(attempts=options["attempts"]),
        daily_reserve=options["daily_reserve"],
    )
    settings = RunSettings(
        input_path=options["input_path"],
        out_dir=out_dir,
        client=client,
        file_format=options["file_format"],
        ci_column=options["ci_column"],
        name_column=options["name_column"],
        encoding=options["encoding"],
        fresh=options["fresh"],
        max_error_rate=options["max_error_rate"],
        dry_run=options["dry_run"],
        progress_tty=sys.stderr.isatty(),
        progress_interval=options["progress_interval"],
        keep_columns=keep,
        pseudonym_key=pseudonym_key,
        sheet=options["sheet"],
        dataset_root=dataset_root,
        run_date=run_date,
        sinks=tuple(options["sinks"]),
        run_id=run_id,
    )
    return run(settings, log)


def _api_key(path: Path | None) -> str | None:
    if path is not None:
        return path.read_text(encoding="utf-8").strip() or None
    return os.environ.get("KOSCOM_API_KEY", "").strip() or None


def _checked_base_url(url: str, log: Any) -> str:
    """https anywhere but loopback; and say so when the production host is used."""
    from batch.errors import UsageError  # noqa: PLC0415

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError(f"--base-url {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not _is_loopback(host):
        raise UsageError("--base-url must use https for any host but this machine")
    if host in PRODUCTION_HOSTS:
        log.warning("production", host=host)
        print(f"member-recon: using the PRODUCTION API at {host}", file=sys.stderr)
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _explain(exc: Exception, debug: bool, redactor: Any) -> NoReturn:
    """Map the job's errors to the contract's exit codes with one line; tracebacks on --debug."""
    from batch.errors import RunError  # noqa: PLC0415
    from jobs.exits import exit_code_for  # noqa: PLC0415

    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, RunError):
        _fail(redactor.text(str(exc)), exit_code_for(exc))
    if isinstance(exc, OSError):
        _fail(redactor.text(f"{exc.strerror or exc}: {exc.filename or ''}".strip(": ")), 2)
    _fail(f"internal error ({type(exc).__name__}); run with --debug for details", INTERNAL_ERROR)


def _fail(message: str, code: int) -> NoReturn:
    print(f"member-recon: {message}", file=sys.stderr)
    sys.exit(code)


def _no_core_dumps() -> None:
    """A core dump would hold the API key and the CIs in flight: none for this process."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # A core_pattern that pipes to a program ignores RLIMIT_CORE; not being dumpable doesn't.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def _proxy_passwords() -> list[str]:
    """Passwords in the proxy URLs of the environment: the log redactor must know them."""
    found = []
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        with contextlib.suppress(ValueError):
            password = urlsplit(os.environ.get(name, "")).password
            if password:
                found.append(password)
    return found


def _raise_keyboard_interrupt(signum: int, _: object) -> None:
    raise KeyboardInterrupt(signum)


def _print_summary(summary: dict[str, Any], outputs: tuple[Path, ...]) -> None:
    keys = (
        "state",
        "rows",
        "rejected",
        "customers",
        "to_ask",
        "linked",
        "non_member",
        "no_linked_account",
        "error",
        "non_member_with_accounts",
        "accounts",
        "requests",
        "retries",
        "http_429",
        "estimated_requests",
        "estimated_duration_s",
        "duration_s",
        "requests_per_s",
    )
    width = max(len(k) for k in keys)
    for key in keys:
        if key in summary:
            print(f"  {key:<{width}}  {summary[key]}")
    for reason, count in summary.get("errors_by_reason", {}).items():
        print(f"  error: {count} x {reason}")
    if outputs:
        print(f"outputs in {outputs[0].parent}:")
        for path in outputs:
            print(f"  {path.name}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="0 picks a free port.",
)
@click.option(
    "--api-key-env",
    default="SANDBOX_API_KEY",
    show_default=True,
    help="Environment variable holding the key the sandbox accepts [default key: sandbox-key].",
)
@click.option("--rate-limit", type=click.IntRange(min=1), help="Requests per sliding second.")
@click.option("--minute-limit", type=click.IntRange(min=1), help="Requests per sliding minute.")
@click.option(
    "--limit-headers",
    is_flag=True,
    help="State the limits as Kong does: X-RateLimit-*-Second/-Minute and RateLimit-*.",
)
@click.option("--daily-cap", type=click.IntRange(min=0), help="Requests per API per day.")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND:P[:API]|KIND:firstN[:API]",
    help="Inject a fault; repeatable. Kinds: http500 http503 http429 html truncated "
    "notjson reset slow unknown_result unknown_shape redirect duplicate endless_headers "
    "huge_body.",
)
@click.option("--gzip", is_flag=True, help="Gzip every answer, whatever the client accepts.")
@click.option(
    "--close-after", type=click.IntRange(min=1), help="Close each connection after N answers."
)
@click.option(
    "--close-silently", is_flag=True, help="With --close-after: no `Connection: close` header."
)
@click.option(
    "--outage",
    metavar="KIND:SECONDS[@AFTER]",
    help="Fail every request for SECONDS, AFTER seconds from start. Kinds: html http503 "
    "reset refused.",
)
@click.option("--flip", default="", help="A salt that changes every answer (a different 'day').")
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the base URL here once listening.",
)
def sandbox(**options: Any) -> None:
    """Run a local emulator of both APIs, for demos and tests."""
    import time  # noqa: PLC0415

    from jobs.sandbox import Fault, Outage, Sandbox, SandboxConfig, run_forever  # noqa: PLC0415

    try:
        faults = tuple(Fault.parse(spec) for spec in options["faults"])
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from None
    try:
        outage = options["outage"] and Outage.parse(options["outage"], time.monotonic())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--outage") from None
    config = SandboxConfig(
        api_key=os.environ.get(options["api_key_env"], "sandbox-key"),
        rate_limit=options["rate_limit"],
        minute_limit=options["minute_limit"],
        limit_headers=options["limit_headers"],
        daily_cap=options["daily_cap"],
        latency=options["latency_ms"] / 1000,
        faults=faults,
        answer_salt=options["flip"],
        gzip=options["gzip"],
        close_after=options["close_after"],
        close_silently=options["close_silently"],
        outage=outage or None,
    )

    def ready(url: str) -> None:
        print(f"sandbox listening on {url}", flush=True)
        if options["ready_file"]:
            options["ready_file"].write_text(url + "\n")

    run_forever(Sandbox(config), options["host"], options["port"], ready)


def main() -> None:
    cli()
