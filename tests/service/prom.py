"""Reading a gateway's GET /metrics in tests: parsed samples, one sample's value, and a bounded wait
for a condition on them."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from tests.service.gateway_server import Gateway

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a text exposition, by (sample name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(gw: Gateway, headers: dict[str, str] | None = None) -> Samples:
    r = gw.http.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    return parse(r.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a series not there yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def until(gw: Gateway, check: Callable[[Samples], bool], timeout: float = 5.0) -> Samples:
    """The metrics once `check` holds, scraping until it does: the middleware counts a request just
    after its last byte is sent, so a client can be a step ahead of it."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(gw)
        if check(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics never satisfied the check; got {sorted(samples.items())}")
        time.sleep(0.02)  # polling a bounded loop
