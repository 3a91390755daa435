r"""Brute-force reference for ``tokforge.byte_probs`` (docs/byte_probs.md): slow and obviously
correct, for tiny vocabularies only; the properties of docs/byte_probs.md §11 are checked
against it.

- :class:`ToyBPE`: a merge-list byte-level BPE in pure Python (HF semantics, no whole-piece
  look-up), one piece per string: repeatedly merge the adjacent pair that comes first in the
  merge list, leftmost on ties. Ids: byte ``b`` is id ``b``; merge ``k`` makes id ``256 + k``.
- Validity by re-encoding, the full check of docs/byte_probs.md §4.1: ``encode(decode(τ)) == τ``.
- :class:`ToyPiecesBPE`: the same BPE run on the pieces of a regex pre-tokenizer (the GPT-2,
  cl100k and o200k patterns of tiktoken 0.14.0, through the ``regex`` module; ASCII text only;
  or a sequence of Isolated splits such as llama.cpp's ``[\p{N}, gpt2]``).
  Canonical sequences are not prefix-closed there, so a sequence is *valid* when some
  continuation text ``s`` makes it a prefix of ``encode(decode(τ) + s)`` (searched over every
  ASCII character, every pair of characters from a class-representative set, and every token
  followed by nothing or one representative), and EOS may follow only a canonical sequence
  (docs/byte_probs.md §15).
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
import regex

from .bpe_train import pieces as isolated_split  # HF Split(behavior="Isolated")


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

    def is_canonical(self, ids: Sequence[int]) -> bool:
        return self.is_valid(ids)

    def completable(self, ids: Sequence[int]) -> bool:
        """One piece per string: BPE is prefix-closed, so valid = canonical."""
        return self.is_valid(ids)


#: The pre-tokenizer patterns of tiktoken 0.14.0 (``tiktoken_ext/openai_public.py``).
PATTERNS = {
    "gpt2": r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""",
    "cl100k": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    "o200k": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}

#: llama.cpp's spelling of the GPT-2 pattern (no ``\s+`` at the end: Isolated splitting makes
#: the one whitespace character it leaves a piece of its own).
LLAMA_CPP_GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"""

#: Sequences of Isolated splits (llama.cpp's starcoder / refact / command-r / smollm
#: pre-tokenizers are ``[\p{N}, gpt2]``): every piece of one split is split by the next.
SEQUENCES = {
    "digits+gpt2": [r"\p{N}", LLAMA_CPP_GPT2],
    "digits+cl100k": [r"\p{N}", PATTERNS["cl100k"]],
}


#: Characters the patterns (or contractions) tell apart, one per behaviour.
REPRESENTATIVES = " \t\n\r'/.0aAsTlLvexX"


class ToyPiecesBPE(ToyBPE):
    """:class:`ToyBPE` on the pieces of ``PATTERNS[pattern]`` (ASCII text only)."""

    def __init__(self, merges: Sequence[tuple[bytes, bytes]], pattern: str) -> None:
        """``pattern``: a key of :data:`PATTERNS` or of :data:`SEQUENCES`."""
        super().__init__(merges)
        self.stages = [regex.compile(p) for p in SEQUENCES.get(pattern, [PATTERNS.get(pattern, "")])]
        self.regex = self.stages[-1]
        self._comp: dict[tuple[int, ...], bool] = {}
        chars = sorted(set(REPRESENTATIVES) | {chr(x) for t in self.tokens[256:] for x in t})
        reps = [c.encode() for c in chars]
        tails = [b""] + reps
        conts = {bytes([x]) for x in range(128)}
        conts |= {x + y for x in reps for y in reps}
        conts |= {t + y for t in self.tokens[256:] for y in tails}
        self.continuations = sorted(conts, key=lambda c: (len(c), c))

    def pieces(self, data: bytes) -> list[bytes]:
        parts = [data.decode("ascii")]
        for rx in self.stages:
            parts = [q for p in parts for q in isolated_split(rx, p)]
        return [p.encode("ascii") for p in parts]

    def encode(self, data: bytes) -> list[int]:
        return [i for p in self.pieces(data) for i in ToyBPE.encode(self, p)]

    def completable(self, ids: Sequence[int]) -> bool:
        """Some continuation ``s`` has ``ids`` as a prefix of ``encode(decode(ids) + s)``."""
        key = tuple(ids)
        got = self._comp.get(key)
        if got is None:
            text = self.decode(ids)
            k = len(key)
            got = self.is_canonical(ids) or any(
                tuple(self.encode(text + s)[:k]) == key for s in self.continuations
            )
            self._comp[key] = got
        return got


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
            # EOS, or (pre-tokenized tokenizers, where a valid sequence need not be canonical)
            # the tokens that make the sequence canonical, so that every valid path can end
            done = self.tok is None or self.tok.is_canonical(key)
            ascii_ids = [t for t, b in enumerate(self.tok.tokens) if b.isascii()]
            fix = [] if done else self._toward_canonical(key, ascii_ids)
            for t in fix:
                p[t] = 1.0
            if not fix:
                p[self.eos_id] = 1.0
            p /= p.sum()
        else:
            rng = random.Random(hash((self.seed,) + key))
            for t in self.support + [self.eos_id]:
                p[t] = rng.random() + 0.05
            tok = self.tok
            if isinstance(tok, ToyPiecesBPE) and not tok.is_canonical(key):
                # a valid but non-canonical sequence may need a token outside the support to
                # become canonical: add those, so that exact mode never meets Z = 0
                if not any(tok.completable(key + (t,)) for t in self.support):
                    for t, b in enumerate(tok.tokens):
                        if b.isascii() and tok.is_canonical(key + (t,)):
                            p[t] = rng.random() + 0.05
            if self.zero_invalid and self.tok is not None:
                for t in self.support:
                    if not self.tok.is_valid(list(key) + [t]):
                        p[t] = 0.0
            p /= p.sum()
        self._memo[key] = p
        return p

    def _toward_canonical(self, key: tuple[int, ...], ids: list[int], depth: int = 4) -> list[int]:
        """First tokens of the shortest continuations (of ``ids``, at most ``depth`` tokens) that
        make ``key`` canonical: each step past ``max_tokens`` shortens the way to a canonical
        end, so every valid path ends and no valid sequence meets ``Z = 0``."""
        assert self.tok is not None
        frontier: list[tuple[tuple[int, ...], int]] = [(key, -1)]
        for _ in range(depth):
            firsts: set[int] = set()
            nxt = []
            for seq, first in frontier:
                for t in ids:
                    longer, f = seq + (t,), t if first < 0 else first
                    if self.tok.is_canonical(longer):
                        firsts.add(f)
                    elif self.tok.completable(longer):
                        nxt.append((longer, f))
            if firsts:
                return sorted(firsts)
            frontier = nxt
        return []

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(np.stack([self.probs(p) for p in prefixes]))


def conditional(lm: ToyLM, tok: ToyBPE, prefix: Sequence[int], mode: str) -> np.ndarray:
    """Mode-adjusted next-token distribution ``Pm(. | prefix)`` (docs/byte_probs.md §5)."""
    p = lm.probs(prefix).copy()
    if mode == "fast":
        return p
    for t in range(len(tok.tokens)):
        if p[t] > 0 and not tok.completable(list(prefix) + [t]):
            p[t] = 0.0
    if not tok.is_canonical(prefix):
        p[lm.eos_id] = 0.0
    for t in range(len(tok.tokens), lm.vocab_size):
        if t != lm.eos_id:
            p[t] = 0.0
    if mode == "exact" and p.sum() > 0:
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
    """Covers of ``x`` with their masses ``Pbar_m`` (unnormalised), recomputed from scratch: every
    token sequence ``stem ∘ t`` with ``decode(stem)`` a proper prefix of ``x`` and ``x`` a prefix
    of ``decode(stem ∘ t)``. The stem is valid (exact, mask) or, in ``fast`` mode, canonical at
    every token boundary (fast keeps ``encode(x)`` alone as its empty-overhang cover at every
    step, so no other stem survives)."""
    if not x:
        return [([], b"", 1.0)]
    n = len(x)
    out = []

    def rec(stem: list[int], j: int) -> None:
        if not (tok.is_canonical(stem) if mode == "fast" else tok.completable(stem)):
            return
        ps = prefix_mass(lm, tok, stem, mode)
        if ps == 0:
            return
        q = conditional(lm, tok, stem, mode)
        for t, tb in enumerate(tok.tokens):
            if tb.startswith(x[j:]) and q[t] > 0:
                out.append((stem + [t], tb[n - j :], ps * q[t]))
            elif j + len(tb) < n and x[j : j + len(tb)] == tb:
                rec(stem + [t], j + len(tb))

    rec([], 0)
    return out


def next_byte_probs_from_scratch(lm: ToyLM, tok: ToyBPE, x: bytes, mode: str) -> np.ndarray:
    """``U(b)`` of docs/byte_probs.md §6: covers with non-empty overhang plus the empty-overhang
    covers (every valid one in exact/mask mode; ``encode(x)`` alone in fast mode), normalised;
    all zeros when nothing continues ``x`` (fast mode can step into such a prefix)."""
    star = tok.encode(x)
    u = np.zeros(257)
    stars = []
    for seq, over, m in covers_from_scratch(lm, tok, x, mode):
        if over:
            u[over[0]] += m
        elif mode != "fast" or seq == star:
            stars.append((seq, m))
    if not x:
        stars = [([], 1.0)]
    for seq, m in stars:
        q = conditional(lm, tok, seq, mode)
        for t, tb in enumerate(tok.tokens):
            u[tb[0]] += m * q[t]
        u[256] += m * q[lm.eos_id]
    total = u.sum()
    return u / total if total > 0 else u
