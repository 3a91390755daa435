"""Compression report of a tokenizer over a corpus: bytes, tokens and token types per file or
per set of texts. One counting function for every tokenizer (BPE, LiB or foreign)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Union

from .errors import InputError
from .tokenizer import Tokenizer

__all__ = ["FileStats", "compression_report", "format_report", "sample_tokenization"]


@dataclass(frozen=True)
class FileStats:
    """Counts of one corpus entry: UTF-8 bytes, tokens, and distinct ids used."""

    name: str
    bytes: int
    tokens: int
    types: int

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else 0.0

    @property
    def tokens_per_byte(self) -> float:
        return self.tokens / self.bytes if self.bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bytes_per_token": round(self.bytes_per_token, 4)}


Source = Union["os.PathLike[str]", Sequence[str]]


def compression_report(tok: object, corpus: Mapping[str, Source]) -> list[FileStats]:
    """Count bytes, tokens and distinct ids of ``tok`` (anything :meth:`Tokenizer.coerce`
    takes) on each entry of ``corpus``: a path (the file is one document) or a sequence of
    texts (each encoded on its own, in parallel). Special-token text counts as plain text.

    >>> tok = Tokenizer.train(texts=["ab ab ab"], vocab_size=258, pattern="gpt2")
    >>> [stats] = compression_report(tok, {"t": ["ab ab", "b"]})  # "ab", " ab" | "b"
    >>> stats.bytes, stats.tokens, stats.types
    (6, 3, 3)
    """
    tok = Tokenizer.coerce(tok)
    out = []
    for name, source in corpus.items():
        if isinstance(source, os.PathLike):
            with open(source, encoding="utf-8") as fh:
                texts = [fh.read()]
        elif isinstance(source, str):
            raise InputError(
                f"corpus[{name!r}] is a str: give a pathlib.Path for a file or a list of texts"
            )
        else:
            texts = list(source)
        rows = tok.encode_batch(texts, disallowed_special=())
        n_bytes = sum(len(t.encode("utf-8")) for t in texts)
        types = set().union(*rows) if rows else set()
        out.append(FileStats(name, n_bytes, sum(map(len, rows)), len(types)))
    return out


def sample_tokenization(tok: Tokenizer, text: str) -> list[str]:
    """Each token of ``text`` as readable text (partial UTF-8 shown with escapes)."""
    pieces = []
    for i in tok.encode_ordinary(text):
        b = tok.id_to_token(i)
        try:
            pieces.append(b.decode("utf-8"))
        except UnicodeDecodeError:
            pieces.append(repr(b)[2:-1])
    return pieces


def format_report(tok: Tokenizer, stats: list[FileStats], sample: str) -> str:
    lines = [
        f"vocab size: {tok.vocab_size}  pattern: {tok.pattern_name}  "
        f"special tokens: {len(tok.special_tokens)}",
        "",
        f"{'file':<18}{'bytes':>10}{'tokens':>10}{'bytes/token':>13}{'types':>8}",
    ]
    for s in stats:
        lines.append(
            f"{s.name:<18}{s.bytes:>10}{s.tokens:>10}{s.bytes_per_token:>13.2f}{s.types:>8}"
        )
    total_b = sum(s.bytes for s in stats)
    total_t = sum(s.tokens for s in stats)
    if total_t:
        lines.append(f"{'all':<18}{total_b:>10}{total_t:>10}{total_b / total_t:>13.2f}")
    lines += ["", f"sample: {sample!r}", " | ".join(sample_tokenization(tok, sample))]
    return "\n".join(lines)
