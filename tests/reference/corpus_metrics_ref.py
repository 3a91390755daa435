"""Corpus-metric counts, slowly and obviously: character by character, from the tokens' bytes.

The reference for ``tokforge.metrics.corpus.measure`` (and the native ``stream_counts``).
"""

from __future__ import annotations


def counts(docs: list[str], pieces_per_doc: list[list[bytes]]) -> dict:
    """``pieces_per_doc[d]`` are the token bytes of document ``d`` (they spell it exactly)."""
    words = continued = chars = split = 0
    line_tokens: list[int] = []
    for doc, pieces in zip(docs, pieces_per_doc):
        data = doc.encode("utf-8")
        assert b"".join(pieces) == data
        # token index of every byte, and the byte offset where each token starts
        owner: list[int] = []
        starts: list[int] = []
        for t, p in enumerate(pieces):
            starts.append(len(owner))
            owner.extend([t] * len(p))
        # characters with their byte spans
        spans = []
        pos = 0
        for ch in doc:
            n = len(ch.encode("utf-8"))
            spans.append((ch, pos, pos + n))
            pos += n
        chars += len(spans)
        split += sum(1 for _, s, e in spans if owner[s] != owner[e - 1])
        # words: maximal runs of non-space characters (str.split)
        word: list[tuple[int, int]] = []
        for ch, s, e in spans + [(" ", len(data), len(data))]:
            if ch.isspace():
                if word:
                    words += 1
                    continued += owner[word[0][0]] != owner[word[-1][1] - 1]
                    word = []
            else:
                word.append((s, e))
        # tokens per non-empty line: a token belongs to the line of its first byte
        line_start = 0
        for line in doc.split("\n"):
            line_end = line_start + len(line.encode("utf-8")) + 1  # with its newline
            if line.split():
                line_tokens.append(sum(1 for st in starts if line_start <= st < line_end))
            line_start = line_end
    return {
        "words": words,
        "continued_words": continued,
        "chars": chars,
        "split_chars": split,
        "line_tokens": line_tokens,
    }
