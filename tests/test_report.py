"""`member-recon report`: one offline page, drawn by a real browser (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from jobs.sandbox.server import Fault
from tests.bi_data import DAYS, three_nights
from tests.conftest import customers, job, run_cli, write_csv

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium here (make test installs Debian's with scripts/ensure-chromium.sh)")


def render(page: Path, tmp_path: Path) -> tuple[str, Image.Image]:
    """The page's DOM after its scripts ran, and a screenshot of it."""
    binary = browser()
    common = [
        binary,
        "--headless",
        "--no-sandbox",  # as root
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1400,2400",
        "--virtual-time-budget=10000",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: the page must need none
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return dom, Image.open(shot).convert("RGB")


def charts_drawn(dom: str) -> tuple[int, int]:
    """(chart slots on the page, charts the browser drew as SVG)."""
    slots = re.findall(r'<div [^>]*id="chart\d+"[^>]*>', dom)
    drawn = [s for s in slots if 'data-rendered="yes"' in s]
    return len(slots), len(drawn) if dom.count("<svg") >= len(drawn) else 0


def colours(image: Image.Image) -> dict[tuple[int, int, int], int]:
    """Pixels by colour."""
    return {colour: n for n, colour in image.getcolors(maxcolors=1 << 24) or []}


def not_blank(image: Image.Image) -> tuple[float, int]:
    """The share of pixels that are not white, and how many colours the page shows."""
    counts = colours(image)
    inked = sum(n for colour, n in counts.items() if sum(colour) < 720) / sum(counts.values())
    return inked, len(counts)


def assert_offline(text: str) -> None:
    """Nothing outside the inline scripts loads anything (render() also cuts the network)."""
    markup = re.sub(r"<script>.*?</script>", "", text, flags=re.DOTALL)
    assert markup.count("<script") == 0
    assert not re.search(r"<(img|iframe|link|object)\b", markup)
    assert not re.search(r"@import|url\(", markup)
    assert len(text.encode()) < 1_500_000  # small enough for a mail


@pytest.fixture
def run_folder(sandbox, tmp_path: Path) -> tuple[Path, list[tuple[str, str]]]:
    people = customers(60)
    odd = frozenset(ci for ci, _ in people[:4])
    sandbox.sandbox.configure(
        faults=(
            Fault("unknown_result", 1.0, api="register/search", cis=odd),
            Fault("http503", first_attempts=1),
        )
    )
    rows = [*people, ("short", "홍길동"), (people[5][0], "다른이름")]
    path = write_csv(tmp_path / "in.csv", rows)
    result = job(sandbox, path, tmp_path / "run", "--max-error-rate", "0.5", "--rate", "200")
    assert result.exit_code == 0, result.stderr
    assert f"for a report page, run: member-recon report {tmp_path / 'run'}" in result.stdout
    return tmp_path / "run", people


def test_a_run_report_shows_counts_actions_errors_and_the_rate(run_folder, tmp_path) -> None:
    folder, people = run_folder
    made = run_cli(["report", str(folder)])
    assert made.exit_code == 0, made.stderr
    page = folder / "report.html"
    text = page.read_text(encoding="utf-8")
    assert_offline(text)
    for words in (
        "Customers by status · 상태별 고객",
        "Next actions · 다음 조치",
        "Errors by reason · 오류 사유",
        "Request rate over the run",
        "Rejected rows by reason · 제외 사유",
        "unknown result",
        "portal_signup",
    ):
        assert words in text, words
    for ci, name in people:
        assert ci not in text
        assert name not in text
    dom, image = render(page, tmp_path)
    slots, drawn = charts_drawn(dom)
    assert slots == drawn == 5
    inked, shades = not_blank(image)
    assert inked > 0.03
    assert shades > 50
    assert colours(image).get((46, 125, 50), 0) > 500  # the linked bars' green was drawn


def test_a_dataset_report_shows_the_trend_over_nights(sandbox_thread, tmp_path: Path) -> None:
    root = three_nights(sandbox_thread, tmp_path)
    made = run_cli(["report", str(root)])
    assert made.exit_code == 0, made.stderr
    text = (root / "report.html").read_text(encoding="utf-8")
    assert_offline(text)
    for words in (
        "Status by night",
        "Changes by night",
        "Error rate by night",
        "Requests by night",
    ):
        assert words in text, words
    assert all(day in text for day in DAYS)
    dom, image = render(root / "report.html", tmp_path)
    slots, drawn = charts_drawn(dom)
    assert slots == drawn >= 6  # four trends, then the latest night's own charts
    assert len(re.findall(r"<tr><td>2026-11-0\d</td>", dom)) == len(DAYS)
    inked, shades = not_blank(image)
    assert inked > 0.03
    assert shades > 50
    assert not list(root.glob("**/.report.html.partial-*"))


def test_a_stopped_run_still_gets_a_report_from_its_samples(sandbox, tmp_path: Path) -> None:
    sandbox.sandbox.configure(daily_cap=30, latency=0.15)  # long enough for two samples
    path = write_csv(tmp_path / "in.csv", customers(40))
    paused = job(sandbox, path, tmp_path / "run", "--concurrency", "2")
    assert paused.exit_code == 4
    assert f"for a report page, run: member-recon report {tmp_path / 'run'}" in paused.stderr
    assert not (tmp_path / "run" / "timeline.parquet").exists()
    assert run_cli(["report", str(tmp_path / "run")]).exit_code == 0
    text = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "paused" in text
    assert "after 09:00 KST" in text
    assert "Request rate over the run" in text


def test_report_on_a_folder_that_is_neither_is_exit_2(tmp_path: Path) -> None:
    result = run_cli(["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "neither a run folder" in result.stderr
