"""The `member-recon sandbox` command: the API's emulator on this machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from jobs.cli.flags import defaulted, switch


@click.command()
@defaulted("--host", None, "127.0.0.1")
@defaulted("--port", click.IntRange(0, 65535), 8080, "0 picks a free port.")
@defaulted(
    "--api-key-env",
    None,
    "SANDBOX_API_KEY",
    "Environment variable holding the key the sandbox accepts [default key: sandbox-key].",
)
@click.option("--rate-limit", type=click.IntRange(min=1), help="Requests per sliding second.")
@click.option("--minute-limit", type=click.IntRange(min=1), help="Requests per sliding minute.")
@switch(
    "--limit-headers",
    "State the limits as Kong does: X-RateLimit-*-Second/-Minute and RateLimit-*.",
)
@click.option(
    "--app-load",
    type=click.FloatRange(min=0),
    help="A live app sharing the limits: its load swings 0..N req/s and back (--app-period).",
)
@click.option("--app-period", type=click.FloatRange(min=1), default=60.0, show_default=True)
@click.option("--daily-cap", type=click.IntRange(min=0), help="Requests per API per day.")
@defaulted("--latency-ms", click.FloatRange(min=0), 0.0)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND:P[:API]|KIND:firstN[:API]|KIND:customersP[:API]",
    help="Inject a fault; repeatable (customersP: a share P of customers fails on every "
    "attempt until the fault is taken away). Kinds: http500 http503 http429 html truncated "
    "notjson reset slow unknown_result unknown_shape redirect duplicate endless_headers "
    "huge_body.",
)
@switch("--gzip", "Gzip every answer, whatever the client accepts.")
@click.option(
    "--close-after", type=click.IntRange(min=1), help="Close each connection after N answers."
)
@switch("--close-silently", "With --close-after: no `Connection: close` header.")
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

    from jobs.sandbox.server import Fault, Outage, Sandbox, SandboxConfig, run_forever  # noqa: PLC0415

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
        app_load=options["app_load"],
        app_period=options["app_period"],
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
