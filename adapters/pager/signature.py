"""The pager webhook's signature, the one place that knows it.

    X-Carebot-Timestamp: 1772413200                       seconds since the epoch, when sent
    X-Carebot-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>
    Idempotency-Key:     carebot-outbox-<id>              the same on every retry of one page

A receiver recomputes the HMAC over the raw body it got, compares in constant time, and refuses a
timestamp older than a few minutes (a replayed request); it acts once per Idempotency-Key.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Carebot-Timestamp"
SIGNATURE_HEADER = "X-Carebot-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, now: float, tolerance: float = 300.0) -> bool:
    """For receivers (and our tests): the signature matches and the timestamp is fresh."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)
