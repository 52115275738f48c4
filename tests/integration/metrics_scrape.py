"""Scrape a Prometheus endpoint over HTTP and read its samples (shared by the metrics tests)."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Callable, Mapping

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def scrape(url: str) -> Samples:
    """Every sample of the endpoint, by (name, labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(scrape_text(url)):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent: a labelled counter appears at its first increment)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


async def scrape_until(url: str, what: str, check: Callable[[Samples], bool], timeout: float = 60.0) -> Samples:
    """Scrape until ``check`` holds; a convergence bound, not a speed assertion."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        samples = await asyncio.to_thread(scrape, url)
        if check(samples):
            return samples
        if loop.time() > end:
            raise AssertionError(f"not seen after {timeout}s: {what}; scraped:\n"
                                 + "\n".join(f"{k}={v}" for k, v in sorted(samples.items(), key=str)
                                             if k[0].startswith(("ccs_", "haproxy_"))))
        await asyncio.sleep(0.2)


def label_set(labels: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())
