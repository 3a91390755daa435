"""Compression report of a tokenizer over a set of files (bytes per token, per file)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .tokenizer import Tokenizer

__all__ = ["FileStats", "compression_report", "format_report", "sample_tokenization"]


@dataclass(frozen=True)
class FileStats:
    name: str
    bytes: int
    tokens: int
    types: int

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "bytes_per_token": round(self.bytes_per_token, 4)}


def compression_report(tok: Tokenizer, files: dict[str, Path]) -> list[FileStats]:
    """Encode each file (as one document) and count bytes, tokens and distinct ids."""
    out = []
    for name, path in files.items():
        text = path.read_text(encoding="utf-8")
        ids = tok.encode_ordinary(text)
        out.append(FileStats(name, len(text.encode("utf-8")), len(ids), len(set(ids))))
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
        f"vocab size: {tok.vocab_size}  pattern: {tok._model.pattern_name}  "
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
