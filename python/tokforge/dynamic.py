"""Batch-level dynamic merging ("dynamic tokenization", Feher, Vulić, Minixhofer, ACL 2025).

A batch already tokenized by a model's own subword tokenizer is re-segmented *inside the batch*:
the most frequent adjacent pair of units across all sequences is merged everywhere, again and
again, never across a word boundary. The new units (mostly whole words of this batch) get
embeddings from a hypernetwork; the sequences get shorter. The algorithm runs in Rust
(``rust/src/dynamic.rs``: linked lists, pair occurrence sets, lazy heap, O(N log N), GIL
released); this module owns the argument handling and the result type. The obviously-correct
twin is ``tests/reference/dynamic_ref.py``; the spec is ``shared/specs/dynamic_merging.md``.

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

With a tokenizer, word boundaries come from its pre-tokenization and units get strings:

>>> from tokforge import Tokenizer
>>> tok = Tokenizer.train(texts=["the unbelievable redo, the doable"] * 5, vocab_size=270)
>>> r = merge_batch_texts(["unbelievable, unbelievable", "unbelievable redo"], tok, min_count=1)
>>> r.strings()[0]
['unbelievable', ',', ' unbelievable']
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from . import _core
from .errors import InputError

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
#: (spec 3.2). ``whitespace``: a word is an optional whitespace char plus a run of
#: non-whitespace (punctuation stays in the word). ``whitespace_hyphen``: as ``whitespace``,
#: but punctuation is a word of its own except ``-`` between letters (``well-known`` is one).
BOUNDARY_PATTERNS = {
    "whitespace": r"\s?\S+|\s+(?!\S)|\s+",
    "whitespace_hyphen": r"\s?[^\s\p{P}]+(?:-[^\s\p{P}]+)*|\s?\p{P}+|\s+(?!\S)|\s+",
}
_MODES = ("word", "whitespace", "whitespace_hyphen", "none")

Key = Union[tuple[int, ...], bytes]
WordBoundaries = Union[str, Sequence[Sequence[bool]], Callable[[np.ndarray], Sequence[bool]]]


class Merge(NamedTuple):
    """One step of the merge log. Keys are tuples of base ids (``identity="ids"``) or byte
    strings (``identity="bytes"``)."""

    left: Key
    right: Key
    new: Key
    #: occurrences of the pair when it was chosen (overlaps counted: ``x x x`` has 2)
    count: int
    #: occurrences merged (the length drop: ``x x x`` -> ``xx x`` applies 1)
    applied: int
    #: the sequence of a ``per_sample`` merge, else -1
    sample: int


# ---- tokenizer adapters -------------------------------------------------------------------
class _Vocab:
    """What merging needs from a tokenizer: token bytes (a BPE ``TokenModel`` or ``TokenTable``), a
    pre-tokenization pattern (``None`` = the model's own), and optionally a retokenizer."""

    def __init__(self, tokens: Any, pattern: str | None,
                 retokenize: Callable[[list[bytes]], list[list[int]]] | None) -> None:
        self.tokens = tokens
        self.pattern = pattern
        self.retokenize = retokenize


_VOCABS: OrderedDict[int, tuple[Any, _Vocab]] = OrderedDict()


def token_table(tokens: Sequence[Optional[bytes]], special_ids: Sequence[int] = ()) -> Any:
    """An id -> bytes table for vocabularies that are not tokforge tokenizers; pass it as
    ``tokenizer=`` together with precomputed ``word_ids``/``word_boundaries``, or let
    :func:`merge_batch` build one from a tiktoken ``Encoding`` or HF ``Tokenizer``.

    >>> t = token_table([b"a", b"b", None, b"<s>"], special_ids=[3])
    >>> len(t)
    4
    """
    return _core.TokenTable(list(tokens), list(special_ids))


def _vocab(tokenizer: Any) -> _Vocab:
    """Adapter for a tokforge ``Tokenizer``, a tiktoken ``Encoding``, an HF ``tokenizers``
    ``Tokenizer`` or a :func:`token_table`; cached per object (8 most recent)."""
    key = id(tokenizer)
    hit = _VOCABS.get(key)
    if hit is not None and hit[0] is tokenizer:
        _VOCABS.move_to_end(key)
        return hit[1]
    v = _make_vocab(tokenizer)
    _VOCABS[key] = (tokenizer, v)
    while len(_VOCABS) > 8:
        _VOCABS.popitem(last=False)
    return v


def _make_vocab(tok: Any) -> _Vocab:
    if isinstance(tok, _core.TokenTable):
        return _Vocab(tok, None, None)
    model = getattr(tok, "_model", None)
    if isinstance(model, _core.TokenModel) and model.kind == "bpe":  # tokforge.Tokenizer
        def retok(units: list[bytes]) -> list[list[int]]:
            flat, off = _core.retokenize(model, units)
            return [flat[off[i]:off[i + 1]].tolist() for i in range(len(units))]
        return _Vocab(model, None, retok)
    if hasattr(tok, "decode_single_token_bytes") and hasattr(tok, "_pat_str"):  # tiktoken
        table: list[Optional[bytes]] = []
        for i in range(tok.n_vocab):
            try:
                table.append(tok.decode_single_token_bytes(i))
            except KeyError:
                table.append(None)
        specials = sorted(getattr(tok, "_special_tokens", {}).values())
        single = getattr(tok, "_encode_single_piece", None)
        retok = (lambda units: [list(single(u)) for u in units]) if single else None
        return _Vocab(_core.TokenTable(table, specials), tok._pat_str, retok)
    if hasattr(tok, "id_to_token") and hasattr(tok, "get_vocab_size"):  # HF tokenizers
        table = []
        for i in range(tok.get_vocab_size(with_added_tokens=True)):
            t = tok.id_to_token(i)
            if t is None:
                table.append(None)
            elif (spelled := _core.byte_level_decode(t)) is not None:
                table.append(spelled)
            elif len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
                table.append(bytes([int(t[3:5], 16)]))
            else:
                table.append(t.replace("\u2581", " ").encode("utf-8"))
        added = getattr(tok, "get_added_tokens_decoder", lambda: {})()
        specials = sorted(i for i, a in added.items() if getattr(a, "special", False))
        return _Vocab(_core.TokenTable(table, specials), None, None)
    raise InputError(
        f"tokenizer of type {type(tok).__name__} is not supported: pass a tokforge Tokenizer, a "
        "tiktoken Encoding, a tokenizers.Tokenizer or a tokforge.dynamic.token_table(...)")


# ---- input conversion ---------------------------------------------------------------------
def _as_int_array(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise InputError(f"{what} must be a 1-D sequence of integers, got dtype {a.dtype} and "
                         f"shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _flatten(seqs: Sequence[Any], what: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(seqs, (str, bytes)) or not hasattr(seqs, "__len__"):
        raise InputError(f"{what} must be a sequence of sequences of integers")
    parts = [_as_int_array(s, f"{what}[{i}]") for i, s in enumerate(seqs)]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    bad = np.flatnonzero((flat < 0) | (flat >= 2**31))
    if len(bad):
        i = int(bad[0])
        s = int(np.searchsorted(offsets, i, side="right")) - 1
        raise InputError(f"{what}[{s}][{i - offsets[s]}] = {flat[i]}: ids must be in [0, 2**31)")
    return flat, offsets


def _per_seq(values: Sequence[Any], offsets: np.ndarray, what: str,
             convert: Callable[[Any, str], np.ndarray]) -> np.ndarray:
    """Concatenate one array per sequence, checking each has the sequence's length."""
    b = len(offsets) - 1
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) != b:
        n = len(values) if hasattr(values, "__len__") else "?"
        raise InputError(f"{what} must have one entry per sequence: {b} sequences, {n} entries")
    parts = []
    for s in range(b):
        a = convert(values[s], f"{what}[{s}]")
        want = int(offsets[s + 1] - offsets[s])
        if len(a) != want:
            raise InputError(f"{what}[{s}] has {len(a)} entries but sequence {s} has {want} tokens")
        parts.append(a)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _as_flags(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.size == 0:
        return np.zeros(0, dtype=bool)
    if a.ndim != 1 or not (a.dtype == bool or np.issubdtype(a.dtype, np.integer)) or (
            a.dtype != bool and not np.isin(a, (0, 1)).all()):
        raise InputError(f"{what} must be word-start flags: a 1-D sequence of bools (or 0/1)")
    return a.astype(bool)


def _as_word_ids(x: Any, what: str) -> np.ndarray:
    if isinstance(x, (list, tuple)) and any(v is None for v in x):  # HF encoding.word_ids
        x = [-1 if v is None else v for v in x]
    return _as_int_array(x, what)


def _flags_to_word_ids(flags: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Word ids numbered from 0 in each sequence; the first token of a sequence starts a word."""
    f = flags.astype(np.int64)
    starts = offsets[:-1][offsets[:-1] < offsets[1:]]
    f[starts] = 1
    c = np.cumsum(f)
    lens = np.diff(offsets)
    first = np.repeat(c[offsets[:-1][lens > 0]], lens[lens > 0])
    return c - first


def _check_option(value: Any, name: str, *, lo: float, integer: bool, allow_none: bool = True):
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(
        value, (int, float, np.integer, np.floating))
    if isinstance(value, bool) or not ok or not value >= lo:
        kind = "an integer" if integer else "a number"
        raise InputError(f"{name} must be {kind} >= {lo}, got {value!r}")
    return value


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
            merge), e.g. HF ``encoding.word_ids``; used as given.
        tokenizer: a tokforge ``Tokenizer``, tiktoken ``Encoding``, HF ``tokenizers.Tokenizer``
            or :func:`token_table`: gives boundaries, unit strings and ``identity="bytes"``.
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
    for inputs that cannot be used.

    >>> r = merge_batch([[5, 5, 5, 5]], word_boundaries="none")
    >>> r.sequences()[0].tolist(), r.units
    ([0, 0], [(5, 5)])
    """
    if offsets is not None:
        flat = _as_int_array(batch, "batch")
        offs = _as_int_array(offsets, "offsets")
    else:
        flat, offs = _flatten(batch, "batch")
    if identity not in ("ids", "bytes"):
        raise InputError(f"identity={identity!r} is not 'ids' or 'bytes'")
    if relative_to not in ("input", "word_level"):
        raise InputError(f"relative_to={relative_to!r} is not 'input' or 'word_level'")
    _check_option(max_merges, "max_merges", lo=0, integer=True)
    _check_option(max_unit_constituents, "max_unit_constituents", lo=1, integer=True)
    _check_option(target_length, "target_length", lo=0, integer=True)
    _check_option(min_count, "min_count", lo=1, integer=True, allow_none=False)
    if target_reduction is not None:
        _check_option(target_reduction, "target_reduction", lo=0.0, integer=False)
        if not target_reduction <= 1.0:
            raise InputError(f"target_reduction must be in [0, 1], got {target_reduction!r}")
    if target_reduction is not None and target_length is not None:
        raise InputError("give at most one of target_reduction and target_length")
    target = None
    if target_reduction is not None:
        target = ("absolute" if relative_to == "input" else "word_level", float(target_reduction))
    elif target_length is not None:
        target = ("length", float(target_length))
    if len(offs) == 0 or offs[0] != 0 or offs[-1] != len(flat) or (np.diff(offs) < 0).any():
        raise InputError("offsets must start at 0, never decrease and end at len(batch)")

    vocab = _vocab(tokenizer) if tokenizer is not None else None
    wid = _word_ids(flat, offs, word_boundaries, word_ids, vocab, num_threads)
    wid = _apply_keep_last(wid, offs, keep_last)
    raw = _core.merge_batch(
        flat, offs, wid, max_merges=max_merges, min_count=int(min_count), target=target,
        per_sample=bool(per_sample), max_unit_constituents=max_unit_constituents,
        identity=identity, tokens=None if vocab is None else vocab.tokens,
        num_threads=num_threads)
    return MergeResult(raw, identity=identity, vocab=vocab)


def _word_ids(flat: np.ndarray, offs: np.ndarray, boundaries: WordBoundaries,
              word_ids: Any, vocab: _Vocab | None, num_threads: int | None) -> np.ndarray:
    if word_ids is not None:
        if not (isinstance(boundaries, str) and boundaries == "word"):
            raise InputError("give word_ids or word_boundaries, not both")
        return _per_seq(word_ids, offs, "word_ids", _as_word_ids)
    if isinstance(boundaries, str):
        if boundaries not in _MODES:
            raise InputError(f"word_boundaries={boundaries!r} is not one of {_MODES}, "
                             "word-start flags or a callable")
        if vocab is None:
            if boundaries == "none":
                return np.zeros(len(flat), dtype=np.int64)
            raise InputError(
                f"word_boundaries={boundaries!r} needs tokenizer=...; or pass word-start flags, "
                "word_ids=..., or word_boundaries='none' to merge across words")
        if boundaries == "none":
            w = _core.word_ids(flat, offs, vocab.tokens, mode="none", num_threads=num_threads)
        else:
            pattern = vocab.pattern if boundaries == "word" else BOUNDARY_PATTERNS[boundaries]
            if pattern is None and not isinstance(vocab.tokens, _core.TokenModel):
                raise InputError(
                    "this tokenizer's pre-tokenizer is not available to tokforge: use "
                    "merge_batch_texts(texts, tokenizer) or from_hf_encodings(...), or pass "
                    "word_ids=... / word-start flags")
            w = _core.word_ids(flat, offs, vocab.tokens, mode="pieces", pattern=pattern,
                               num_threads=num_threads)
        return w.astype(np.int64)
    if callable(boundaries):
        seqs = [flat[offs[s]:offs[s + 1]] for s in range(len(offs) - 1)]
        flags = _per_seq([boundaries(x) for x in seqs], offs, "word_boundaries", _as_flags)
    else:
        flags = _per_seq(boundaries, offs, "word_boundaries", _as_flags)
    w = _flags_to_word_ids(flags, offs)
    if vocab is not None:  # specials never merge
        none = _core.word_ids(flat, offs, vocab.tokens, mode="none", num_threads=num_threads)
        w[none == -1] = -1
    return w


def _apply_keep_last(wid: np.ndarray, offs: np.ndarray, keep_last: int | Sequence[int]
                     ) -> np.ndarray:
    b = len(offs) - 1
    if isinstance(keep_last, (int, np.integer)) and not isinstance(keep_last, bool):
        ks = np.full(b, int(keep_last), dtype=np.int64)
    else:
        ks = _as_int_array(keep_last, "keep_last")
        if len(ks) != b:
            raise InputError(f"keep_last must be an int or one int per sequence ({b}), "
                             f"got {len(ks)}")
    if (ks < 0).any():
        raise InputError("keep_last must be non-negative")
    if not ks.any():
        return wid
    wid = wid.copy()
    for s in np.nonzero(ks)[0]:
        lo = max(int(offs[s]), int(offs[s + 1] - ks[s]))
        wid[lo:offs[s + 1]] = -1
    return wid


def merge_batch_texts(texts: Sequence[str], tokenizer: Any, **options: Any) -> MergeResult:
    """Tokenize ``texts`` with ``tokenizer`` (tokforge, tiktoken or HF ``tokenizers``), then
    :func:`merge_batch` with word boundaries from its pre-tokenization. Options are those of
    :func:`merge_batch`. HF encodings give their own ``word_ids`` (and their special tokens).

    >>> from tokforge import Tokenizer
    >>> tok = Tokenizer.train(texts=["a cat, a hat"] * 3, vocab_size=260)
    >>> r = merge_batch_texts(["a cat a cat", "a cat"], tok, min_count=1)
    >>> r.strings()
    [['a', ' cat', ' a', ' cat'], ['a', ' cat']]
    """
    if isinstance(texts, str):
        raise InputError("texts must be a sequence of strings, not one string")
    model = getattr(tokenizer, "_model", None)
    if isinstance(model, _core.TokenModel) and model.kind == "bpe":
        ids = [tokenizer.encode_ordinary(t) for t in texts]
    elif hasattr(tokenizer, "encode_ordinary_batch"):  # tiktoken
        ids = tokenizer.encode_ordinary_batch(list(texts))
    elif hasattr(tokenizer, "encode_batch") and hasattr(tokenizer, "id_to_token"):  # HF
        encs = tokenizer.encode_batch(list(texts))
        ids, wids = from_hf_encodings(encs)
        mode = options.get("word_boundaries", "word")
        if options.get("word_ids") is None and isinstance(mode, str) and mode == "word":
            options = {**options, "word_ids": wids}
    else:
        raise InputError(f"tokenizer of type {type(tokenizer).__name__} cannot encode texts here")
    return merge_batch(ids, tokenizer=tokenizer, **options)


def from_hf_encodings(encodings: Any) -> tuple[list[list[int]], list[list[int]]]:
    """``(ids, word_ids)`` from HF ``tokenizers`` encodings (a list, or a ``BatchEncoding``
    of ``transformers``): ``word_ids`` has ``-1`` for special tokens and padding. Pass them
    as ``merge_batch(ids, word_ids=word_ids)``."""
    encs = getattr(encodings, "encodings", None) or encodings
    ids, wids = [], []
    for e in encs:
        mask = getattr(e, "attention_mask", None) or [1] * len(e.ids)
        ids.append(list(e.ids))
        wids.append([-1 if (w is None or not m) else w for w, m in zip(e.word_ids, mask)])
    return ids, wids


class MergeResult:
    """Output of :func:`merge_batch` (spec 5). Arrays are numpy, flat with offsets.

    Attributes:
        unit_ids: ``int32[N']`` batch-local unit index of each output position.
        seq_offsets: ``int64[B+1]``: sequence ``s`` is ``unit_ids[seq_offsets[s]:seq_offsets[s+1]]``.
        spans: ``int32[N', 2]``: ``[start, end)`` of each position in its sequence's base ids.
        word_ids: ``int32[N']`` word of each position (``-1`` = special / kept).
        unit_constituents, unit_offsets: base ids of each unit (of its first appearance);
            units are ordered by first appearance.
        unit_base_id: ``int32[U]`` the base id of a single-token unit, else ``-1``.
        merges: the merge log, a list of :class:`Merge`.
        len_initial, len_final, len_word_level: total lengths before, after, and at word level.
    """

    def __init__(self, raw: dict, *, identity: str, vocab: _Vocab | None) -> None:
        self.unit_ids: np.ndarray = raw["unit_ids"]
        self.seq_offsets: np.ndarray = raw["seq_offsets"]
        self.spans: np.ndarray = raw["spans"]
        self.word_ids: np.ndarray = raw["word_ids"]
        self.unit_key: np.ndarray = raw["unit_key"]
        self.unit_offsets: np.ndarray = raw["unit_offsets"]
        self.unit_constituents: np.ndarray = raw["unit_constituents"]
        self.unit_base_id: np.ndarray = raw["unit_base_id"]
        self.len_initial: int = raw["len_initial"]
        self.len_final: int = raw["len_final"]
        self.len_word_level: int = raw["len_word_level"]
        self.identity = identity
        self._raw = raw
        self._vocab = vocab
        self._merges: list[Merge] | None = None

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
        kb = self._raw["key_bytes"]
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

    def _key(self, k: int) -> Key:
        if self.identity == "bytes":
            return self._raw["key_bytes"][k]
        o = self._raw["key_offsets"]
        return tuple(self._raw["key_constituents"][o[k]:o[k + 1]].tolist())

    @property
    def merges(self) -> list[Merge]:
        """The merge log in order."""
        if self._merges is None:
            r = self._raw
            cols = zip(r["merge_left"].tolist(), r["merge_right"].tolist(),
                       r["merge_new"].tolist(), r["merge_count"].tolist(),
                       r["merge_applied"].tolist(), r["merge_sample"].tolist())
            self._merges = [Merge(self._key(a), self._key(b), self._key(n), c, ap, s)
                            for a, b, n, c, ap, s in cols]
        return self._merges

    # ---- inverse ----------------------------------------------------------------------------
    def expand(self, units: Sequence[Sequence[int]] | None = None) -> list[np.ndarray]:
        """Base ids of each sequence from unit ids (default: this result's): the inverse of
        the merge. Exact with ``identity="ids"``; with ``"bytes"`` the bytes are equal."""
        if units is None:
            flat, offs = self.unit_ids.astype(np.int64), self.seq_offsets
        else:
            flat, offs = _flatten(units, "units")
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
        _check_option(maxlen, "maxlen", lo=1, integer=True, allow_none=False)
        if surface == "provenance":
            decomp = self.units
        elif surface == "retokenize":
            if self._vocab is None or self._vocab.retokenize is None or self.unit_bytes is None:
                raise InputError("surface='retokenize' needs a tokforge or tiktoken tokenizer")
            decomp = self._vocab.retokenize(self.unit_bytes)
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
                f"merges={len(self._raw['merge_new'])}, length {self.len_initial} -> "
                f"{self.len_final} (word level {self.len_word_level}))")


class UnitEmbedder:
    """Input embeddings for merged units from a hypernetwork, with an LRU cache (spec 5).

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
        _check_option(cache_size, "cache_size", lo=1, integer=True, allow_none=False)
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
