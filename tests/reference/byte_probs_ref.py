"""Brute-force reference for ``tokforge.byte_probs`` (docs/byte_probs.md): slow and obviously
correct, for tiny vocabularies only; the properties of docs/byte_probs.md §11 are checked
against it.

- :class:`ToyBPE`: a merge-list byte-level BPE in pure Python (HF semantics, no whole-piece
  look-up), one piece per string: repeatedly merge the adjacent pair that comes first in the
  merge list, leftmost on ties. Ids: byte ``b`` is id ``b``; merge ``k`` makes id ``256 + k``.
- Validity by re-encoding, the full check of docs/byte_probs.md §4.1: ``encode(decode(τ)) == τ``.
- :class:`ToyLM`: a random, length-capped token LM (EOS forced after ``max_tokens`` tokens),
  deterministic per prefix, with mass only on the alphabet's tokens and EOS.
- :func:`string_probs`: every complete string and its probability under ``Pc`` (the exact-mode
  masked and renormalised LM), by enumerating all token sequences.
- :func:`next_byte_probs_from_scratch`: the formula of docs/byte_probs.md §6 with the cover set
  recomputed from scratch (stems ``encode(x[:j])`` and every token ``t`` extending ``x[j:]``),
  any mode.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Optional

import numpy as np


class ToyBPE:
    def __init__(self, merges: Sequence[tuple[bytes, bytes]]) -> None:
        """``merges``: ``(left, right)`` byte strings in priority order; ``left + right`` is
        new each time."""
        self.merges = [(bytes(a), bytes(b)) for a, b in merges]
        self.tokens: list[bytes] = [bytes([i]) for i in range(256)] + [a + b for a, b in merges]
        self.id = {t: i for i, t in enumerate(self.tokens)}
        self.prio = {m: k for k, m in enumerate(self.merges)}

    def encode(self, data: bytes) -> list[int]:
        parts = [bytes([x]) for x in data]
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                r = self.prio.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, at = r, i
            if best is None:
                break
            parts[at : at + 2] = [parts[at] + parts[at + 1]]
        return [self.id[p] for p in parts]

    def decode(self, ids: Sequence[int]) -> bytes:
        return b"".join(self.tokens[i] for i in ids)

    def is_valid(self, ids: Sequence[int]) -> bool:
        return self.encode(self.decode(ids)) == list(ids)


class ToyLM:
    """Random LM over ``support`` ids plus EOS; EOS only after ``max_tokens`` tokens.
    ``zero_invalid=True`` puts zero mass on continuations that ``tok`` cannot produce."""

    def __init__(
        self,
        support: Sequence[int],
        *,
        vocab_size: int,
        eos_id: int,
        max_tokens: int,
        seed: int,
        tok: Optional[ToyBPE] = None,
        zero_invalid: bool = False,
    ) -> None:
        self.support = list(support)
        self.vocab_size = vocab_size
        self.eos_id = eos_id
        self.bos_id = None
        self.max_tokens = max_tokens
        self.seed = seed
        self.tok = tok
        self.zero_invalid = zero_invalid
        self._memo: dict[tuple[int, ...], np.ndarray] = {}

    def probs(self, prefix: Sequence[int]) -> np.ndarray:
        key = tuple(prefix)
        row = self._memo.get(key)
        if row is not None:
            return row
        p = np.zeros(self.vocab_size)
        if len(key) >= self.max_tokens:
            p[self.eos_id] = 1.0
        else:
            rng = random.Random(hash((self.seed,) + key))
            for t in self.support + [self.eos_id]:
                p[t] = rng.random() + 0.05
            if self.zero_invalid and self.tok is not None:
                for t in self.support:
                    if not self.tok.is_valid(list(key) + [t]):
                        p[t] = 0.0
            p /= p.sum()
        self._memo[key] = p
        return p

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(np.stack([self.probs(p) for p in prefixes]))


def conditional(lm: ToyLM, tok: ToyBPE, prefix: Sequence[int], mode: str) -> np.ndarray:
    """Mode-adjusted next-token distribution ``Pm(. | prefix)`` (docs/byte_probs.md §5)."""
    p = lm.probs(prefix).copy()
    if mode == "fast":
        return p
    for t in range(len(tok.tokens)):
        if p[t] > 0 and not tok.is_valid(list(prefix) + [t]):
            p[t] = 0.0
    for t in range(len(tok.tokens), lm.vocab_size):
        if t != lm.eos_id:
            p[t] = 0.0
    if mode == "exact":
        p /= p.sum()
    return p


def prefix_mass(lm: ToyLM, tok: ToyBPE, seq: Sequence[int], mode: str) -> float:
    """``Pbar_m(seq)``."""
    m = 1.0
    for i, t in enumerate(seq):
        m *= conditional(lm, tok, seq[:i], mode)[t]
    return m


def string_probs(lm: ToyLM, tok: ToyBPE) -> dict[bytes, float]:
    """``{x: Q(x⊥)}`` under ``Pc`` by enumerating every token sequence with positive mass."""
    out: dict[bytes, float] = {}

    def rec(seq: list[int], mass: float) -> None:
        p = conditional(lm, tok, seq, "exact")
        if p[lm.eos_id] > 0:
            x = tok.decode(seq)
            out[x] = out.get(x, 0.0) + mass * p[lm.eos_id]
        for t in np.nonzero(p)[0]:
            if t != lm.eos_id:
                rec(seq + [int(t)], mass * p[t])

    rec([], 1.0)
    return out


def prefix_prob(strings: dict[bytes, float], x: bytes) -> float:
    """``Q(x)``: mass of all strings that start with ``x``."""
    return sum(p for s, p in strings.items() if s.startswith(x))


def covers_from_scratch(
    lm: ToyLM, tok: ToyBPE, x: bytes, mode: str
) -> list[tuple[list[int], bytes, float]]:
    """Covers of ``x`` with their masses ``Pbar_m`` (unnormalised), recomputed from scratch."""
    if not x:
        return [([], b"", 1.0)]
    lmax = max(len(t) for t in tok.tokens)
    n = len(x)
    out = []
    for j in range(max(0, n - lmax), n):
        stem = tok.encode(x[:j])
        ps = prefix_mass(lm, tok, stem, mode)
        if ps == 0:
            continue
        q = conditional(lm, tok, stem, mode)
        for t, tb in enumerate(tok.tokens):
            if tb.startswith(x[j:]) and q[t] > 0:
                out.append((stem + [t], tb[n - j :], ps * q[t]))
    return out


def next_byte_probs_from_scratch(lm: ToyLM, tok: ToyBPE, x: bytes, mode: str) -> np.ndarray:
    """``U(b)`` of docs/byte_probs.md §6: covers with non-empty overhang plus ``τ* = encode(x)``."""
    star = tok.encode(x)
    u = np.zeros(257)
    w_star = 0.0
    for seq, over, m in covers_from_scratch(lm, tok, x, mode):
        if over:
            u[over[0]] += m
        elif seq == star:
            w_star += m
    q = conditional(lm, tok, star, mode)
    for t, tb in enumerate(tok.tokens):
        u[tb[0]] += w_star * q[t]
    u[256] = w_star * q[lm.eos_id]
    return u / u.sum()
