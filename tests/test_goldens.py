"""Outputs identical to goldens saved before the one-model refactor (issue 10): ids and merges of
trained BPE tokenizers, ids of real vocabularies, LiB lexicons and encodings, dynamic-merging
logs and next-byte probabilities. ``tests/golden/make_goldens.py`` computes each record; this
test recomputes it with the current code and compares (exactly, except probabilities, which are
stored rounded to 12 decimals and compared to within 2e-12: two roundings)."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from golden import make_goldens as mg

GOLDEN = Path(__file__).resolve().parent / "golden"
CATALOGUE = mg.catalogue()
CASES = [(stem, name) for stem, cases in CATALOGUE.items() for name in cases]


def _load(stem: str) -> dict:
    return json.loads((GOLDEN / f"{stem}.json").read_text(encoding="utf-8"))


def _diff(got, want, path="") -> str | None:
    """Where ``got`` first differs from ``want``: floats within 1e-12, everything else equal."""
    if isinstance(want, float) or isinstance(got, float):
        if not isinstance(got, (int, float)) or not isinstance(want, (int, float)):
            return f"{path}: {got!r} != {want!r}"
        if math.isinf(want) or math.isinf(got):
            return None if got == want else f"{path}: {got!r} != {want!r}"
        return None if abs(got - want) <= 2e-12 else f"{path}: {got!r} != {want!r}"
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            keys = set(got) ^ set(want) if isinstance(got, dict) else "type"
            return f"{path}: keys differ ({keys})"
        for k in want:
            d = _diff(got[k], want[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(want, list):
        if not isinstance(got, list):
            return f"{path}: {type(got).__name__} instead of a list"
        for i, (g, w) in enumerate(zip(got, want)):
            d = _diff(g, w, f"{path}[{i}]")
            if d:
                return d
        return None if len(got) == len(want) else f"{path}: length {len(got)} != {len(want)}"
    return None if got == want else f"{path}: {got!r} != {want!r}"


def test_goldens_cover_every_case_and_stay_small():
    total = 0
    for stem, cases in CATALOGUE.items():
        assert set(_load(stem)) == set(cases), f"{stem}.json is stale: run make_goldens.py"
        total += (GOLDEN / f"{stem}.json").stat().st_size
    assert total < 1_500_000


@pytest.mark.parametrize("stem,name", CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_output_equals_the_golden_saved_before_the_refactor(stem, name):
    want = _load(stem)[name]
    got = mg.normalise(CATALOGUE[stem][name]())
    d = _diff(got, want, f"{stem}.{name}")
    assert d is None, d
