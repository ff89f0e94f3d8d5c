"""Helpers of the metrics tests: a scrape of a registry or a URL, as {(name, labels): value}."""

from __future__ import annotations

import urllib.request

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(registry: CollectorRegistry) -> Samples:
    return parse(generate_latest(registry).decode())


def scrape_url(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=30) as response:
        return parse(response.read().decode())


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    """Values of metric `name`, keyed by one label (summed over the others)."""
    result: dict[str, float] = {}
    for (n, labels), value in samples.items():
        if n == name:
            key = dict(labels)[label]
            result[key] = result.get(key, 0) + value
    return result
