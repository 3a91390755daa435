"""Reference BPE trainer: slow, obviously correct, read in one sitting.

Recounts every pair after every merge. Ties go to the smallest (left, right) pair in HF's id
space: bytes in GPT-2 alphabet order (the order of their byte-level characters), then merged
tokens in creation order. A merge whose bytes already exist reuses that token (HF behaviour).
"""

from __future__ import annotations

from collections import Counter

import regex


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def hf_byte_order() -> list[int]:
    """Bytes sorted by their byte-level character: HF's alphabet order."""
    t = bytes_to_unicode()
    return sorted(range(256), key=lambda b: t[b])


def pieces(pattern: str | regex.Pattern[str], text: str) -> list[str]:
    """Pre-tokenize; text between matches is kept as pieces too (HF Split "Isolated")."""
    out, last = [], 0
    for m in regex.finditer(pattern, text):
        if m.start() > last:
            out.append(text[last : m.start()])
        if m.end() > m.start():
            out.append(m.group())
        last = m.end()
    if last < len(text):
        out.append(text[last:])
    return out


def train(
    docs: list[str], pattern: str, vocab_size: int, n_special: int = 0, tie: str = "hf"
) -> list[tuple[bytes, bytes]]:
    """Merges (as byte pairs) that BPE learns from ``docs``."""
    order = hf_byte_order() if tie == "hf" else list(range(256))
    sym_bytes = [bytes([b]) for b in order]
    sym_of = {b: i for i, b in enumerate(sym_bytes)}
    words = Counter()
    for d in docs:
        for p in pieces(pattern, d):
            words[tuple(sym_of[bytes([b])] for b in p.encode("utf-8"))] += 1
    merges: list[tuple[bytes, bytes]] = []
    while len(sym_bytes) + n_special < vocab_size:
        pairs = Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], tuple(-x for x in kv[0])))[0]
        joined = sym_bytes[best[0]] + sym_bytes[best[1]]
        if joined in sym_of:
            new = sym_of[joined]
        else:
            new = len(sym_bytes)
            sym_bytes.append(joined)
            sym_of[joined] = new
        merges.append((sym_bytes[best[0]], sym_bytes[best[1]]))
        merged = Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] += c
        words = merged
    return merges
