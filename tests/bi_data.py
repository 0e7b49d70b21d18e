"""A three-night --dataset root and a --format csv folder, made once for the BI tests."""

from __future__ import annotations

import re
from pathlib import Path

from jobs.sandbox.server import SandboxConfig, SandboxThread
from tests.conftest import API_KEY, base_args, customers, run_cli, write_csv

DAYS = ("2026-11-01", "2026-11-02", "2026-11-03")
PEOPLE = 40
DOCS = Path(__file__).resolve().parents[1] / "docs" / "schema.md"


def three_nights(sandbox: SandboxThread, folder: Path) -> Path:
    """ROOT with three finished nights; each night's answers differ (the sandbox's salt)."""
    root = folder / "recon"
    path = write_csv(folder / "in.csv", customers(PEOPLE))
    for day in DAYS:
        sandbox.sandbox.reset(SandboxConfig(api_key=API_KEY, answer_salt=day))
        args = base_args(sandbox, path, root)
        at = args.index("--out")
        args[at : at + 2] = ["--dataset", str(root), "--run-date", day]
        result = run_cli(args)
        assert result.exit_code == 0, result.stderr
    sandbox.sandbox.reset(SandboxConfig(api_key=API_KEY))
    return root


def csv_folder(sandbox: SandboxThread, folder: Path) -> Path:
    out = folder / "out"
    path = write_csv(folder / "in.csv", customers(PEOPLE))
    result = run_cli([*base_args(sandbox, path, out), "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    return out


def recipes() -> dict[str, str]:
    """docs/schema.md's code blocks that start with `# recipe: NAME` (or `-- recipe: NAME`)."""
    text = DOCS.read_text(encoding="utf-8")
    found = {}
    for block in re.findall(r"```(?:python|sql)\n(.*?)```", text, flags=re.DOTALL):
        head = re.match(r"(?:#|--) recipe: (\S+)\n", block)
        if head:
            found[head.group(1)] = block
    return found
