"""The :class:`Tokenizer` users hold: train, save, load, encode, decode."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Callable, Optional, Union

from . import _core
from .errors import FormatError, InputError

PathLike = Union[str, "os.PathLike[str]"]
ProgressCallback = Callable[[str, int, int], Optional[bool]]

__all__ = ["Tokenizer", "expand_files"]


def expand_files(files: PathLike | Iterable[PathLike]) -> list[Path]:
    """Paths from a path or an iterable of paths; a directory stands for its ``*.txt`` files
    (recursively, sorted). Missing paths raise :class:`FileNotFoundError` before any work."""
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    out: list[Path] = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.txt") if q.is_file())
            if not found:
                raise InputError(f"{p}: the directory has no *.txt files")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return out


class Tokenizer:
    """A byte-level BPE tokenizer (GPT-2 / GPT-4 / Llama-3 style).

    >>> tok = Tokenizer.train(texts=["low lower lowest " * 50], vocab_size=262, pattern="gpt2")
    >>> tok.vocab_size
    262
    >>> tok.decode(tok.encode_ordinary("lowest low"))
    'lowest low'
    """

    def __init__(self, model: _core.BpeModel, *, merge_counts: Sequence[int] = ()) -> None:
        self._model = model
        self._merge_counts = list(merge_counts)

    # ---- training -------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        files: PathLike | Iterable[PathLike] | None = None,
        *,
        texts: Iterable[str] | None = None,
        vocab_size: int,
        pattern: str = "cl100k",
        special_tokens: Sequence[str] = (),
        min_frequency: int = 0,
        tie_order: str = "hf",
        errors: str = "strict",
        progress: ProgressCallback | None = None,
        num_threads: int | None = None,
    ) -> Tokenizer:
        """Learn a byte-level BPE vocabulary.

        Args:
            files: text files (UTF-8) or directories of ``*.txt`` files, read in blocks; each
                file is one document.
            texts: any iterable of strings, consumed lazily in batches; each string is one
                document (pieces never cross documents).
            vocab_size: final size, counting the 256 byte tokens and ``special_tokens``.
            pattern: ``"gpt2"``, ``"cl100k"``, ``"o200k"`` or any regex (``fancy-regex``
                syntax; text between matches becomes pieces too, as HF ``Split("Isolated")``).
            special_tokens: given ids ``0..k-1`` in order (HF layout); never merged.
            min_frequency: stop when the best pair occurs fewer times.
            tie_order: ``"hf"`` (HF ``BpeTrainer``: smallest pair in GPT-2 alphabet order wins
                ties) or ``"bytes"`` (rustbpe: byte-value order).
            errors: invalid UTF-8 in files: ``"strict"`` (raise, naming file and byte offset),
                ``"replace"`` or ``"ignore"``.
            progress: called as ``progress(stage, done, total)`` with stage ``"count"`` (bytes
                read) or ``"merge"`` (merges done); return ``False`` or raise to stop.
            num_threads: worker threads (default: all cores). Results do not depend on it.
        """
        if files is None and texts is None:
            raise InputError("give files=... or texts=... to train on")
        paths = [str(p) for p in expand_files(files)] if files is not None else None
        model, counts = _core.train_bpe(
            files=paths,
            texts=texts,
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(special_tokens),
            pattern=pattern,
            tie_order=tie_order,
            errors=errors,
            progress=progress,
            num_threads=num_threads,
        )
        return cls(model, merge_counts=counts)

    # ---- files ----------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: PathLike) -> Tokenizer:
        """Load a tokenizer file; the format is detected (HF ``tokenizer.json``)."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such file")
        with p.open("rb") as fh:
            head = fh.read(64).lstrip()
        if head.startswith(b"{"):
            return cls(_core.BpeModel.from_json_file(str(p)))
        raise FormatError(f"{p}: not a tokenizer.json (a JSON object was expected)")

    def to_json(self) -> str:
        """The tokenizer as HF ``tokenizer.json`` text (loadable by ``tokenizers``)."""
        return self._model.to_json()

    def save(self, path: PathLike, *, overwrite: bool = False) -> Path:
        """Write ``tokenizer.json`` atomically. An existing file is kept unless ``overwrite``."""
        p = Path(path)
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
        p.parent.mkdir(parents=True, exist_ok=True)
        text = self.to_json()
        fd, tmp = tempfile.mkstemp(prefix=p.name + ".", suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return p

    # ---- vocabulary -----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._model.vocab_size

    @property
    def pattern(self) -> str:
        """The pre-tokenization regex."""
        return self._model.pattern

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self._model.special_tokens)

    @property
    def merges(self) -> list[tuple[bytes, bytes]]:
        """Merges in priority order, as byte strings."""
        tb = self._model.token_bytes
        return [(tb(a), tb(b)) for a, b in self._model.merges]

    @property
    def merge_counts(self) -> list[int]:
        """Pair frequency of each merge when it was learned (empty for loaded tokenizers)."""
        return list(self._merge_counts)

    def id_to_token(self, id: int) -> bytes:
        return self._model.token_bytes(id)

    def token_to_id(self, token: bytes | str) -> int | None:
        return self._model.token_id(token)

    def pretokenize(self, text: str) -> list[str]:
        """The pieces BPE works on."""
        return _core.pretokenize(self.pattern, text)

    # ---- encoding -------------------------------------------------------------------------
    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text``; special-token text is encoded as plain text."""
        return self._model.encode_ordinary(text)

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        return self._model.decode_bytes(list(ids))

    def decode(self, ids: Sequence[int], errors: str = "replace") -> str:
        """Text of ``ids``; ``errors`` applies to invalid UTF-8 (``strict|replace|ignore``)."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, pattern={self._model.pattern_name!r})"
