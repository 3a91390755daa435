"""Counting pre-tokenized pieces, the first step of BPE training, as a step of its own
(docs/distributed.md §1): :func:`count_pieces` reads text files, Parquet / JSONL shards and
iterables of str or dicts into a :class:`PieceCounts` table; tables are saved, shipped
(pickled through their compact binary form, docs/distributed.md §2) and merged, and
:meth:`tokforge.Tokenizer.train_from_counts` learns merges from one. Counting and merging are
sums, so a table counted in parts and merged in any order equals the table of the whole input,
and so do the merges learned from it.

>>> a = count_pieces(texts=["low lower"], pattern="gpt2")
>>> b = count_pieces(texts=["lowest low"], pattern="gpt2")
>>> ab = a.merge(b)
>>> ab == count_pieces(texts=["low lower", "lowest low"], pattern="gpt2")
True
>>> ab.get(" low"), ab.docs, len(ab)
(1, 2, 4)
>>> PieceCounts.from_bytes(ab.to_bytes()) == ab
True
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any, Callable, Optional

from . import _core
from .errors import InputError
from .inputs import PathLike, expand_shards, read_column, shard_format, texts_of, write_atomic

__all__ = ["PieceCounts", "count_pieces"]

ProgressCallback = Callable[[str, int, int], Optional[bool]]


class PieceCounts:
    """Unique pre-tokenized pieces with their ``u64`` counts, the pattern that cut them and the
    documents and bytes they came from: the input of BPE's merge phase. Immutable; ``==``
    compares contents (tables equal in content have equal :meth:`to_bytes`).

    Memory: about 60 bytes plus the piece length per unique piece. ``pruned_below > 0`` means
    pieces rarer than that were dropped to stay within ``max_pieces`` (only when counting was
    called with ``prune=True``): the counts are then lower bounds and the merges learned from the
    table are approximate (docs/distributed.md §3).
    """

    def __init__(self, native: _core.PieceCounts) -> None:
        if not isinstance(native, _core.PieceCounts):
            raise InputError(
                f"PieceCounts(native) takes a tokforge._core.PieceCounts, not "
                f"{type(native).__name__}; use count_pieces(...) or PieceCounts.load(path)"
            )
        self._native = native

    @property
    def native(self) -> _core.PieceCounts:
        """The native table (what :meth:`Tokenizer.train_from_counts` hands to the core)."""
        return self._native

    # ---- bytes and files ------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, *, name: str = "<bytes>") -> PieceCounts:
        """Read the binary form (docs/distributed.md §2); a truncated or corrupt table is a
        :class:`FormatError` naming ``name`` and the byte offset."""
        return cls(_core.PieceCounts.from_bytes(bytes(data), name))

    def to_bytes(self) -> bytes:
        """The binary form: pieces sorted and front-coded, a checksum at the end."""
        return self._native.to_bytes()

    @classmethod
    def load(cls, path: PathLike) -> PieceCounts:
        """Read a table written by :meth:`save`."""
        return cls.from_bytes(Path(path).read_bytes(), name=os.fspath(path))

    def save(self, path: PathLike, *, overwrite: bool = False) -> Path:
        """Write :meth:`to_bytes` atomically (``.tfpc`` by convention)."""
        return write_atomic(path, self.to_bytes(), overwrite)

    def __reduce__(self) -> tuple[Callable[[bytes], PieceCounts], tuple[bytes]]:
        return (_from_bytes, (self.to_bytes(),))

    # ---- combining ------------------------------------------------------------------------
    def merge(
        self, *others: PieceCounts, max_pieces: int | None = None, prune: bool = False
    ) -> PieceCounts:
        """A new table with the counts, documents and bytes of this one and ``others`` added
        (all cut with the same pattern), kept within ``max_pieces`` like :func:`count_pieces`."""
        for i, o in enumerate(others):
            if not isinstance(o, PieceCounts):
                raise InputError(f"others[{i}] is {type(o).__name__}, not PieceCounts")
        native = self._native.merge(
            [o.native for o in others], max_pieces=max_pieces, prune=prune
        )
        return PieceCounts(native)

    def __add__(self, other: PieceCounts) -> PieceCounts:
        if not isinstance(other, PieceCounts):
            return NotImplemented
        return self.merge(other)

    # ---- contents -------------------------------------------------------------------------
    def get(self, piece: str | bytes) -> int:
        """The count of ``piece`` (0 if absent)."""
        return self._native.get(piece.encode("utf-8") if isinstance(piece, str) else piece)

    def most_common(self, n: int = 10) -> list[tuple[bytes, int]]:
        """The ``n`` most frequent pieces, ties by bytes."""
        return self._native.most_common(n)

    @property
    def pattern(self) -> str:
        """The pre-tokenization regex the pieces were cut with."""
        return self._native.pattern

    @property
    def pattern_name(self) -> str:
        """``gpt2``, ``cl100k``, ``o200k`` or ``custom``."""
        return self._native.pattern_name

    @property
    def docs(self) -> int:
        """Documents counted (files, strings, rows or lines, per ``documents``)."""
        return self._native.docs

    @property
    def bytes(self) -> int:
        """UTF-8 bytes of text counted."""
        return self._native.bytes

    @property
    def total(self) -> int:
        """Pieces counted (the sum of all counts)."""
        return self._native.total

    @property
    def pruned_below(self) -> int:
        """0 for exact counts, else the count below which pieces were dropped."""
        return self._native.pruned_below

    def __len__(self) -> int:
        return len(self._native)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PieceCounts):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"PieceCounts({len(self)} pieces, {self.docs} docs, {self.bytes} bytes, "
            f"pattern={self.pattern_name!r}" + (f", pruned_below={self.pruned_below}"
                                                if self.pruned_below else "") + ")"
        )


def _from_bytes(data: bytes) -> PieceCounts:
    return PieceCounts.from_bytes(data, name="<pickle>")


def count_pieces(
    files: PathLike | Iterable[PathLike] | None = None,
    *,
    texts: Iterable[Any] | None = None,
    column: str = "text",
    pattern: str = "cl100k",
    documents: str = "file",
    errors: str = "strict",
    max_pieces: int | None = None,
    prune: bool = False,
    progress: ProgressCallback | None = None,
    num_threads: int | None = None,
) -> PieceCounts:
    """Count the pre-tokenized pieces of a corpus.

    Args:
        files: text files (UTF-8, streamed in blocks), Parquet and JSONL shards (``column``
            read with ``pyarrow`` in record batches), or directories of them.
        texts: any iterable of str, or of dicts such as HF ``datasets`` rows (``row[column]``),
            consumed lazily.
        documents: ``"file"``: a text file, a row or a string is one document; ``"line"``:
            every line (ending after its ``\\n``) is one, as HF ``tokenizers`` reads files in
            ``train([file])``. Pieces never cross documents.
        pattern: ``"gpt2"``, ``"cl100k"``, ``"o200k"`` or a regex.
        errors: invalid UTF-8 in text files: ``"strict"``, ``"replace"`` or ``"ignore"``.
        max_pieces: memory bound in unique pieces (None: unbounded). Past it counting stops
            with a :class:`TrainingError`, unless ``prune=True``: then pieces rarer than 2, 4, 8,
            ... are dropped until half the bound is left (docs/distributed.md §3).
        progress: ``progress("count", bytes_done, bytes_total)``; return ``False`` to stop.
        num_threads: worker threads (default: all cores). The table does not depend on it.

    >>> c = count_pieces(texts=["a b\\n  c", {"text": "a"}], pattern="gpt2", documents="line")
    >>> c.docs, c.get("a"), c.get(" b"), c.get("\\n")
    (3, 2, 1, 1)
    """
    if files is None and texts is None:
        raise InputError("give files=... or texts=... to count")
    text_files: list[Path] = []
    shards: list[Path] = []
    if files is not None:
        for p in expand_shards(files):
            if shard_format(p) == "text":
                text_files.append(p)
            else:
                shards.append(p)
    streams: list[Iterator[str]] = []
    if shards:
        streams.append(
            chain.from_iterable(chain.from_iterable(read_column(s, column=column) for s in shards))
        )
    if texts is not None:
        streams.append(texts_of(texts, column=column))
    native = _core.count_pieces(
        files=[os.fspath(p) for p in text_files] or None,
        texts=chain.from_iterable(streams) if streams else None,
        pattern=pattern,
        documents=documents,
        errors=errors,
        max_pieces=max_pieces,
        prune=prune,
        progress=progress,
        num_threads=num_threads,
    )
    return PieceCounts(native)
