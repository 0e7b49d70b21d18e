"""Personal data and secrets: pseudonyms, masks, sealing, and the one redactor for all text.

A customer's CI (88 characters of base64, regulated credit information) and the API key
must never reach a file or a stream. "CI-shaped" has one definition here: a run of
characters of the base64 alphabets (standard, url-safe, percent-escaped; hex is a subset),
`PIECE` characters or longer, since 16 characters of a CI are enough to find its owner.
Each place that needs a stricter or looser test names its reason next to its pattern.

Sealing uses AES-GCM from `cryptography` under a key derived by HKDF; pseudonyms are
HMAC-SHA256 from the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import quote

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from batch import UsageError

PIECE = 16  # the shortest run of a CI that counts as a piece of it
KEY_PIECE = 4  # the shortest run of a secret that counts as a piece of it
MASK = "…"

# The one CI-shaped pattern: base64, url-safe base64 and percent-escaped characters.
_RUN = r"(?:[A-Za-z0-9+/=_-]|%[0-9A-Fa-f]{2})"
CI_SHAPED = re.compile(f"{_RUN}{{{PIECE},}}")
# Input values are standard base64 at most (the contract's CI); url-safe marks and "%" in
# them are ordinary text (dates, codes), so the input side looks at the standard alphabet.
_INPUT_SHAPED = re.compile(f"[A-Za-z0-9+/=]{{{PIECE},}}")
_HEX = re.compile(r"[0-9A-Fa-f]{32,}")  # a CI's hex form is 176 characters; ids are shorter
# What text from the API may keep once the pieces are gone: letters, digits, Hangul, marks.
# (NUL marks where a piece was cut, until it is shown as one mask.)
_UNSAFE = re.compile(r"[^\x00 0-9A-Za-z가-힣ㄱ-ㅎㅏ-ㅣ.,:;()_'-]+")
_SPACES = re.compile(r"\s+")
_TAIL = re.compile(f"{_RUN}+$")
# A database quotes the row it refused ("Failing row contains (…)", "Key (ci)=(…)",
# "COPY t, line 1: "…""): a CI and a name in a traceback. Its reason is kept, the row not.
_QUOTED_ROW = re.compile(
    r"(Failing row contains |Key \([^)]*\)=)\((?:[^()]|\([^()]*\))*\)"
    r"|(COPY [^,\n]+, line \d+(?:, column [^:\n]+)?: )[^\n]*"
)
_INFO = b"member-recon progress store v1"
_NONCE = 12


def pseudonym(key: bytes, ci: str) -> str:
    """HMAC-SHA256 of a CI, hex: joinable across runs with the same key, not reversible."""
    return hmac.new(key, ci.encode(), hashlib.sha256).hexdigest()


def mask_ci(ci: str) -> str:
    """A CI as it may appear in logs: never more than its first 4 characters."""
    return f"{ci[:4]}{MASK}({len(ci)})"


def mask_name(name: str) -> str:
    return f"{name[:1]}{'*' * max(0, len(name) - 1)}"


def mask_value(value: str | None) -> str | None:
    """Another column's value as a dry run shows it: its first 2 characters and its length."""
    if not value:
        return value
    return f"{value[:2]}{'*' * max(0, len(value) - 2)}"


def _mixed_case(run: str) -> bool:
    return any(c.isupper() for c in run) and any(c.islower() for c in run)


def _random_looking(run: str) -> bool:
    telling = len(run) >= 2 * PIECE or any(c.isdigit() for c in run)
    return telling and _mixed_case(run)


def _path_like(run: str) -> bool:
    # A path's parts are short words; a CI's "/" falls once in 64 characters, so a CI
    # whose every part between them is shorter than a piece does not happen.
    return "/" in run.strip("/") and all(len(part) < PIECE for part in run.split("/"))


def input_pieces(value: str, ci: str | None = None) -> list[tuple[int, int]]:
    """Where a value read from the input holds a CI's piece: `ci`'s own, or any CI-shaped run.

    Input columns hold long digit ids, account numbers and upper-case codes that are not
    CIs, so a run counts only when it mixes upper and lower case; a CI's 16 characters
    lack one of the two with a chance of 1 in 2,000, and its 30 characters of 1 in 3 M.
    """
    spans = [m.span() for m in _INPUT_SHAPED.finditer(value) if _mixed_case(m.group())]
    if ci:
        spans += _known_spans(value, _grams(ci, PIECE), PIECE)
    return spans


def hide_input(value: str, replace: Any, ci: str | None = None) -> str:
    """`value` with each CI piece replaced by `replace(piece)` (an HMAC, for rejects)."""
    return _substitute(value, input_pieces(value, ci), replace)


class Redactor:
    """The one redactor: secrets and CI pieces out of logs, tracebacks, messages and outputs."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # A secret shorter than 8 characters would mask ordinary words; real keys are longer.
        self._secrets = tuple(s for s in secrets if len(s) >= 8)
        self._grams = frozenset().union(*(_secret_grams(s) for s in self._secrets))

    def text(self, value: str) -> str:
        """Text for logs, tracebacks and exit messages: secrets and CI-shaped runs masked.

        Logs name files, settings (HTTPS_PROXY=http…) and classes (ClientResponseError),
        so a run of the alphabet is hidden only when it looks random: both cases and a
        digit, or both cases over 32 characters (a CI's 16 characters lack a digit 1 time
        in 15, its 32 one time in 230), and not a path of short parts; or a long hex run.
        Text from the API reaches logs only after `outside` cleaned it.
        """
        for secret in self._secrets:
            value = value.replace(secret, MASK)
        value = _QUOTED_ROW.sub(lambda m: f"{m.group(1) or m.group(2)}({MASK})", value)
        spans = _known_spans(value, self._grams, KEY_PIECE, ordinary_words=False)
        for match in CI_SHAPED.finditer(value):
            run = match.group()
            if _random_looking(run) and not _path_like(run):
                spans.append(match.span())
        spans += [m.span() for m in _HEX.finditer(value)]
        return _substitute(value, spans, lambda _: MASK)

    def outside(self, value: Any, limit: int) -> str:
        """Text the API sent, as an output may carry it: no piece of a key or a CI, plain, short.

        Nothing the API documents as text holds 16 base64 characters in a row, so any
        such run goes, whatever its case; then a key's pieces, also with its punctuation
        in other marks; then everything outside a safe alphabet.
        """
        text = _cut(str(value), limit * 8)  # a 100 KB field is cut before it is searched
        spans = _known_spans(text, self._grams, KEY_PIECE)
        spans += [m.span() for m in CI_SHAPED.finditer(text)]
        text = _substitute(text, spans, lambda _: "\x00")
        cleaned = _SPACES.sub(" ", _UNSAFE.sub(" ", text.replace("\x00", " \x00 "))).strip()
        cleaned = re.sub(r"\x00( \x00)*", MASK, cleaned)
        return _cut(cleaned, limit).strip()

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """As a structlog processor: every string value of the event."""
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = self.text(value)
        return event


class Sealer:
    """Seals and opens JSON-ready values; a wrong key is a usage error, never garbage.

    Under --pseudonymize the progress store keeps each customer sealed, and its key for
    deduplication is the CI's pseudonym, the same the outputs show.
    """

    def __init__(self, pseudonym_key: bytes) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
        self._aead = AESGCM(derived.derive(pseudonym_key))
        # Names the key without revealing it, so a resume with another key is refused early.
        self.key_id = hmac.new(pseudonym_key, _INFO, hashlib.sha256).hexdigest()[:16]

    def seal(self, value: Any) -> str:
        nonce = os.urandom(_NONCE)
        return base64.b64encode(
            nonce + self._aead.encrypt(nonce, orjson.dumps(value), None)
        ).decode()

    def open(self, sealed: str) -> Any:
        raw = base64.b64decode(sealed)
        try:
            return orjson.loads(self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], None))
        except InvalidTag:
            raise UsageError(
                "the progress store was sealed under another KOSCOM_PSEUDONYM_KEY", setting="fresh"
            ) from None


def _cut(text: str, limit: int) -> str:
    """`text` cut to `limit`, without the cut end of a run (the part before it may be short)."""
    if len(text) <= limit:
        return text
    return _TAIL.sub("", text[:limit])


def _fold(text: str) -> str:
    """Every mark as one: a key echoed with its punctuation turned to spaces still matches."""
    return "".join(c if c.isalnum() else "\x01" for c in text)


def _grams(text: str, size: int) -> frozenset[str]:
    folded = _fold(text)
    return frozenset(folded[i : i + size] for i in range(len(folded) - size + 1))


def _secret_grams(secret: str) -> frozenset[str]:
    """The secret's pieces as written, and as a URL or a form would escape it."""
    return _grams(secret, KEY_PIECE) | _grams(quote(secret, safe=""), KEY_PIECE)


def _known_spans(
    text: str, grams: frozenset[str], size: int, *, ordinary_words: bool = True
) -> list[tuple[int, int]]:
    """Where `text` holds a run of `size` characters of one of `grams`.

    In logs (`ordinary_words` False) only pieces that mix a letter with a digit or a capital
    count: a weak key such as "sandbox-key" would otherwise mask words ("sand", "key-"),
    and a percent-escaped one times of day ("7%3A24"), all over them.
    """
    if not grams:
        return []
    folded = _fold(text)
    spans = []
    for i in range(len(folded) - size + 1):
        gram = folded[i : i + size]
        if gram in grams and (ordinary_words or _unusual(gram)):
            spans.append((i, i + size))
    return spans


def _unusual(gram: str) -> bool:
    """A letter with a digit or a capital: not a word, a number or a time of day."""
    letters = [c for c in gram if c.isalpha()]
    return bool(letters) and (any(c.isdigit() for c in gram) or any(c.isupper() for c in letters))


def _substitute(text: str, spans: list[tuple[int, int]], replace: Any) -> str:
    """`text` with each union of overlapping spans replaced by `replace(covered text)`."""
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, last = [], 0
    for start, end in merged:
        out += [text[last:start], replace(text[start:end])]
        last = end
    out.append(text[last:])
    return "".join(out)
