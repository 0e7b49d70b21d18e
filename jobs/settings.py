"""Everything one run of the KOSCOM job needs, resolved from flags, environment and defaults."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from batch import BatchSettings
from jobs.api.client import ClientSettings
from jobs.privacy import hide_input, pseudonym

STALL_MARGIN = 600.0  # s: retries back off 15 s at most, five times, on two questions
DISPLAY_ZONE = "Asia/Seoul"  # xlsx shows times in KST, as the service's staff read them
# CP949 is a superset of EUC-KR, and what Korean Excel writes.
LEGACY_ENCODINGS = {"cp949": "cp949", "euc_kr": "cp949", "johab": "cp949", "iso2022_kr": "cp949"}


@dataclass(frozen=True, slots=True)
class RunSettings:
    """The engine's settings, the client's, and what only the KOSCOM job reads."""

    engine: BatchSettings  # the input, the folder, the dataset, the run date: run_batch's
    client: ClientSettings  # the API, its key, pacing and retries: KoscomClient's
    ci_column: str = "ci"
    name_column: str = "kor_name"
    max_error_rate: float = 1.0
    keep_columns: tuple[str, ...] = ()
    pseudonym_key: bytes | None = field(default=None, repr=False)
    sinks: tuple[str, ...] = ()
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def run_date(self) -> dt.date:
        """The night this run answers for (the engine's; always given for this job)."""
        return self.engine.run_date or dt.datetime.now().astimezone().date()

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
