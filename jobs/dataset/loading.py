"""A published night into its sinks, and how that ended told in its summary and run-log row.

The night's row is logged at publication with `sinks = "loading"` (a kill -9 from then on
leaves that, which is the truth). Once the loads end, the published summary.json and the
same row (the run log keeps one row per run_id) say `loaded`, `failed: …` or
`interrupted by SIGINT`, with the exit code the run gives: 5 for a failed sink, 130/143
for a signal. A stop signal is held while a load runs (a driver may swallow it and carry
on), so the load ends whole, committed or rolled back, and the run stops after it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from batch import Log, held
from batch.outputs import OutputSet, append_run, write_json
from jobs.dataset.sinks import SinkError, load
from jobs.dataset.summary import SINKS_LOADED, night_exit_code, run_log_row
from jobs.exits import SINK_FAILED
from jobs.settings import RunSettings


def load_all(settings: RunSettings, published: Mapping[str, Path], run_log: Path, log: Log) -> None:
    """Load every sink; tell the outcome; raise SinkError or KeyboardInterrupt after."""
    if not settings.sinks:
        return
    summary_file = published["summary"]
    run_id = str(json.loads(summary_file.read_text(encoding="utf-8")).get("run_id") or "")
    failure: SinkError | None = None
    loaded = 0
    with held() as caught:
        for url in settings.sinks:
            if caught.signum is not None:  # it came as the night was published
                break
            try:
                load(url, published, settings.run_date, run_log, run_id)
            except SinkError as exc:
                failure = exc
                break
            loaded += 1
            log.info("loaded", sink=urlsplit(url).scheme)
        if caught.signum is not None:
            outcome = f"interrupted by {caught.name()} ({loaded} of {len(settings.sinks)} loaded)"
            code = 128 + caught.signum
        elif failure is not None:
            outcome, code = f"failed: {failure}", SINK_FAILED
        else:
            outcome, code = SINKS_LOADED, None
        tell(settings, summary_file, outcome, code)
    if caught.signum is not None:
        raise KeyboardInterrupt(caught.signum)
    if failure is not None:
        raise failure


def tell(settings: RunSettings, summary_file: Path, outcome: str, code: int | None) -> None:
    """The night's published summary and its run-log row, amended with the sinks' outcome."""
    engine = settings.engine
    assert engine.dataset_root is not None
    summary: dict[str, Any] = json.loads(summary_file.read_text(encoding="utf-8"))
    summary["sinks"] = outcome
    summary["exit_code"] = code if code is not None else night_exit_code(summary, settings)
    with OutputSet(engine.out_dir, lambda _: summary_file, engine.file_mode) as outputs:
        write_json(outputs.aside(summary_file.name), summary)
        outputs.publish()
    row, schema = run_log_row(summary, settings)
    append_run(engine.dataset_root, row, schema, engine.file_mode)
