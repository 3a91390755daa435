"""Reference merge replay for mixture inference: recount every pair at every step (obviously
correct, slow). Pieces come from tokforge's pre-tokenizer (tested on its own elsewhere)."""

from __future__ import annotations

from collections import Counter

from tokforge import _core

Pair = tuple[bytes, bytes]


def words(text: str, pattern: str) -> Counter:
    """Piece -> count, each piece as a tuple of single-byte tokens."""
    return Counter(tuple(bytes([b]) for b in p.encode()) for p in _core.pretokenize(pattern, text))


def pair_counts(ws: Counter) -> Counter:
    """Window counts of adjacent pairs ("aaa" gives (a, a) = 2)."""
    c: Counter = Counter()
    for w, n in ws.items():
        for a, b in zip(w, w[1:]):
            c[(a, b)] += n
    return c


def merge_word(w: tuple, a: bytes, b: bytes) -> tuple:
    """Replace (a, b) by a + b left to right without overlap."""
    out, i = [], 0
    while i < len(w):
        if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(w[i])
            i += 1
    return tuple(out)


def replay(merges: list[Pair], text: str, pattern: str) -> list[Counter]:
    """Pair counts before each step ``t`` (``len(merges) + 1`` snapshots)."""
    ws = words(text, pattern)
    snaps = [pair_counts(ws)]
    for a, b in merges:
        nxt: Counter = Counter()
        for w, n in ws.items():
            nxt[merge_word(w, a, b)] += n
        ws = nxt
        snaps.append(pair_counts(ws))
    return snaps


def symbol_ids(merges: list[Pair]) -> dict[bytes, int]:
    """The replay's symbol ids: bytes are their value, a merged string 256 + its first merge's
    rank among new strings (its pair key orders ties among competitors)."""
    ids = {bytes([b]): b for b in range(256)}
    for a, b in merges:
        ids.setdefault(a + b, len(ids))
    return ids


def top_k(snap: Counter, merge: Pair, k: int, ids: dict[bytes, int]) -> list[tuple[Pair, int]]:
    """The ``k`` pairs with the highest count other than ``merge`` (ties: smaller symbol key)."""
    live = [(p, n) for p, n in snap.items() if n > 0 and p != merge]
    live.sort(key=lambda e: (-e[1], ids[e[0][0]], ids[e[0][1]]))
    return live[:k]


def bpe_encode(token: bytes, rank: dict[Pair, int]) -> list[bytes]:
    """Merge-order BPE of one byte string: repeatedly merge the adjacent pair listed first."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best = min(
            ((rank.get((a, b)), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))),
            key=lambda e: (e[0] is None, e[0] if e[0] is not None else 0, e[1]),
        )
        if best[0] is None:
            break
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return parts
