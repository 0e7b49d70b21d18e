"""Everything one run of the KOSCOM job needs, resolved from flags, environment and defaults."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from jobs.api.client import ClientSettings
from jobs.privacy import hide_input, pseudonym


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Everything one run needs, resolved from flags, environment and defaults."""

    input_path: Path
    out_dir: Path
    client: ClientSettings
    file_format: str = "parquet"
    ci_column: str = "ci"
    name_column: str = "kor_name"
    encoding: str | None = None
    fresh: bool = False
    keep_progress: bool = False
    max_error_rate: float = 1.0
    chunk_rows: int = 20_000
    dry_run: bool = False
    progress_tty: bool = False
    progress_interval: float = 30.0
    keep_columns: tuple[str, ...] = ()
    pseudonym_key: bytes | None = field(default=None, repr=False)
    sheet: str | None = None
    delimiter: str | None = None  # None: found with the header
    header_row: int | None = None  # None: the first of the first 20 rows holding the columns
    dataset_root: Path | None = None  # --dataset: out_dir is then ROOT/.work/YYYY-MM-DD
    run_date: dt.date = field(default_factory=lambda: dt.datetime.now().astimezone().date())
    sinks: tuple[str, ...] = ()
    file_mode: int = 0o600  # --file-mode: outputs; their folders to match
    max_age: int | None = None  # --max-age: carry answers younger than this many run dates
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def ci_field(self) -> str:
        return "ci_hmac" if self.pseudonym_key else "ci"

    def ci_value(self, ci: str) -> str:
        """The CI as outputs show it: as given, or its HMAC under --pseudonymize."""
        return pseudonym(self.pseudonym_key, ci) if self.pseudonym_key else ci

    def hidden(self, text: str) -> str:
        """Read text (a value, a column name) with each piece of a CI shown as its HMAC.

        Only under --pseudonymize: without it the outputs carry CIs anyway.
        """
        if not self.pseudonym_key or not text:
            return text
        return hide_input(text, lambda piece: f"hmac:{self.ci_value(piece)}")
