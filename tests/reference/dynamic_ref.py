"""Reference batch-level dynamic merging: slow, obviously correct, read in one sitting.

docs/dynamic_merging.md §3.1 (ties: §3.1.1) taken literally: after every merge, recount
all valid adjacent pairs with a ``Counter`` fed sequence by sequence, position by position;
take the pair with the highest count (``max`` keeps the first-inserted pair among equal counts:
the one whose leftmost occurrence comes first); merge it left to right in every sequence
without reusing a unit (``x x x -> xx x``). O(merges x tokens).

A unit is ``[key, start, end, word]``: ``key`` is the tuple of base ids (``identity="ids"``)
or ``(is_special, bytes)`` (``identity="bytes"``), ``[start, end)`` its base positions.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional


def merge_batch(
    seqs: list[list[int]],
    words: list[list[int]],
    *,
    max_merges: Optional[int] = None,
    min_count: int = 1,
    target: Optional[tuple[str, float]] = None,
    per_sample: bool = False,
    max_unit_constituents: Optional[int] = None,
    identity: str = "ids",
    token_bytes: Optional[list[bytes]] = None,
    special_ids: frozenset[int] = frozenset(),
) -> dict:
    """Same meaning as ``tokforge.dynamic.merge_batch`` with explicit word ids (-1 = never
    merge) and ``target`` as ``("absolute" | "word_level" | "length", value)``."""

    def base_key(x: int):
        if identity == "ids":
            return (x,)
        return (x in special_ids, token_bytes[x])

    units = [[[base_key(x), i, i + 1, w] for i, (x, w) in enumerate(zip(s, ws))]
             for s, ws in zip(seqs, words)]
    def concat(a, b):
        return a + b if identity == "ids" else (False, a[1] + b[1])

    opts = dict(max_merges=max_merges, min_count=min_count, target=target,
                max_unit_constituents=max_unit_constituents, concat=concat)
    if per_sample:
        merges = []
        for s in range(len(units)):
            merges += [m + (s,) for m in _run([units[s]], **opts)]
    else:
        merges = [m + (-1,) for m in _run(units, **opts)]

    def show(key):
        return key if identity == "ids" else key[1]

    # unit table: distinct keys of the output by first appearance, base ids of that appearance
    table: dict = {}
    out_units, out_spans, out_words, constituents = [], [], [], []
    for s, seq in enumerate(units):
        row = []
        for key, a, b, w in seq:
            if key not in table:
                table[key] = len(table)
                constituents.append(tuple(seqs[s][a:b]))
            row.append(table[key])
            out_spans.append((a, b))
            out_words.append(w)
        out_units.append(row)
    return {
        "units": out_units,
        "spans": out_spans,
        "word_ids": out_words,
        "constituents": constituents,
        "merges": [(show(a), show(b), show(n), c, ap, smp) for a, b, n, c, ap, smp in merges],
        "len_initial": sum(len(s) for s in seqs),
        "len_final": sum(len(s) for s in units),
        "len_word_level": sum(_word_level(ws) for ws in words),
    }


def _word_level(ws: list[int]) -> int:
    """Units at word level: one per maximal run of equal word ids, one per -1."""
    return sum(1 for i, w in enumerate(ws) if w == -1 or i == 0 or w != ws[i - 1])


def _valid(u, v, maxlen) -> bool:
    return u[3] != -1 and u[3] == v[3] and (maxlen is None or v[2] - u[1] <= maxlen)


def _run(units, *, max_merges, min_count, target, max_unit_constituents, concat) -> list[tuple]:
    """Merge ``units`` (list of sequences, modified in place); returns the log."""
    l0 = sum(len(s) for s in units)
    lw = sum(_word_level([u[3] for u in s]) for s in units)
    threshold = None
    if target is not None:
        kind, r = target
        threshold = {"absolute": lambda: (1.0 - r) * l0,
                     "word_level": lambda: l0 - r * (l0 - lw),
                     "length": lambda: r}[kind]()
    log = []
    while max_merges is None or len(log) < max_merges:
        if threshold is not None and sum(len(s) for s in units) <= threshold:
            break
        counts: Counter = Counter()
        for seq in units:
            for u, v in zip(seq, seq[1:]):
                if _valid(u, v, max_unit_constituents):
                    counts[(u[0], v[0])] += 1
        if not counts:
            break
        (a, b), c = max(counts.items(), key=lambda kv: kv[1])
        if c < min_count:
            break
        new = concat(a, b)
        applied = 0
        for seq in units:
            out, i = [], 0
            while i < len(seq):
                u = seq[i]
                if (i + 1 < len(seq) and u[0] == a and seq[i + 1][0] == b
                        and _valid(u, seq[i + 1], max_unit_constituents)):
                    out.append([new, u[1], seq[i + 1][2], u[3]])
                    applied += 1
                    i += 2
                else:
                    out.append(u)
                    i += 1
            seq[:] = out
        log.append((a, b, new, c, applied))
    return log


def word_ids(token_bytes: list[bytes], pieces) -> list[int]:
    """Word of each token of one sequence (no specials): the index of the pre-tokenization
    piece (``pieces(text) -> list[str]``) that holds the token's first byte."""
    text = b"".join(token_bytes)
    starts, at = [], 0
    for p in pieces(text.decode("utf-8")):
        starts.append(at)
        at += len(p.encode("utf-8"))
    out, pos = [], 0
    for t in token_bytes:
        out.append(max(k for k, s in enumerate(starts) if s <= pos) if starts else 0)
        pos += len(t)
    return out
