"""The report's charts: Vega-Lite specs built with altair, drawn by vega-embed in the page.

The page carries the Vega runtime inline (vl-convert bundles it offline, as altair's own
inline HTML does) and each chart's spec with its data, so it needs no network.
Times are shown in KST whatever the reader's zone: they are given as KST wall-clock
instants on a UTC scale.
"""

from __future__ import annotations

import datetime as dt
import itertools
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

KST = dt.timezone(dt.timedelta(hours=9), "KST")
FONT = "'Noto Sans KR', 'Malgun Gothic', 'Apple SD Gothic Neo', NanumGothic, sans-serif"
STATUS = {  # status -> (label, next action, colour)
    "linked": ("linked · 계좌 연결됨", "none · 조치 없음", "#2e7d32"),
    "non_member": ("non_member · 포탈 비회원", "portal_signup · 포탈 가입 안내", "#f9a825"),
    "no_linked_account": (
        "no_linked_account · 연결 계좌 없음",
        "link_account · 가상계좌 연결 안내",
        "#1565c0",
    ),
    "error": ("error · 오류", "retry · 재조회", "#c62828"),
}
SERIES = {
    "requests": "requests · 요청",
    "retries": "retries · 재시도",
    "http_429": "429 · 한도 초과",
}
MAX_POINTS = 600
WIDTH = 640
WRAP = 46  # characters on one line of a reason's label
MAX_REASONS = 20  # bars; the table beside the chart lists every reason


def whole_ticks(maximum: int) -> list[int]:
    """Whole-number ticks from 0 to `maximum` or just past it: at most 8 steps of 1, 2, 5, 10…"""
    step = 1
    for power in itertools.count():
        step = next((f * 10**power for f in (1, 2, 5) if maximum <= 8 * f * 10**power), 0)
        if step:
            break
    top = -(-maximum // step) * step
    return list(range(0, top + 1, step))


def count_scale(maximum: int) -> tuple[Any, Any]:
    """An axis and scale for counts: whole numbers only, never `0 1 1 2 2`."""
    alt = _alt()
    ticks = whole_ticks(max(int(maximum), 1))
    axis = alt.Axis(values=ticks, format=",d", tickMinStep=1)
    return axis, alt.Scale(domain=[0, ticks[-1]], nice=False)


def wrapped(text: str) -> str:
    """A label on lines of at most WRAP characters (the axis draws each line), none lost."""
    return "\n".join(textwrap.wrap(text, WRAP, break_long_words=True)) or text


def _alt() -> Any:
    import altair as alt  # noqa: PLC0415  (lazy: only the report needs it)

    return alt


def _configured(chart: Any, title: str) -> Any:
    return (
        chart.properties(title=title, width=WIDTH)
        .configure(font=FONT)
        # Limit 0 is none: a label is never cut (reason labels come wrapped instead).
        .configure_axis(labelFontSize=12, titleFontSize=12, labelLimit=0)
        .configure_title(fontSize=15, anchor="start")
        .configure_legend(labelFontSize=12, labelLimit=0)
        .configure_view(stroke=None)
    )


def status_bars(counts: Mapping[str, int], *, actions: bool) -> Any:
    """Customers by status, or by the next action each status asks for."""
    alt = _alt()
    rows = [
        {"label": label[1] if actions else label[0], "status": key, "n": int(counts.get(key, 0))}
        for key, label in STATUS.items()
    ]
    colours = alt.Scale(domain=list(STATUS), range=[v[2] for v in STATUS.values()])
    axis, scale = count_scale(max(int(counts.get(key, 0)) for key in STATUS))
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y("label:N", sort=None, title=None),
        x=alt.X("n:Q", title="customers · 고객 수", axis=axis, scale=scale),
    )
    bars = base.mark_bar().encode(
        color=alt.Color("status:N", scale=colours, legend=None),
        tooltip=[alt.Tooltip("label:N"), alt.Tooltip("n:Q", format=",")],
    )
    text = base.mark_text(align="left", dx=4).encode(text=alt.Text("n:Q", format=","))
    title = "Next actions · 다음 조치" if actions else "Customers by status · 상태별 고객"
    return _configured((bars + text).properties(height=28 * len(rows)), title)


def reason_bars(reasons: Mapping[str, int], title: str) -> Any:
    """A bar per distinct reason, the most frequent first, its label whole (wrapped)."""
    alt = _alt()
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))[:MAX_REASONS]
    rows = [{"reason": reason, "label": wrapped(reason), "n": n} for reason, n in ranked]
    axis, scale = count_scale(max(n for _, n in ranked))
    lines = sum(len(wrapped(reason).splitlines()) for reason, _ in ranked)
    base = alt.Chart(alt.Data(values=rows)).encode(
        # One band per distinct reason: two reasons that start alike never share a bar.
        y=alt.Y(
            "label:N",
            sort=None,
            title=None,
            axis=alt.Axis(labelExpr="split(datum.label, '\\n')"),
        ),
        x=alt.X("n:Q", title="count · 건수", axis=axis, scale=scale),
    )
    bars = base.mark_bar(color="#c62828").encode(
        tooltip=[alt.Tooltip("reason:N", title="reason"), alt.Tooltip("n:Q", format=",")]
    )
    text = base.mark_text(align="left", dx=4).encode(text=alt.Text("n:Q", format=","))
    height = max(18 * lines + 10 * len(rows), 40)
    return _configured((bars + text).properties(height=height), title)


def rates(samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per-second rates between samples of cumulative counts, at most MAX_POINTS a series.

    A session's counts start at zero when it starts: its first sample is a rate too, so a
    run sampled once still has a timeline.
    """
    step = max(1, -(-len(samples) // MAX_POINTS))
    points = list(samples[::step])
    if samples and points[-1] is not samples[-1]:
        points.append(samples[-1])
    rows = []
    previous: Mapping[str, Any] | None = None
    for after in points:
        before = previous
        previous = after
        if before is None or before.get("session_started") != after.get("session_started"):
            started = after.get("session_started")  # a resume: no rate across the gap
            if not isinstance(started, dt.datetime):
                continue
            before = {"at": started, **dict.fromkeys(SERIES, 0)}
        seconds = (after["at"] - before["at"]).total_seconds()
        if seconds <= 0:
            continue
        at, kst = _kst_ms(after["at"]), after["at"].astimezone(KST).strftime("%H:%M:%S")
        for key, label in SERIES.items():
            if after.get(key) is not None and before.get(key) is not None:
                rate = max((after[key] - before[key]) / seconds, 0.0)
                rows.append({"at": at, "kst": kst, "series": label, "per_s": round(rate, 2)})
    return rows


def rate_line(samples: Sequence[Mapping[str, Any]]) -> Any | None:
    """Requests, retries and 429s per second over the run; None without a sample."""
    alt = _alt()
    rows = rates(samples)
    if not rows:
        return None
    colours = alt.Scale(domain=list(SERIES.values()), range=["#1565c0", "#f9a825", "#c62828"])
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_line(interpolate="step-after", point=True)  # one sample is still a point
        .encode(
            x=alt.X(
                "at:T",
                scale=alt.Scale(type="utc"),
                axis=alt.Axis(format="%H:%M:%S", labelAngle=0),
                title="time (KST) · 시각",
            ),
            y=alt.Y("per_s:Q", title="per second · 초당"),
            color=alt.Color("series:N", scale=colours, title=None),
            tooltip=[
                alt.Tooltip("kst:N", title="KST"),
                alt.Tooltip("series:N"),
                alt.Tooltip("per_s:Q"),
            ],
        )
        .properties(height=220)
    )
    return _configured(chart, "Request rate over the run · 시간대별 초당 요청")


def night_status(nights: Sequence[Mapping[str, Any]]) -> Any:
    """Customers by status, a stacked bar per night."""
    alt = _alt()
    rows = [
        {"night": n["run_date"], "label": label[0], "status": key, "n": int(n.get(key) or 0)}
        for n in nights
        for key, label in STATUS.items()
    ]
    colours = alt.Scale(
        domain=[v[0] for v in STATUS.values()], range=[v[2] for v in STATUS.values()]
    )
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar()
        .encode(
            x=alt.X("night:O", title="night · 실행일"),
            y=alt.Y("n:Q", title="customers · 고객 수", axis=_stacked_axis(rows)),
            color=alt.Color("label:N", scale=colours, title=None),
            tooltip=["night:O", "label:N", alt.Tooltip("n:Q", format=",")],
        )
        .properties(height=220)
    )
    return _configured(chart, "Status by night · 일자별 상태")


def night_events(events: Sequence[Mapping[str, Any]]) -> Any | None:
    """Change events against the night before, stacked per night; None without any."""
    alt = _alt()
    if not events:
        return None
    chart = (
        alt.Chart(alt.Data(values=list(events)))
        .mark_bar()
        .encode(
            x=alt.X("night:O", title="night · 실행일"),
            y=alt.Y("n:Q", title="events · 변경 건수", axis=_stacked_axis(events)),
            color=alt.Color("event:N", title=None, scale=alt.Scale(scheme="tableau10")),
            tooltip=["night:O", "event:N", alt.Tooltip("n:Q", format=",")],
        )
        .properties(height=220)
    )
    return _configured(chart, "Changes by night · 일자별 변경")


def night_lines(nights: Sequence[Mapping[str, Any]], field: str, title: str, axis: str) -> Any:
    """One figure per night as a line with points (error rate, requests)."""
    alt = _alt()
    rows = [{"night": n["run_date"], "v": n[field]} for n in nights if n.get(field) is not None]
    fmt = ".1%" if field == "error_rate" else ",d"
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_line(point=True, color="#c62828" if field == "error_rate" else "#1565c0")
        .encode(
            x=alt.X("night:O", title="night · 실행일"),
            y=alt.Y(
                "v:Q",
                title=axis,
                axis=alt.Axis(format=fmt)
                if field == "error_rate"
                else count_scale(max((int(r["v"]) for r in rows), default=1))[0],
            ),
            tooltip=["night:O", alt.Tooltip("v:Q", format=fmt, title=axis)],
        )
        .properties(height=200)
    )
    return _configured(chart, title)


def _stacked_axis(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A count axis for bars stacked per night: whole numbers up to the tallest night."""
    totals: dict[Any, int] = {}
    for row in rows:
        totals[row["night"]] = totals.get(row["night"], 0) + int(row["n"])
    return count_scale(max(totals.values(), default=1))[0]


def vega_lite(chart: Any) -> dict[str, Any]:
    """The chart's Vega-Lite spec, data inline."""
    return dict(chart.to_dict())


def runtime() -> str:
    """Vega, Vega-Lite and vega-embed in one minified script, as vl-convert bundles them
    offline for altair's own inline HTML (the same versions altair writes specs for)."""
    import altair as alt  # noqa: PLC0415
    import vl_convert as vlc  # noqa: PLC0415

    version = ".".join(alt.SCHEMA_VERSION.removeprefix("v").split(".")[:2])
    return str(vlc.javascript_bundle(None, vl_version=version))  # type: ignore[arg-type]


def _kst_ms(moment: dt.datetime) -> int:
    """A KST wall-clock time as epoch milliseconds on a UTC scale (read the same anywhere)."""
    wall = moment.astimezone(KST).replace(tzinfo=dt.UTC)
    return int(wall.timestamp() * 1000)
