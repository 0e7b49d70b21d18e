"""Sealing what the progress store keeps of a customer, under --pseudonymize.

The store must keep the CI to ask about a customer after a resume, but under
--pseudonymize no file may hold it in the clear. The item is sealed with AES-GCM
(`cryptography`) under a key derived from the pseudonym key by HKDF, and the store's
key for deduplication is the CI's HMAC, the same pseudonym the outputs show.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from batch.errors import UsageError

_INFO = b"member-recon progress store v1"
_NONCE = 12


class Sealer:
    """Seals and opens JSON-ready values; a wrong key is a usage error, never garbage."""

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
