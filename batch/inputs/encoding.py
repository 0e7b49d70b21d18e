"""Which encoding a text file is in: a BOM's, UTF-8 if every byte decodes, else a guess."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import IO

from batch.errors import InputError
from batch.inputs import sniff

_BLOCK = 1 << 20
_SNIFF_BYTES = 256 * 1024


def detect(stream: IO[bytes], name: str, legacy: Mapping[str, str]) -> str:
    """A BOM's (UTF-8, UTF-16); UTF-8 if every byte decodes; else `legacy[guess]`.

    The whole file is decoded as UTF-8 (a block at a time): a CP949 byte on the last row
    still counts. Only then is the first part handed to charset detection.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    sample = b""
    try:
        while block := stream.read(_BLOCK):
            if not sample and (bom := sniff.bom_encoding(block)):
                return bom
            if len(sample) < _SNIFF_BYTES:
                sample += block[: _SNIFF_BYTES - len(sample)]
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8-sig"
    # Imported here: detection is needed only for legacy exports, and it is slow to import.
    import charset_normalizer  # noqa: PLC0415

    guesses = [m.encoding for m in charset_normalizer.from_bytes(sample)]
    for guess in guesses:
        if guess in legacy:
            return legacy[guess]
    seen = guesses[0] if guesses else "unknown"
    known = "/".join(sorted({c.upper() for c in legacy.values()}))
    raise InputError(
        f"input {name} is neither UTF-8 nor {known or 'UTF-16'} (looks like {seen})",
        setting="encoding",
    )
