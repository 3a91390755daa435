"""Batch-level dynamic merging ("dynamic tokenization", Feher, Vulić, Minixhofer, ACL 2025).

A batch already tokenized by a model's own subword tokenizer is re-segmented *inside the batch*:
the most frequent adjacent pair of units across all sequences is merged everywhere, again and
again, never across a word boundary. The new units (mostly whole words of this batch) get
embeddings from a hypernetwork; the sequences get shorter. The algorithm runs in Rust
(``rust/src/dynamic.rs``: linked lists, pair occurrence sets, lazy heap, O(N log N), GIL
released), which also checks every argument; this module converts the arguments and owns the
result type. The obviously-correct twin is ``tests/reference/dynamic_ref.py``; the design notes
are docs/dynamic_merging.md (semantics §3, the fast implementation §4, the output §5).

>>> from tokforge.dynamic import merge_batch
>>> r = merge_batch([[0, 1, 2, 3, 4, 5], [4, 5, 0, 1, 2], [6, 2, 3]],
...                 word_ids=[[0, 0, 0, 1, 2, 2], [0, 0, 1, 1, 1], [0, 0, 1]], min_count=1)
>>> [m.new for m in r.merges]
[(0, 1), (0, 1, 2), (4, 5), (6, 2)]
>>> r.sequences()[1].tolist(), r.units[2]
([2, 0], (4, 5))
>>> (r.len_initial, r.len_final, r.len_word_level)
(14, 7, 7)
>>> [x.tolist() for x in r.expand()][2]
[6, 2, 3]

With a tokenizer (anything :meth:`tokforge.Tokenizer.coerce` accepts), word boundaries come
from its pre-tokenization and units get strings:

>>> from tokforge import Tokenizer
>>> tok = Tokenizer.train(texts=["the unbelievable redo, the doable"] * 5, vocab_size=270)
>>> r = merge_batch_texts(["unbelievable, unbelievable", "unbelievable redo"], tok, min_count=1)
>>> r.strings()[0]
['unbelievable', ',', ' unbelievable']
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from . import _core
from .errors import InputError
from .tokenizer import Tokenizer

__all__ = [
    "BOUNDARY_PATTERNS",
    "Merge",
    "MergeResult",
    "UnitEmbedder",
    "from_hf_encodings",
    "merge_batch",
    "merge_batch_texts",
    "token_table",
]

#: Pre-tokenization regexes of the boundary modes that do not use the tokenizer's own
#: (docs/dynamic_merging.md §3.2). ``whitespace``: a word is an optional whitespace char plus a run
#: of non-whitespace (punctuation stays in the word). ``whitespace_hyphen``: as ``whitespace``, but
#: punctuation is a word of its own except ``-`` between letters (``well-known`` is one). Defined in
#: Rust (``dynamic::BOUNDARY_PATTERNS``).
BOUNDARY_PATTERNS: dict[str, str] = dict(_core.BOUNDARY_PATTERNS)

Key = Union[tuple[int, ...], bytes]
WordBoundaries = Union[str, Sequence[Sequence[bool]], Callable[[np.ndarray], Sequence[bool]]]


class Merge(NamedTuple):
    """One step of the merge log. Keys are tuples of base ids (``identity="ids"``) or byte
    strings (``identity="bytes"``)."""

    left: Key
    right: Key
    new: Key
    #: occurrences of the pair when it was chosen (overlaps counted: ``x x x`` has 2)
    count: int  # type: ignore[assignment]  # a field named like tuple.count, kept for the API
    #: occurrences merged (the length drop: ``x x x`` -> ``xx x`` applies 1)
    applied: int
    #: the sequence of a ``per_sample`` merge, else -1
    sample: int


def token_table(tokens: Sequence[Optional[bytes]], special_ids: Sequence[int] = ()) -> Any:
    """An id -> bytes table, built by hand, for a vocabulary that tokforge cannot load as a
    :class:`~tokforge.Tokenizer`; pass it as ``tokenizer=`` with precomputed ``word_ids`` or
    word-start flags (it has no pre-tokenizer). ``None`` marks an id with no token.

    >>> t = token_table([b"a", b"b", None, b"<s>"], special_ids=[3])
    >>> len(t)
    4
    """
    return _core.TokenTable(list(tokens), [int(i) for i in special_ids])


# ---- argument conversion (the values are checked in Rust) ---------------------------------
def _as_int_array(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise InputError(f"{what} must be a 1-D sequence of integers, got dtype {a.dtype} and "
                         f"shape {a.shape}")
    if a.dtype == np.uint64 and a.max() > np.iinfo(np.int64).max:
        raise InputError(f"{what} holds {a.max()}, which does not fit int64")
    return np.ascontiguousarray(a, dtype=np.int64)


def _as_flags(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.size and (a.ndim != 1 or not (a.dtype == bool or np.issubdtype(a.dtype, np.integer))):
        raise InputError(f"{what} must be word-start flags: a 1-D sequence of bools (or 0/1)")
    return _as_int_array(a.astype(np.int64) if a.dtype == bool else a, what)


def _as_word_ids(x: Any, what: str) -> np.ndarray:
    if isinstance(x, (list, tuple)) and any(v is None for v in x):  # HF encoding.word_ids
        x = [-1 if v is None else v for v in x]
    return _as_int_array(x, what)


def _ragged(seqs: Any, what: str, kind: str, convert: Callable[[Any, str], np.ndarray]
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(flat int64 values, int64 length of each entry)`` of one entry per sequence."""
    if isinstance(seqs, (str, bytes)) or not hasattr(seqs, "__len__"):
        raise InputError(f"{what} must be a sequence with one entry per sequence ({kind})")
    parts = [convert(s, f"{what}[{i}]") for i, s in enumerate(seqs)]
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return flat, lengths


def _int(value: Any, name: str, *, optional: bool = True) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer{' or None' if optional else ''}, "
                         f"got {value!r}")
    if not -(2**63) <= value < 2**63:
        raise InputError(f"{name} = {value} does not fit a 64-bit integer")
    return int(value)


def _float(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number or None, got {value!r}")
    return float(value)


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, got {value!r}")
    return value


def _positive_int(value: Any, name: str) -> int:
    """For the Python-only helpers below (no native counterpart checks these)."""
    v = _int(value, name, optional=False)
    if v is None or v < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    return v


def _boundaries(b: WordBoundaries, flat: np.ndarray, offs: np.ndarray
                ) -> str | tuple[np.ndarray, np.ndarray]:
    """A mode name as is, or ``(flags, lengths)`` from flags or a callable."""
    if isinstance(b, str):
        return b
    if callable(b):
        b = [b(flat[offs[s]:offs[s + 1]]) for s in range(len(offs) - 1)]
    return _ragged(b, "word_boundaries", "a mode name, a callable or word-start flags",
                   _as_flags)


def _keep_last(k: int | Sequence[int]) -> int | np.ndarray:
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
        return _int(k, "keep_last", optional=False)  # type: ignore[return-value]
    return _as_int_array(k, "keep_last")


def _source(tokenizer: Any) -> tuple[Tokenizer | None, Any]:
    """``(the Tokenizer, or None for a token table, what the native code takes)``."""
    if tokenizer is None:
        return None, None
    if isinstance(tokenizer, _core.TokenTable):
        return None, tokenizer
    tok = Tokenizer.coerce(tokenizer)
    return tok, tok.model


# ---- the API ------------------------------------------------------------------------------
def merge_batch(
    batch: Sequence[Sequence[int]] | np.ndarray,
    *,
    offsets: Sequence[int] | np.ndarray | None = None,
    word_boundaries: WordBoundaries = "word",
    word_ids: Sequence[Sequence[Optional[int]]] | np.ndarray | None = None,
    tokenizer: Any = None,
    max_merges: int | None = None,
    target_reduction: float | None = None,
    relative_to: str = "input",
    target_length: int | None = None,
    min_count: int = 2,
    per_sample: bool = False,
    max_unit_constituents: int | None = None,
    keep_last: int | Sequence[int] = 0,
    identity: str = "ids",
    num_threads: int | None = None,
) -> MergeResult:
    """Merge the most frequent adjacent pairs of a tokenized batch, never across words.

    Args:
        batch: one sequence of base token ids per text (lists or arrays; any tokenizer), or
            with ``offsets`` a flat array of all ids, sequence ``s`` at
            ``batch[offsets[s]:offsets[s+1]]``.
        word_boundaries: where words start. A mode, derived from ``tokenizer``: ``"word"``
            (its pre-tokenization pieces: the paper's word-level boundaries), ``"whitespace"``,
            ``"whitespace_hyphen"`` (see :data:`BOUNDARY_PATTERNS`) or ``"none"`` (merges may
            cross words; works without a tokenizer). Or word-start flags, one bool per token
            (the first token of a sequence always starts a word); or a callable
            ``f(ids: np.ndarray) -> flags`` called per sequence. Special tokens of
            ``tokenizer`` never merge.
        word_ids: instead of boundaries, the word of each token (``-1`` or ``None`` = never
            merge), e.g. HF ``encoding.word_ids`` (see :func:`from_hf_encodings`); used as
            given.
        tokenizer: anything :meth:`tokforge.Tokenizer.coerce` accepts (a ``Tokenizer``, a
            tokenizer file, a tiktoken ``Encoding``, a HF tokenizer), or a :func:`token_table`:
            gives boundaries, unit strings and ``identity="bytes"``.
        max_merges: stop after this many merges (per sequence with ``per_sample``).
        target_reduction: stop once the length is reduced by this fraction, of the input
            length (``relative_to="input"``) or of the way to word level
            (``relative_to="word_level"``, the paper's reduction %: 0 = subwords, 1 = words).
        target_length: stop once the batch (each sequence with ``per_sample``) has at most
            this many units.
        min_count: stop when the most frequent pair occurs fewer times (1 merges up to word
            level).
        per_sample: merge each sequence on its own (its own merge log and stop rules).
        max_unit_constituents: never form a unit of more base tokens (hypernetwork maxlen).
        keep_last: the last ``k`` tokens of each sequence (an int, or one per sequence) never
            merge: the decoder-prefill variant keeps the final prompt token, or the
            continuation to score, in the original vocabulary.
        identity: units are equal when their base ids are (``"ids"``: exactly invertible) or
            their bytes are (``"bytes"``: the reference's rule; needs ``tokenizer``).
        num_threads: threads for ``per_sample`` and boundary derivation; results do not
            depend on it.

    Stop rules are checked before each merge, in the reference's order: ``max_merges``, the
    target, ``min_count``, no pair left. Ties between pairs go to the one whose leftmost
    occurrence comes first (sequence, then position). Raises :class:`tokforge.InputError`
    for inputs that cannot be used (:class:`tokforge.VocabError` for ids the tokenizer does
    not have; :class:`tokforge.FormatError` for a tokenizer tokforge cannot load).

    >>> r = merge_batch([[5, 5, 5, 5]], word_boundaries="none")
    >>> r.sequences()[0].tolist(), r.units
    ([0, 0], [(5, 5)])
    """
    if offsets is None:
        flat, lengths = _ragged(batch, "batch", "of token ids, or a flat array with offsets=",
                                _as_int_array)
        offs = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offs[1:])
    else:
        flat, offs = _as_int_array(batch, "batch"), _as_int_array(offsets, "offsets")
    tok, tokens = _source(tokenizer)
    native = _core.merge_batch(
        flat, offs,
        word_boundaries=_boundaries(word_boundaries, flat, offs),
        word_ids=None if word_ids is None else _ragged(word_ids, "word_ids", "of word ids",
                                                       _as_word_ids),
        keep_last=_keep_last(keep_last),
        max_merges=_int(max_merges, "max_merges"),
        min_count=_int(min_count, "min_count", optional=False) or 0,
        target_reduction=_float(target_reduction, "target_reduction"),
        relative_to=_str(relative_to, "relative_to"),
        target_length=_int(target_length, "target_length"),
        per_sample=bool(per_sample),
        max_unit_constituents=_int(max_unit_constituents, "max_unit_constituents"),
        identity=_str(identity, "identity"),
        tokens=tokens,
        num_threads=num_threads)
    return MergeResult(native, identity=identity, tokenizer=tok)


def merge_batch_texts(texts: Sequence[str], tokenizer: Any, **options: Any) -> MergeResult:
    """Tokenize ``texts`` with ``tokenizer`` (anything :meth:`tokforge.Tokenizer.coerce`
    accepts: tokforge, tiktoken, HF ``tokenizers``, a tokenizer file) as
    :meth:`~tokforge.Tokenizer.encode_ordinary` does, then :func:`merge_batch` with word
    boundaries from its pre-tokenization. Options are those of :func:`merge_batch`. To keep a
    HF tokenizer's template tokens, encode with it and pass ``from_hf_encodings(...)``.

    >>> from tokforge import Tokenizer
    >>> tok = Tokenizer.train(texts=["a cat, a hat"] * 3, vocab_size=260)
    >>> r = merge_batch_texts(["a cat a cat", "a cat"], tok, min_count=1)
    >>> r.strings()
    [['a', ' cat', ' a', ' cat'], ['a', ' cat']]
    """
    if isinstance(texts, str):
        raise InputError("texts must be a sequence of strings, not one string")
    tok = Tokenizer.coerce(tokenizer)
    return merge_batch([tok.encode_ordinary(t) for t in texts], tokenizer=tok, **options)


def from_hf_encodings(encodings: Any) -> tuple[list[list[int]], list[list[int]]]:
    """``(ids, word_ids)`` from HF ``tokenizers`` encodings (a list, or a ``BatchEncoding``
    of ``transformers``): ``word_ids`` has ``-1`` for special tokens and padding. Pass them
    as ``merge_batch(ids, word_ids=word_ids, tokenizer=hf_tokenizer)``."""
    encs = getattr(encodings, "encodings", None) or encodings
    ids, wids = [], []
    for e in encs:
        mask = getattr(e, "attention_mask", None) or [1] * len(e.ids)
        ids.append(list(e.ids))
        wids.append([-1 if (w is None or not m) else w for w, m in zip(e.word_ids, mask)])
    return ids, wids


class MergeResult:
    """Output of :func:`merge_batch`: the merged batch, its unit table and the merge log
    (docs/dynamic_merging.md §5). Arrays are numpy, flat with offsets, read once from the native
    result.

    Attributes:
        unit_ids: ``int32[N']`` batch-local unit index of each output position.
        seq_offsets: ``int64[B+1]``: sequence ``s`` is ``unit_ids[seq_offsets[s]:seq_offsets[s+1]]``.
        spans: ``int32[N', 2]``: ``[start, end)`` of each position in its sequence's base ids.
        word_ids: ``int32[N']`` word of each position (``-1`` = special / kept).
        unit_constituents, unit_offsets: base ids of each unit (of its first appearance);
            units are ordered by first appearance.
        unit_key: ``int32[U]`` key of each unit in the merge log's numbering.
        unit_base_id: ``int32[U]`` the base id of a single-token unit, else ``-1``.
        merges: the merge log, a list of :class:`Merge`.
        len_initial, len_final, len_word_level: total lengths before, after, and at word level.
        identity: ``"ids"`` or ``"bytes"``, as merged.
    """

    def __init__(self, native: _core.MergeResult, *, identity: str,
                 tokenizer: Tokenizer | None = None) -> None:
        self._native = native
        self._tokenizer = tokenizer
        self.identity = identity
        self.len_initial: int = native.len_initial
        self.len_final: int = native.len_final
        self.len_word_level: int = native.len_word_level

    @cached_property
    def unit_ids(self) -> np.ndarray:
        return self._native.unit_ids

    @cached_property
    def seq_offsets(self) -> np.ndarray:
        return self._native.seq_offsets

    @cached_property
    def spans(self) -> np.ndarray:
        return self._native.spans

    @cached_property
    def word_ids(self) -> np.ndarray:
        return self._native.word_ids

    @cached_property
    def unit_key(self) -> np.ndarray:
        return self._native.unit_key

    @cached_property
    def unit_offsets(self) -> np.ndarray:
        return self._native.unit_offsets

    @cached_property
    def unit_constituents(self) -> np.ndarray:
        return self._native.unit_constituents

    @cached_property
    def unit_base_id(self) -> np.ndarray:
        return self._native.unit_base_id

    @cached_property
    def _key_bytes(self) -> list[bytes] | None:
        return self._native.key_bytes

    # ---- sizes ------------------------------------------------------------------------------
    @property
    def num_sequences(self) -> int:
        return len(self.seq_offsets) - 1

    @property
    def num_units(self) -> int:
        """Distinct units in the output (``U``)."""
        return len(self.unit_base_id)

    @property
    def lengths(self) -> np.ndarray:
        """``int64[B]`` units per sequence."""
        return np.diff(self.seq_offsets)

    @property
    def reduction(self) -> float:
        """Absolute length reduction ``1 - L/L0`` (0 for an empty batch)."""
        return 1.0 - self.len_final / self.len_initial if self.len_initial else 0.0

    @property
    def reduction_word_level(self) -> float:
        """Reduction relative to word level ``(L0-L)/(L0-Lw)`` (the paper's %; 1 when the
        input is already at word level)."""
        d = self.len_initial - self.len_word_level
        return (self.len_initial - self.len_final) / d if d else 1.0

    # ---- units ------------------------------------------------------------------------------
    def sequences(self) -> list[np.ndarray]:
        """Unit ids of each sequence."""
        o = self.seq_offsets
        return [self.unit_ids[o[s]:o[s + 1]] for s in range(self.num_sequences)]

    @property
    def units(self) -> list[tuple[int, ...]]:
        """Base ids of each unit, by unit id."""
        c, o = self.unit_constituents.tolist(), self.unit_offsets.tolist()
        return [tuple(c[o[u]:o[u + 1]]) for u in range(self.num_units)]

    @property
    def unit_bytes(self) -> list[bytes] | None:
        """Bytes of each unit (``None`` without a tokenizer)."""
        kb = self._key_bytes
        return None if kb is None else [kb[k] for k in self.unit_key.tolist()]

    @property
    def unit_strings(self) -> list[str] | None:
        """Text of each unit (invalid UTF-8 replaced; ``None`` without a tokenizer)."""
        ub = self.unit_bytes
        return None if ub is None else [b.decode("utf-8", errors="replace") for b in ub]

    def strings(self) -> list[list[str]]:
        """Each sequence as a list of unit strings (needs a tokenizer)."""
        us = self.unit_strings
        if us is None:
            raise InputError("unit strings need tokenizer=... in merge_batch")
        return [[us[u] for u in seq.tolist()] for seq in self.sequences()]

    @cached_property
    def merges(self) -> list[Merge]:
        """The merge log in order."""
        key: Callable[[int], Key]
        if self.identity == "bytes":
            key = (self._key_bytes or []).__getitem__
        else:
            c = self._native.key_constituents.tolist()
            o = self._native.key_offsets.tolist()

            def key(k: int) -> Key:
                return tuple(c[o[k]:o[k + 1]])

        return [Merge(key(a), key(b), key(n), count, applied, sample)
                for a, b, n, count, applied, sample in self._native.merge_log.tolist()]

    # ---- inverse ----------------------------------------------------------------------------
    def expand(self, units: Sequence[Sequence[int]] | None = None) -> list[np.ndarray]:
        """Base ids of each sequence from unit ids (default: this result's): the inverse of
        the merge. Exact with ``identity="ids"``; with ``"bytes"`` the bytes are equal."""
        if units is None:
            flat, offs = self.unit_ids.astype(np.int64), self.seq_offsets
        else:
            flat, lengths = _ragged(units, "units", "of unit ids", _as_int_array)
            offs = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offs[1:])
        if len(flat) and (flat.min() < 0 or flat.max() >= self.num_units):
            raise InputError(f"unit ids must be in [0, {self.num_units})")
        starts = self.unit_offsets[flat]
        lens = self.unit_offsets[flat + 1] - starts
        out_off = np.zeros(len(flat) + 1, dtype=np.int64)
        np.cumsum(lens, out=out_off[1:])
        idx = np.repeat(starts - out_off[:-1], lens) + np.arange(out_off[-1])
        base = self.unit_constituents[idx]
        cut = out_off[offs]
        return [base[cut[s]:cut[s + 1]] for s in range(len(offs) - 1)]

    # ---- model inputs -----------------------------------------------------------------------
    def to_padded(self, pad_unit: int = -1, *, side: str = "right"
                  ) -> tuple[np.ndarray, np.ndarray]:
        """``(int32[B, Lmax] unit ids, bool[B, Lmax] mask)``, padded on ``side``."""
        if side not in ("right", "left"):
            raise InputError(f"side={side!r} is not 'right' or 'left'")
        lens = self.lengths
        lmax = int(lens.max()) if len(lens) else 0
        out = np.full((self.num_sequences, lmax), pad_unit, dtype=np.int32)
        mask = np.zeros((self.num_sequences, lmax), dtype=bool)
        col = np.arange(lmax)
        mask[:] = col < lens[:, None] if side == "right" else col >= (lmax - lens)[:, None]
        out[mask] = self.unit_ids
        return out, mask

    def encoder_inputs(self, pad_unit: int = -1) -> dict[str, np.ndarray]:
        """Right-padded ``unit_ids``, ``attention_mask`` and ``position_ids`` (encoders)."""
        ids, mask = self.to_padded(pad_unit, side="right")
        pos = np.where(mask, np.cumsum(mask, axis=1) - 1, 0)
        return {"unit_ids": ids, "attention_mask": mask.astype(np.int64), "position_ids": pos}

    def prefill_inputs(self, pad_unit: int = -1) -> dict[str, np.ndarray]:
        """Left-padded inputs for decoder prefill: ``unit_ids``, ``attention_mask``,
        ``position_ids`` (``0..L_b-1`` on the real units) and ``last_index`` (the column whose
        logits predict the next original token: always the last). Merge with ``keep_last=1``
        so that the final prompt token stays a base token."""
        ids, mask = self.to_padded(pad_unit, side="left")
        pos = np.where(mask, np.cumsum(mask, axis=1) - 1, 0)
        last = np.full(self.num_sequences, ids.shape[1] - 1, dtype=np.int64)
        return {"unit_ids": ids, "attention_mask": mask.astype(np.int64), "position_ids": pos,
                "last_index": last}

    def align_word_labels(self, labels: Sequence[Sequence[int]], *, ignore_index: int = -100
                          ) -> list[np.ndarray]:
        """Token-classification labels per unit: the first unit of each word gets
        ``labels[s][word_id]``, other units and specials ``ignore_index``."""
        out = []
        for s, seq_w in enumerate(np.split(self.word_ids, self.seq_offsets[1:-1])
                                  if self.num_sequences else []):
            lab = np.asarray(labels[s])
            first = np.ones(len(seq_w), dtype=bool)
            first[1:] = seq_w[1:] != seq_w[:-1]
            keep = first & (seq_w >= 0)
            if keep.any() and seq_w[keep].max() >= len(lab):
                raise InputError(f"labels[{s}] has {len(lab)} words, sequence {s} has more")
            row = np.full(len(seq_w), ignore_index, dtype=np.int64)
            row[keep] = lab[seq_w[keep]]
            out.append(row)
        return out

    def surface_matrix(self, maxlen: int, pad_id: int, *, surface: str = "provenance"
                       ) -> tuple[np.ndarray, int]:
        """``(int32[U, maxlen], n_truncated)``: each unit's decomposition into base ids for the
        hypernetwork, padded with ``pad_id``, truncated to ``maxlen``. ``surface="provenance"``
        uses the constituents; ``"retokenize"`` re-encodes the unit's bytes with the base
        model's merges and no pre-tokenizer (the reference, zett ``get_surface_form_matrix``)."""
        _positive_int(maxlen, "maxlen")
        decomp: Sequence[Sequence[int]]
        if surface == "provenance":
            decomp = self.units
        elif surface == "retokenize":
            unit_bytes = self.unit_bytes
            if self._tokenizer is None or unit_bytes is None:
                raise InputError("surface='retokenize' needs the base tokenizer's merges: pass "
                                 "tokenizer=... (not a token table) to merge_batch")
            flat, off = _core.retokenize(self._tokenizer.model, unit_bytes)
            decomp = [flat[off[i]:off[i + 1]].tolist() for i in range(len(unit_bytes))]
        else:
            raise InputError(f"surface={surface!r} is not 'provenance' or 'retokenize'")
        out = np.full((len(decomp), maxlen), pad_id, dtype=np.int32)
        truncated = 0
        for u, d in enumerate(decomp):
            truncated += len(d) > maxlen
            out[u, :min(len(d), maxlen)] = d[:maxlen]
        return out, truncated

    def __repr__(self) -> str:
        return (f"MergeResult(sequences={self.num_sequences}, units={self.num_units}, "
                f"merges={self._native.num_merges}, length {self.len_initial} -> "
                f"{self.len_final} (word level {self.len_word_level}))")


class UnitEmbedder:
    """Input embeddings for merged units from a hypernetwork, with an LRU cache
    (docs/dynamic_merging.md §5).

    ``hypernet(surface: int32[k, maxlen]) -> float[k, d]`` predicts rows for units not in the
    cache (it closes over the source embeddings and language, as ZeTT's hypernetwork takes
    them). Units whose base id is in ``special_ids`` (or, with ``keep_base_embeddings``, every
    single-token unit) use ``base_embeddings`` rows instead.

    >>> emb = UnitEmbedder(lambda s: s[:, :1].astype(float), maxlen=4, pad_id=-1)
    >>> r = merge_batch([[1, 2, 1, 2]], word_boundaries="none")
    >>> x, mask = emb.embed(r)
    >>> x.shape, emb.misses, emb.embed(r)[0].shape, emb.hits
    ((1, 2, 1), 1, (1, 2, 1), 1)
    """

    def __init__(self, hypernet: Callable[[np.ndarray], np.ndarray], *, maxlen: int,
                 pad_id: int, base_embeddings: np.ndarray | None = None,
                 special_ids: Sequence[int] = (), keep_base_embeddings: bool = False,
                 cache_size: int = 5000, surface: str = "provenance") -> None:
        _positive_int(cache_size, "cache_size")
        if (special_ids or keep_base_embeddings) and base_embeddings is None:
            raise InputError("special_ids / keep_base_embeddings need base_embeddings")
        self.hypernet = hypernet
        self.maxlen, self.pad_id, self.surface = maxlen, pad_id, surface
        self.base_embeddings = base_embeddings
        self.special_ids = frozenset(int(i) for i in special_ids)
        self.keep_base_embeddings = keep_base_embeddings
        self.cache_size = cache_size
        self._cache: OrderedDict[Any, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def unit_embeddings(self, result: MergeResult) -> np.ndarray:
        """``float[U, d]``: one row per unit of ``result``."""
        keys: list[Any] = (result.unit_bytes if result.identity == "bytes" else result.units) or []
        base = result.unit_base_id.tolist()
        rows: list[np.ndarray | None] = [None] * result.num_units
        todo = []
        for u, k in enumerate(keys):
            b = base[u]
            if b >= 0 and (b in self.special_ids or self.keep_base_embeddings):
                rows[u] = np.asarray(self.base_embeddings[b])  # type: ignore[index]
            elif k in self._cache:
                self._cache.move_to_end(k)
                rows[u] = self._cache[k]
                self.hits += 1
            else:
                todo.append(u)
        if todo:
            surf, _ = result.surface_matrix(self.maxlen, self.pad_id, surface=self.surface)
            pred = np.asarray(self.hypernet(surf[todo]))
            if pred.ndim != 2 or pred.shape[0] != len(todo):
                raise InputError(f"hypernet returned shape {pred.shape}, expected ({len(todo)}, d)")
            used = {keys[u] for u in range(len(keys))}
            for i, u in enumerate(todo):
                rows[u] = pred[i]
                self._cache[keys[u]] = pred[i]
                self.misses += 1
            # evict least recently used units, never those of this batch
            for k in list(self._cache):
                if len(self._cache) <= self.cache_size:
                    break
                if k not in used:
                    del self._cache[k]
        if not rows:
            return np.zeros((0, 0))
        return np.stack(rows)  # type: ignore[arg-type]

    def embed(self, result: MergeResult, *, side: str = "right") -> tuple[np.ndarray, np.ndarray]:
        """``(inputs_embeds float[B, Lmax, d], mask bool[B, Lmax])``; padding rows are 0."""
        table = self.unit_embeddings(result)
        ids, mask = result.to_padded(0, side=side)
        d = table.shape[1] if table.ndim == 2 else 0
        out = np.zeros(ids.shape + (d,), dtype=table.dtype if table.size else float)
        if table.size:
            out[mask] = table[ids[mask]]
        return out, mask
