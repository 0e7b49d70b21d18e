"""The `member-recon` command line: `run`, `report`, `migrate` and `sandbox`."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any, ClassVar

import click

from jobs.cli.dataset_commands import migrate, report
from jobs.cli.flags import defaulted, existing_file, folder, switch
from jobs.cli.outcome import (
    explain,
    fail,
    guard_process,
    print_summary,
    proxy_passwords,
    say_errors_left,
    say_finished_before,
    say_too_many_errors,
)
from jobs.cli.sandbox_command import sandbox

SANDBOX_URL = "https://sandbox-apigw.koscom.co.kr/v1/common/member"


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
@existing_file(
    "--config",
    "TOML file with the same keys as the flags (flag > environment > file > default).",
    is_eager=True,
    expose_value=False,
    callback=_load_config,
)
@click.option("--com-id", envvar="KOSCOM_COM_ID", help="partner.comId (5 characters).")
@click.option("--srv-id", envvar="KOSCOM_SRV_ID", help="partner.srvId (up to 20 characters).")
@defaulted("--base-url", None, SANDBOX_URL, envvar="KOSCOM_BASE_URL")
@existing_file("--api-key-file", "Read the API key from this file instead of KOSCOM_API_KEY.")
@defaulted(
    "--rate",
    click.FloatRange(min=0.1),
    20.0,
    "Requests per second, both APIs together, in any 1 s window.",
    envvar="KOSCOM_RATE",
)
@defaulted("--concurrency", click.IntRange(1, 512), 16, "Requests in flight at most.")
@folder("--out", "out_dir", "Output folder [default: out/<run date>].")
@folder(
    "--dataset",
    "dataset_root",
    "Write ROOT/<table>/run_date=YYYY-MM-DD/ and the run log ROOT/runs/ (instead of --out).",
)
@click.option(
    "--run-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The partition's date with --dataset [default: today, local time].",
)
@click.option(
    "--max-age",
    type=click.IntRange(min=1),
    metavar="DAYS",
    help="With --dataset: carry a customer's answer from the last night while it is younger "
    "than DAYS run dates; ask new, failed and older ones, in that order.",
)
@click.option(
    "--sink",
    "sinks",
    multiple=True,
    metavar="URL",
    help="With --dataset: load the partition into duckdb:///file.duckdb or postgresql://… "
    "(password from PGPASSWORD); repeatable.",
)
@defaulted(
    "--format",
    click.Choice(["parquet", "csv", "xlsx"]),
    "parquet",
    "xlsx: one workbook for people, a sheet per table.",
    dest="file_format",
)
@defaulted(
    "--file-mode",
    click.Choice(["0600", "0640", "0644"]),
    "0600",
    "Outputs' permissions (folders to match); 0640 shares with the group; "
    "0644 needs --pseudonymize.",
)
@defaulted("--ci-column", None, "ci")
@defaulted("--name-column", None, "kor_name")
@click.option("--encoding", help="Input text encoding [default: detected: UTF-8, UTF-16 or CP949].")
@click.option(
    "--delimiter", help="Field delimiter of text inputs: , ; tab or | [default: detected]."
)
@click.option(
    "--header-row",
    type=click.IntRange(min=1),
    help="The header's row number, as a spreadsheet shows it [default: the first of the "
    "first 20 rows that holds the columns].",
)
@click.option("--sheet", help="For .xlsx, .xls and .ods inputs: the sheet [default: the first].")
@click.option(
    "--keep-columns",
    default="",
    help="Input columns to carry into reconciled, comma-separated (e.g. a customer number).",
)
@switch("--pseudonymize", "Write ci_hmac (HMAC-SHA256 under $KOSCOM_PSEUDONYM_KEY) instead of ci.")
@switch("--fresh", "Forget the saved progress in the folder; start over.")
@switch(
    "--keep-progress",
    "Keep the progress store after a run with nothing left to ask (it holds the input).",
)
@defaulted(
    "--max-error-rate",
    click.FloatRange(0, 1),
    0.05,
    "Exit 1 when more than this fraction of customers ended in error.",
)
@defaulted(
    "--daily-reserve",
    click.IntRange(min=0),
    0,
    "Stop asking when the day's remaining cap falls to this (exit 4).",
    envvar="KOSCOM_DAILY_RESERVE",
)
@defaulted("--timeout", click.FloatRange(min=0.1), 10.0, "Seconds to wait for one answer.")
@defaulted(
    "--connect-timeout",
    click.FloatRange(min=0.1),
    10.0,
    "Seconds to wait for a connection (through the proxy, if any).",
)
@defaulted(
    "--max-outage",
    DurationParam(),
    "15m",
    "How long to wait out an outage (e.g. 90s, 15m, 1h) before giving up with exit 3.",
)
@defaulted(
    "--attempts", click.IntRange(1, 20), 5, "Tries per request before the customer ends in error."
)
@switch("--dry-run", "Read and validate only; write rejects; ask nothing.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Log lines as text or JSON [default: text on a terminal, JSON elsewhere].",
)
@defaulted(
    "--progress-interval",
    click.FloatRange(min=1),
    30.0,
    "Seconds between progress lines when not on a terminal.",
)
@switch("--debug", "Log every request and show tracebacks.")
def run(**options: Any) -> None:
    """Reconcile INPUT (.csv, .tsv, .txt, .csv.gz, .parquet, .xlsx, .xls or .ods) into --out."""
    from batch import UsageError  # noqa: PLC0415
    from jobs import logs  # noqa: PLC0415  (lazy: keeps --help fast)
    from jobs.cli.run_options import api_key_from, run_settings  # noqa: PLC0415
    from jobs.cli.tuning import skip_pandas_probe  # noqa: PLC0415
    from jobs.job import run as run_job  # noqa: PLC0415

    try:
        api_key = api_key_from(options["api_key_file"])
    except UsageError as exc:
        fail(str(exc), 2)
    except OSError as exc:
        fail(f"--api-key-file cannot be read: {exc.strerror or exc}", 2)
    log, redactor = logs.configure(
        log_format=options["log_format"] or ("text" if sys.stderr.isatty() else "json"),
        debug=options["debug"],
        run_id=(run_id := os.urandom(4).hex()),
        secrets=[api_key or "", os.environ.get("KOSCOM_PSEUDONYM_KEY", ""), *proxy_passwords()],
    )
    guard_process()
    skip_pandas_probe()
    target = None
    try:
        settings = run_settings(options, api_key, run_id, log)
        target = settings.engine.dataset_root or settings.engine.out_dir
        result = run_job(settings, log)
    except KeyboardInterrupt as interrupt:  # before the job could take over
        signum = interrupt.args[0] if interrupt.args else signal.SIGINT
        fail("interrupted; progress is saved: run the same command again to resume", 128 + signum)
    except Exception as exc:
        explain(exc, options["debug"], redactor, target)
    if result.finished_before:
        say_finished_before(result.summary)
    print_summary(result.summary, result.outputs, target)
    if result.exit_code == 1:
        say_too_many_errors(result.summary, options["max_error_rate"])
    else:
        say_errors_left(result.summary)
    sys.exit(result.exit_code)


cli.add_command(sandbox)
cli.add_command(report)
cli.add_command(migrate)


def main() -> None:
    cli()
