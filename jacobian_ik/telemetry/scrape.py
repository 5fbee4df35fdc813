"""Reading an exporter's endpoint: one scrape, parsed with ``prometheus_client``.

Used by the demo (live values) and the benchmark (the once-a-second scrape).
"""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


#: {(sample name, frozenset of label items): value} of an exposition text.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def sample_values(text: str) -> Samples:
    """{(sample name, frozenset of label items): value} of an exposition text."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The value of the first sample ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    for (sample_name, sample_labels), sample_value in samples.items():
        if sample_name == name and wanted <= sample_labels:
            return sample_value
    return None
