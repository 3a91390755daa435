"""Rényi entropy and efficiency of a token stream (Zouhar et al. 2023, "Tokenization and the
Noiseless Channel"), equal to PyPI ``tokenization-scorer`` 1.1.8 on the same streams.

``p`` is the unigram distribution of the tokens seen; ``H_α(p) = log2(Σ p_t^α) / (1 − α)``
(Shannon's ``−Σ p log2 p`` when ``α = 1``) and the efficiency is ``H_α(p) / log2 V``. ``V`` is
the number of distinct tokens observed (the scorer's default) unless ``vocab=`` gives the
vocabulary size. The paper recommends ``α = 2.5``; the scorer's default is ``3.0``: reports
always carry both ``α`` and which ``V`` was used. See docs/metrics.md, section Rényi.

Cost: one ``bincount`` over the ids, then O(types).

>>> t1 = "pick @@ed pick @@l @@ed pick @@les".split()
>>> round(renyi_efficiency(counts_of(t1), alpha=2.5), 12)
0.826506483423
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable
from typing import Optional

import numpy as np

from ..errors import InputError

__all__ = ["counts_of", "renyi_entropy", "renyi_efficiency"]

#: The exponent Zouhar et al. recommend (correlation 0.78 with BLEU in their experiments).
DEFAULT_ALPHA = 2.5


def counts_of(tokens: Iterable[Hashable] | np.ndarray) -> np.ndarray:
    """Occurrences of each distinct token (order irrelevant): ``bincount`` for an integer array,
    a :class:`~collections.Counter` otherwise."""
    if isinstance(tokens, np.ndarray) and tokens.dtype.kind in "iu":
        c = np.bincount(tokens.astype(np.int64, copy=False))
        return c[c > 0]
    return np.fromiter(Counter(tokens).values(), dtype=np.int64)


def _probs(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    counts = counts[counts > 0]
    total = counts.sum()
    if total <= 0:
        raise InputError("Rényi entropy of an empty token stream is undefined")
    return counts / total


def renyi_entropy(counts: np.ndarray, *, alpha: float = DEFAULT_ALPHA) -> float:
    """``H_α`` in bits of the distribution given by ``counts`` (Shannon entropy when α = 1).

    >>> renyi_entropy(np.array([1, 1, 1, 1]), alpha=3.0)
    2.0
    """
    if not (alpha >= 0) or math.isinf(alpha):
        raise InputError(f"alpha={alpha!r} must be a finite number >= 0")
    p = _probs(counts)
    if alpha == 1.0:
        return float(-np.sum(p * np.log2(p)))
    return float(np.log2(np.sum(p**alpha)) / (1.0 - alpha))


def renyi_efficiency(
    counts: np.ndarray, *, alpha: float = DEFAULT_ALPHA, vocab: Optional[int] = None
) -> float:
    """``H_α / log2 V`` with ``V`` the number of distinct tokens in ``counts`` or ``vocab``."""
    v = int(np.count_nonzero(np.asarray(counts))) if vocab is None else int(vocab)
    if v < 2:
        raise InputError(f"efficiency needs a vocabulary of at least 2 tokens (V = {v})")
    return renyi_entropy(counts, alpha=alpha) / math.log2(v)
