"""`member-recon report PATH`: one self-contained HTML page about a run or a dataset.

* A run folder (`--out DIR`, it holds summary.json): status counts and next actions,
  errors by reason, rejects by reason, requests, retries and 429s, and the request rate
  over the run (from the engine's `timeline` table).
* A `--dataset` root (it holds the run log): status, change events, error rate and
  requests per night, a table of the nights, and the latest night as above.

The page carries its chart runtime inline and fetches nothing: it opens from a file share
or a mail. It holds counts and reasons, never a CI or a name.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template
from typing import Any

from batch import UsageError
from batch.outputs import OutputSet, is_old_layout, night_file, run_log_path
from jobs.privacy import Redactor
from jobs.report import charts, data
from jobs.report.steps import Find, next_steps

PAGE = "report.html"
_TEMPLATE = Path(__file__).with_name("template.html")
_STATE_WORDS = {
    "done": "done · 완료",
    "paused": "paused · 일시 중지 (일일 한도)",
    "aborted": "aborted · 중단",
    "stopped": "stopped · 사용자 중지",
    "failed": "failed · 실패",
    "dry_run": "dry run · 점검만",
}


def write_report(path: Path) -> Path:
    """Write PATH/report.html for a run folder or a dataset root; return its path."""
    if data.present(path / "summary.json"):
        title, body, specs = run_page(path)
        like = path / "summary.json"
    elif data.present(run_log_path(path)):
        title, body, specs = dataset_page(path)
        like = run_log_path(path)
    elif is_old_layout(path):
        raise UsageError(f"{path} is a dataset in the earlier layout: run `member-recon migrate`")
    else:
        raise UsageError(
            f"{path} is neither a run folder (with summary.json) nor a --dataset root "
            "(with runs/runs.parquet)"
        )
    clean = Redactor(()).text  # the logs' redactor: what the page quotes was cleaned before
    specs_json = json.dumps(_cleaned(specs, clean), ensure_ascii=False, separators=(",", ":"))
    page = Template(_TEMPLATE.read_text(encoding="utf-8")).substitute(
        title=html.escape(clean(title)),
        body=clean(body),
        runtime=_script(charts.runtime()),
        specs=specs_json.replace("<", "\\u003c"),
    )
    try:
        with OutputSet(path, mode=like.stat().st_mode & 0o666) as outputs:
            outputs.aside(PAGE).write_text(page, encoding="utf-8")
            return outputs.publish()[0]
    except OSError as exc:  # a read-only mount, a full disk: say where, not how
        raise UsageError(
            f"{path / PAGE} cannot be written ({exc.strerror or exc}); copy the folder "
            "somewhere writable and run the report there"
        ) from None


def _cleaned(value: Any, clean: Any) -> Any:
    """Every string inside the charts' specs through `clean`, the structure untouched."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, Mapping):
        return {key: _cleaned(item, clean) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_cleaned(item, clean) for item in value]
    return value


class _Page:
    """Body HTML and the compiled charts it places."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.specs: dict[str, Any] = {}

    def add(self, text: str) -> None:
        self.parts.append(text)

    def chart(self, chart: Any | None, empty: str = "") -> None:
        if chart is None:
            if empty:
                self.add(f'<p class="empty">{html.escape(empty)}</p>')
            return
        name = f"chart{len(self.specs)}"
        self.specs[name] = charts.vega_lite(chart)
        self.add(f'<div class="chart" id="{name}"></div>')

    def body(self) -> str:
        return "\n".join(self.parts)


def run_page(folder: Path) -> tuple[str, str, dict[str, Any]]:
    summary = data.json_file(folder / "summary.json")
    page = _Page()
    title = f"member-recon · {summary.get('input', '')} · {_kst(summary.get('started_at'))}"
    page.add(
        f"<h1>member-recon run report · 실행 보고서</h1><p class=sub>{html.escape(str(folder))}</p>"
    )
    run_section(
        page,
        summary,
        data.run_samples(folder),
        data.reject_reasons(folder / "rejects.csv"),
        lambda name: folder / name if (folder / name).is_file() else None,
    )
    return title, page.body(), page.specs


def run_section(
    page: _Page,
    summary: Mapping[str, Any],
    samples: Sequence[Mapping[str, Any]],
    rejects: Mapping[str, int],
    find: Find,
) -> None:
    """One run: what it came to, what to do next, and how it went."""
    state = str(summary.get("state", "?"))
    page.add(
        "<p class=sub>"
        + " · ".join(
            html.escape(str(x))
            for x in (
                f"run {summary.get('run_id', '?')}",
                f"input {summary.get('input', '?')}",
                f"{_kst(summary.get('started_at'))} → {_kst(summary.get('finished_at'))}",
                f"exit {summary.get('exit_code', '?')}",
            )
        )
        + "</p>"
    )
    tiles = [
        ("state · 상태", _STATE_WORDS.get(state, state)),
        ("customers · 고객", summary.get("customers")),
        ("rejected rows · 제외 행", summary.get("rejected")),
        *((charts.STATUS[key][0], summary.get(key)) for key in charts.STATUS),
        ("requests · 요청", summary.get("requests")),
        # Under --max-age: customers asked tonight, and those whose answer was carried.
        ("asked · 조회", summary.get("asked") if summary.get("carried") else None),
        ("carried · 재사용", summary.get("carried") or None),
        ("retries · 재시도", summary.get("retries")),
        ("HTTP 429 · 한도 초과", summary.get("http_429")),
        ("outages · 장애", summary.get("outages")),
        ("duration · 소요", _duration(summary.get("duration_s"))),
        ("requests/s · 초당 요청", summary.get("requests_per_s")),
    ]
    page.add(
        '<div class="tiles">' + "".join(_tile(k, v) for k, v in tiles if v is not None) + "</div>"
    )
    page.add(
        "<h2>Next steps · 다음 할 일</h2><ul>"
        + "".join(f"<li>{html.escape(s)}</li>" for s in next_steps(summary, find))
        + "</ul>"
    )
    counts = {key: int(summary.get(key) or 0) for key in charts.STATUS}
    if any(counts.values()):
        page.add('<div class="row">')
        page.chart(charts.status_bars(counts, actions=False))
        page.chart(charts.status_bars(counts, actions=True))
        page.add("</div>")
    errors = dict(summary.get("errors_by_reason") or {})
    page.chart(
        charts.reason_bars(errors, "Errors by reason · 오류 사유") if errors else None,
        "No customer ended in error. · 오류 없음",
    )
    page.add(_reasons_table(errors, "error reason · 오류 사유"))
    asked_on = dict(summary.get("customers_by_asked_on") or {})
    if asked_on:  # under --max-age: how old tonight's answers are
        page.chart(charts.reason_bars(asked_on, "Answers by the night that asked them · 조회일"))
    page.chart(charts.rate_line(samples), "No request timeline was kept for this run.")
    page.chart(
        charts.reason_bars(rejects, "Rejected rows by reason · 제외 사유") if rejects else None,
        "No input row was rejected. · 제외된 행 없음",
    )
    page.add(_reasons_table(rejects, "reject reason · 제외 사유"))


def dataset_page(root: Path) -> tuple[str, str, dict[str, Any]]:
    nights = data.nights(root)
    page = _Page()
    page.add("<h1>member-recon dataset report · 일자별 추이</h1>")
    page.add(f"<p class=sub>{html.escape(str(root))}</p>")
    done = [n for n in nights if n["state"] == "done"]
    if done:
        page.chart(charts.night_status(done))
        page.chart(charts.night_events(data.events(root)), "No change between nights. · 변경 없음")
        page.chart(
            charts.night_lines(
                done, "error_rate", "Error rate by night · 일자별 오류율", "error rate · 오류율"
            )
        )
    page.chart(
        charts.night_lines(nights, "requests", "Requests by night · 일자별 요청", "requests · 요청")
    )
    page.add(_nights_table(nights))
    if done:
        day = dt.date.fromisoformat(done[-1]["run_date"])
        summary_file = night_file(root, "summary.json", day)
        if data.present(summary_file):
            page.add(f"<h2>Latest night · 최근 실행 {day.isoformat()}</h2>")
            run_section(
                page,
                data.json_file(summary_file),
                data.parquet_rows(night_file(root, "timeline.parquet", day)),
                data.reject_reasons(night_file(root, "rejects.csv", day)),
                lambda name: _night_file(root, name, day),
            )
    return f"member-recon dataset · {root.name}", page.body(), page.specs


def _nights_table(nights: Sequence[Mapping[str, Any]]) -> str:
    heads = (
        "night",
        "state",
        "runs",
        "customers",
        "linked",
        "non_member",
        "no_linked_account",
        "error",
        "error rate",
        "carried",
        "requests",
        "retries",
        "all runs' requests",
        "exit",
    )
    rows = []
    for n in reversed(nights[-62:]):
        rate = n.get("error_rate")
        cells = (
            n["run_date"],
            n.get("state"),
            n["runs"],
            n.get("customers"),
            n.get("linked"),
            n.get("non_member"),
            n.get("no_linked_account"),
            n.get("error"),
            f"{rate:.1%}" if rate is not None else "",
            n.get("carried"),
            n["requests"],
            n["retries"],
            n["all_requests"],
            n.get("exit_code"),
        )
        rows.append("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in heads)
    body = "".join(rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f"<h2>Nights · 실행 목록</h2>{table}"


def _reasons_table(reasons: Mapping[str, int], head: str) -> str:
    """Every reason in full beside its chart, the most frequent first."""
    if not reasons:
        return ""
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    body = "".join(f"<tr><td>{html.escape(r)}</td><td>{n:,}</td></tr>" for r, n in ranked)
    return (
        f'<table class="reasons"><thead><tr><th>{html.escape(head)}</th><th>count · 건수</th>'
        f"</tr></thead><tbody>{body}</tbody></table>"
    )


def _night_file(root: Path, name: str, day: dt.date) -> Path | None:
    """A night's file in a dataset (each in its table's partition), if the night has it."""
    path = night_file(root, name, day)
    return path if path.is_file() else None


def _tile(label: str, value: Any) -> str:
    shown, named = _fmt(value), html.escape(label)
    return f'<div class="tile"><div class="v">{shown}</div><div class="k">{named}</div></div>'


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return html.escape(str(value))


def _duration(seconds: Any) -> str | None:
    if seconds is None:
        return None
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}h {minutes % 60}m {secs}s" if minutes >= 60 else f"{minutes}m {secs}s"


def _kst(stamp: Any) -> str:
    if not stamp:
        return "?"
    moment = stamp if isinstance(stamp, dt.datetime) else dt.datetime.fromisoformat(str(stamp))
    return moment.astimezone(charts.KST).strftime("%Y-%m-%d %H:%M:%S KST")


def _script(code: str) -> str:
    """JavaScript safe inside a <script> element: no `</script` or `<!--` can end it early."""
    return re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE).replace("<!--", "<\\!--")
