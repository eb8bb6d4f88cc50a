"""When to retry a request, and how long to wait first.

Retried: connection errors and timeouts, and the statuses 408, 409, 429 and 5xx — except a 429
whose code is "insufficient_quota" (a spent budget: waiting does not cure it). Never retried: the
other 4xx (400, 401, 403, 404, 413, 422, ...), and a stream once its response has begun.

The wait before retry n (0-based) is 0.5 s x 2^n capped at 8 s, less up to a quarter at random
(jitter: clients that failed together do not come back together). When the server says how long
to wait (`error.retry_after` in the body, or a `Retry-After` header) the SDK waits that long
instead, capped at 60 s.
"""

from __future__ import annotations

import random

import httpx

from ._errors import retry_after_s

__all__ = ["INITIAL_BACKOFF_S", "MAX_BACKOFF_S", "MAX_RETRY_AFTER_S", "should_retry", "wait_s"]

INITIAL_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
MAX_RETRY_AFTER_S = 60.0


def should_retry(response: httpx.Response) -> bool:
    """Whether an error response (its body read) is worth another attempt."""
    status = response.status_code
    if status == 429:
        return not _quota_spent(response)
    return status in (408, 409) or status >= 500


def wait_s(retry: int, response: httpx.Response | None = None) -> float:
    """Seconds to wait before retry number `retry` (0 for the first), after `response` (None when
    the attempt got no response)."""
    asked = retry_after_s(response)
    if asked is not None:
        return min(asked, MAX_RETRY_AFTER_S)
    backoff = min(INITIAL_BACKOFF_S * 2.0**retry, MAX_BACKOFF_S)
    return backoff * (1.0 - 0.25 * random.random())


def _quota_spent(response: httpx.Response) -> bool:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError, httpx.ResponseNotRead):
        return False
    return isinstance(error, dict) and "insufficient_quota" in (error.get("code"), error.get("type"))
