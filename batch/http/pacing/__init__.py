"""Request pacing: the gateway's model (`acceptance`), starts spaced at its rate (`spacing`)."""

from batch.http.pacing.acceptance import AcceptanceModel
from batch.http.pacing.spacing import AdaptiveLimiter

__all__ = ["AcceptanceModel", "AdaptiveLimiter"]
