"""README and docs/: a short README that links every page, and no link or path leading nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 250

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
# A module, script or page named in prose: it must exist in the tree, so renames show up here.
FILE_PATH = re.compile(
    r"(?<![\w./-])((?:batch|jobs|tests|scripts|bench|docs)/[\w/.-]*\w\.(?:py|md|sh|html))"
)


def pages(root: Path) -> list[Path]:
    """README.md and every page under docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


CHECKED = [*pages(ROOT), ROOT / "bench" / "README.md"]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page's headings make, repeats numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    """Each relative link of a page whose file or heading does not exist."""
    broken = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # http:, https:, mailto: are not files here
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{page.name}: {target} (no such heading)")
    return broken


def missing_paths(page: Path, root: Path) -> list[str]:
    """Each repository path named in a page that is not in the tree."""
    text = page.read_text(encoding="utf-8")
    named = sorted(set(FILE_PATH.findall(text)))
    return [f"{page.name}: {p}" for p in named if not (root / p).exists()]


def test_readme_fits_a_few_screens() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


@pytest.mark.parametrize("page", CHECKED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


@pytest.mark.parametrize("page", CHECKED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_named_file_exists(page: Path) -> None:
    assert missing_paths(page, ROOT) == []


def test_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {target.partition("#")[0] for target in LINK.findall(readme)}
    unlinked = [p.name for p in pages(ROOT)[1:] if f"docs/{p.name}" not in linked]
    assert unlinked == []


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """A missing file, a missing heading and a stale module path are each reported."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## Where it differs\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/a.md) [ok](docs/a.md#where-it-differs) [web](https://example.org/x)\n"
        "[gone](docs/b.md) [no heading](docs/a.md#nowhere)\n"
        "```\n[in code](docs/c.md)\n```\n"
        "see batch/ratelimit.py\n",
        encoding="utf-8",
    )
    assert broken_links(readme) == [
        "README.md: docs/b.md (no such file)",
        "README.md: docs/a.md#nowhere (no such heading)",
    ]
    missing = missing_paths(readme, tmp_path)
    assert "README.md: batch/ratelimit.py" in missing
    assert "README.md: docs/a.md" not in missing
