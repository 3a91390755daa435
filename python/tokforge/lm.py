"""Token-level language models behind one small protocol, for :mod:`tokforge.byte_probs`.

A :class:`TokenLM` answers "log-probabilities of the next token after each of these prefixes"
for a batch of prefixes. Backends here:

- :class:`TableLM`: an explicit table (or function) prefix -> distribution; test vectors.
- :class:`NGramLM`: a real, trainable n-gram model (Witten-Bell interpolation down to an add-k
  unigram), fully vectorised over the batch with numpy; trains on token ids from any tokforge
  tokenizer in a second.
- :class:`CachedLM`: an LRU over another LM with ``calls`` / ``rows`` / ``hits`` counters.
- :class:`TransformersLM` and :class:`LlamaCppLM`: adapters for HF ``transformers`` and
  ``llama-cpp-python`` models. Their packages are optional extras (``pip install
  'tokforge[torch]'``, ``'tokforge[llama]'``) imported lazily; they are not
  installed in tokforge's test environment, so these two adapters are untested there.

Optional capability, rows in a given token order (docs/byte_probs.md §9): an LM may offer
``with_token_order(order)``, ``order`` a permutation of ``range(vocab_size)``, returning an LM
whose rows hold the log-probability of id ``order[k]`` at column ``k`` (the same values, bit
for bit, as ``rows[:, order]``), or ``None`` when it cannot do that without a gather per query.
:class:`~tokforge.ByteLM` asks once for its trie order, so that preparing a row reads it in
sequence. :class:`TableLM` and :class:`NGramLM` permute their stored rows and columns once;
:class:`CachedLM` passes the request to the LM it wraps (and shares its counters with the
returned view); :class:`TransformersLM`, :class:`LlamaCppLM` and
:class:`~tokforge.lm_gguf.GGUFLlamaLM` do not offer it (a permuted output layer does not give
the same bits: BLAS products and the log-softmax normaliser round differently over it).

>>> lm = NGramLM(vocab_size=4, eos_id=3, order=2).fit([[0, 1, 2]])
>>> order = np.array([2, 0, 3, 1])
>>> bool((lm.with_token_order(order).next_logprobs([[0]]) == lm.next_logprobs([[0]])[:, order]).all())
True

>>> lm = NGramLM(vocab_size=5, eos_id=4, order=2).fit([[0, 1, 2], [0, 1, 3]])
>>> lp = lm.next_logprobs([[0], []])
>>> lp.shape, bool(abs(np.exp(lp).sum(axis=1) - 1).max() < 1e-12)
((2, 5), True)
>>> int(lp[0].argmax())
1
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Optional, Protocol, Union, runtime_checkable

import numpy as np

from .errors import InputError
from .tokenizer import Tokenizer

__all__ = [
    "TokenLM",
    "TableLM",
    "NGramLM",
    "CachedLM",
    "TransformersLM",
    "LlamaCppLM",
]


@runtime_checkable
class TokenLM(Protocol):
    """Any next-token model. ``next_logprobs`` returns ``[B, vocab_size]`` log-probabilities
    (each row log-normalised) after each prefix; BOS, if the model has one, is added by the
    adapter, not by the caller. Optional, not part of the checked protocol:
    ``with_token_order(order)`` (the module docstring)."""

    vocab_size: int
    eos_id: int
    bos_id: Optional[int]

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray: ...


Dist = Union[Mapping[int, float], Sequence[float], np.ndarray]


def _token_order(order: Any, vocab_size: int) -> np.ndarray:
    """``order`` as an ``int64`` array after checking that it is a permutation of
    ``range(vocab_size)`` (for implementations of ``with_token_order``)."""
    o = np.asarray(order)
    if o.shape != (vocab_size,) or o.dtype.kind not in "iu":
        raise InputError(
            f"a token order is {vocab_size} integer ids, got shape {o.shape} of {o.dtype}"
        )
    o = o.astype(np.int64)
    if vocab_size and (
        o.min() < 0 or o.max() >= vocab_size or (np.bincount(o, minlength=vocab_size) != 1).any()
    ):
        raise InputError(f"a token order must be a permutation of range({vocab_size})")
    return o


def _dense(dist: Dist, vocab_size: int) -> np.ndarray:
    if isinstance(dist, Mapping):
        p = np.zeros(vocab_size, dtype=np.float64)
        for k, v in dist.items():
            p[int(k)] = float(v)
    else:
        p = np.asarray(dist, dtype=np.float64)
        if p.shape != (vocab_size,):
            raise InputError(f"a distribution has shape {p.shape}, expected ({vocab_size},)")
    if (p < 0).any() or abs(p.sum() - 1.0) > 1e-9:
        raise InputError(f"a distribution must be non-negative and sum to 1 (sums to {p.sum()})")
    return p


class TableLM:
    """An LM given as a table ``{context tuple: distribution}`` or a function of the prefix.

    With ``order=k`` the key is the last ``k`` ids of ``(bos_id,) + prefix`` (``bos_id`` only
    when given); without, the whole (BOS-prefixed) prefix. Distributions are dicts
    ``{id: prob}`` or dense vectors; they must sum to 1. Zero probabilities become ``-inf``.

    >>> lm = TableLM({(9,): {0: .5, 1: .5}, (0,): {1: 1.0}, (1,): {2: 1.0}},
    ...              vocab_size=3, eos_id=2, bos_id=9, order=1)
    >>> np.exp(lm.next_logprobs([[], [0]])).round(3).tolist()
    [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]]
    """

    def __init__(
        self,
        table: Union[Mapping[tuple[int, ...], Dist], Callable[[tuple[int, ...]], Dist]],
        *,
        vocab_size: int,
        eos_id: int,
        bos_id: Optional[int] = None,
        order: Optional[int] = None,
        default: Optional[Dist] = None,
    ) -> None:
        self.vocab_size = int(vocab_size)
        self.eos_id = int(eos_id)
        self.bos_id = bos_id
        self._order = order
        self._fn = table if callable(table) else None
        self._table: dict[tuple[int, ...], np.ndarray] = {}
        if not callable(table):
            for k, v in table.items():
                self._table[tuple(int(i) for i in k)] = _dense(v, self.vocab_size)
        self._default = None if default is None else _dense(default, self.vocab_size)
        self._memo: dict[tuple[int, ...], np.ndarray] = {}
        # columns in this token order (set by with_token_order on a copy)
        self._columns: Optional[np.ndarray] = None

    def with_token_order(self, order: Any) -> TableLM:
        """This table with its rows' columns in ``order`` (``lm.py``'s module docstring): the
        table's rows are permuted once here, a function's rows once per context (memoised)."""
        o = _token_order(order, self.vocab_size)
        view = TableLM.__new__(TableLM)
        view.__dict__.update(self.__dict__)
        view._table = {k: row[o] for k, row in self._table.items()}
        view._default = None if self._default is None else self._default[o]
        view._memo = {}
        view._columns = o if self._columns is None else self._columns[o]
        return view

    def _key(self, prefix: Sequence[int]) -> tuple[int, ...]:
        seq = ((self.bos_id,) if self.bos_id is not None else ()) + tuple(int(i) for i in prefix)
        return seq[-self._order :] if self._order else seq

    def _row(self, prefix: Sequence[int]) -> np.ndarray:
        key = self._key(prefix)
        if self._fn is not None:
            row = self._memo.get(key)
            if row is None:
                row = _dense(self._fn(key), self.vocab_size)
                if self._columns is not None:
                    row = row[self._columns]
                self._memo[key] = row
            return row
        row = self._table.get(key, self._default)
        if row is None:
            raise InputError(f"TableLM has no distribution for context {key}")
        return row

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        rows = (
            np.stack([self._row(p) for p in prefixes])
            if len(prefixes)
            else np.zeros((0, self.vocab_size))
        )
        with np.errstate(divide="ignore"):
            return np.log(rows)


class NGramLM:
    """An n-gram token LM: Witten-Bell interpolation of orders ``order-1 .. 1`` down to an
    add-``k`` unigram, so every id (and EOS) has positive probability.

    ``p_m(w|h) = (c(h,w) + T(h) p_{m-1}(w|h')) / (c(h) + T(h))`` with ``T(h)`` the number of
    distinct ids seen after ``h``. Sequences are padded with a start symbol (``bos_id`` or an
    internal one) and end with ``eos_id``. ``next_logprobs`` is vectorised over the batch: one
    dense ``[B, V]`` array and one scatter-add per order.

    >>> lm = NGramLM(vocab_size=4, eos_id=3, order=3).fit([[0, 1, 2]] * 5)
    >>> round(float(np.exp(lm.next_logprobs([[0, 1]])[0, 2])), 3)
    0.979
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        eos_id: int,
        order: int = 3,
        k: float = 0.01,
        bos_id: Optional[int] = None,
    ) -> None:
        if order < 1:
            raise InputError("order must be at least 1")
        if not 0 <= eos_id < vocab_size:
            raise InputError(f"eos_id {eos_id} is outside vocab_size {vocab_size}")
        self.vocab_size = int(vocab_size)
        self.eos_id = int(eos_id)
        self.bos_id = bos_id
        self.order = int(order)
        self.k = float(k)
        self._start = -1 if bos_id is None else int(bos_id)
        self._unigram = np.full(self.vocab_size, 1.0 / self.vocab_size)
        # per context length m >= 1: context -> (ids, counts, total, types)
        self._tables: list[dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, float, int]]] = [
            {} for _ in range(self.order)
        ]
        # bumped by fit: views in another token order rebuild their tables after it
        self._version = 0

    @classmethod
    def from_texts(
        cls,
        tokenizer: Any,
        texts: Iterable[str],
        *,
        order: int = 3,
        k: float = 0.01,
        doc_sep: Optional[str] = "\n\n",
    ) -> NGramLM:
        """An n-gram LM over a tokenizer's ids, fitted on ``texts`` cut into documents at
        ``doc_sep`` (blank lines; ``None`` keeps each text whole), each encoded with
        ``encode_ordinary`` and ended by EOS. EOS is the tokenizer's ``<|endoftext|>`` if it
        has one, else the new id ``vocab_size``. ``tokenizer``: anything
        :meth:`Tokenizer.coerce <tokforge.Tokenizer.coerce>` accepts.

        >>> from tokforge import Tokenizer
        >>> tok = Tokenizer.train(texts=["ab ba ab"], vocab_size=258, pattern="gpt2")
        >>> lm = NGramLM.from_texts(tok, ["ab ba\\n\\nba ab"], order=2)
        >>> (lm.vocab_size, lm.eos_id)
        (259, 258)
        """
        tok = Tokenizer.coerce(tokenizer)
        eos = tok.eot_token if tok.eot_token is not None else tok.vocab_size
        docs = [d for t in texts for d in (t.split(doc_sep) if doc_sep else [t]) if d.strip()]
        lm = cls(vocab_size=max(tok.vocab_size, eos + 1), eos_id=eos, order=order, k=k)
        return lm.fit(tok.encode_ordinary(d) for d in docs)

    def fit(self, sequences: Iterable[Sequence[int]]) -> NGramLM:
        """Count n-grams of token-id sequences (each gets EOS appended). Returns ``self``."""
        uni = np.zeros(self.vocab_size, dtype=np.float64)
        grams: list[Counter[tuple[int, ...]]] = [Counter() for _ in range(self.order)]
        pad = (self._start,) * (self.order - 1)
        for seq in sequences:
            s = pad + tuple(int(i) for i in seq) + (self.eos_id,)
            body = np.asarray(s[len(pad) :], dtype=np.int64)
            if body.size and (body.min() < 0 or body.max() >= self.vocab_size):
                raise InputError("a training sequence has ids outside vocab_size")
            np.add.at(uni, body, 1.0)
            for m in range(1, self.order):
                c = grams[m]
                for i in range(len(pad), len(s)):
                    c[s[i - m : i + 1]] += 1
        self._unigram = (uni + self.k) / (uni.sum() + self.k * self.vocab_size)
        for m in range(1, self.order):
            by_ctx: dict[tuple[int, ...], list[tuple[int, int]]] = {}
            for g, n in grams[m].items():
                by_ctx.setdefault(g[:-1], []).append((g[-1], n))
            table = {}
            for ctx, items in by_ctx.items():
                ids = np.fromiter((i for i, _ in items), dtype=np.int64, count=len(items))
                cnt = np.fromiter((n for _, n in items), dtype=np.float64, count=len(items))
                table[ctx] = (ids, cnt, float(cnt.sum()), len(items))
            self._tables[m] = table
        self._version += 1
        return self

    def with_token_order(self, order: Any) -> _NGramInOrder:
        """This model with its rows' columns in ``order`` (``lm.py``'s module docstring): the
        unigram is permuted and every table's ids renumbered once (again after each ``fit``),
        so a query costs what it costs in id order."""
        return _NGramInOrder(self, _token_order(order, self.vocab_size))

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        return self._logprobs(prefixes, self._unigram, self._tables)

    def _logprobs(
        self,
        prefixes: Sequence[Sequence[int]],
        unigram: np.ndarray,
        tables: list[dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, float, int]]],
    ) -> np.ndarray:
        """``next_logprobs`` with the columns of ``unigram`` and ``tables`` (in any order:
        every step below is elementwise, so permuted inputs give permuted, equal bits)."""
        B = len(prefixes)
        P = np.tile(unigram, (B, 1))
        pad = (self._start,) * (self.order - 1)
        padded = [
            pad + tuple(int(i) for i in p[-(self.order - 1) :]) if self.order > 1 else ()
            for p in prefixes
        ]
        for m in range(1, self.order):
            table = tables[m]
            factor = np.ones(B)
            rows, ids, vals = [], [], []
            for b, ctx in enumerate(padded):
                hit = table.get(ctx[len(ctx) - m :])
                if hit is None:
                    continue
                tid, cnt, tot, types = hit
                factor[b] = types / (tot + types)
                rows.append(np.full(tid.size, b))
                ids.append(tid)
                vals.append(cnt / (tot + types))
            P *= factor[:, None]
            if rows:
                P[np.concatenate(rows), np.concatenate(ids)] += np.concatenate(vals)
        return np.log(P)

    def logprobs_along(self, seq: Sequence[int]) -> np.ndarray:
        """Rows after ``seq[:i]`` for ``i = 0..len(seq)``."""
        return self.next_logprobs([seq[:i] for i in range(len(seq) + 1)])


class _NGramInOrder:
    """An :class:`NGramLM` whose rows come in a token order (``NGramLM.with_token_order``):
    the unigram permuted and each table's ids mapped to their columns, built once per ``fit``
    of the model."""

    def __init__(self, model: NGramLM, order: np.ndarray) -> None:
        self.model = model
        self.order = order
        self.vocab_size = model.vocab_size
        self.eos_id = model.eos_id
        self.bos_id = model.bos_id
        self._column = np.empty_like(order)
        self._column[order] = np.arange(order.size)
        self._version = -1
        self._unigram = model._unigram
        self._tables = model._tables

    def _sync(self) -> None:
        m = self.model
        if self._version == m._version:
            return
        col = self._column
        self._unigram = m._unigram[self.order]
        self._tables = [
            {ctx: (col[ids], cnt, tot, types) for ctx, (ids, cnt, tot, types) in t.items()}
            for t in m._tables
        ]
        self._version = m._version

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        self._sync()
        return self.model._logprobs(prefixes, self._unigram, self._tables)

    def with_token_order(self, order: Any) -> _NGramInOrder:
        return _NGramInOrder(self.model, self.order[_token_order(order, self.vocab_size)])


class CachedLM:
    """LRU cache over another LM, keyed by the prefix; duplicate prefixes inside one batch are
    sent once. ``max_rows=0`` turns the cache off (still de-duplicating within a batch).

    Counters: ``calls`` (``next_logprobs`` calls received), ``rows`` (prefixes forwarded to the
    inner LM), ``hits`` (prefixes served from the cache).

    >>> inner = NGramLM(vocab_size=3, eos_id=2, order=2).fit([[0, 1]])
    >>> lm = CachedLM(inner, max_rows=10)
    >>> _ = lm.next_logprobs([[0], [0], [1]]); _ = lm.next_logprobs([[0]])
    >>> (lm.calls, lm.rows, lm.hits)
    (2, 2, 2)
    """

    def __init__(self, inner: Any, max_rows: int = 4096) -> None:
        self.inner = inner
        self.vocab_size = inner.vocab_size
        self.eos_id = inner.eos_id
        self.bos_id = getattr(inner, "bos_id", None)
        self.max_rows = int(max_rows)
        self._cache: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()
        self.calls = 0
        self.rows = 0
        self.hits = 0

    def reset_counters(self) -> None:
        self.calls = self.rows = self.hits = 0

    def with_token_order(self, order: Any) -> Optional[_CachedInOrder]:
        """The inner LM's view in ``order`` behind a cache of its own (``None`` when the
        inner LM offers none); the view counts into this object's ``calls`` / ``rows`` /
        ``hits``."""
        offer = getattr(self.inner, "with_token_order", None)
        inner = offer(order) if callable(offer) else None
        return None if inner is None else _CachedInOrder(self, inner)

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        return self._query(prefixes, self.inner, self._cache)

    def _query(
        self,
        prefixes: Sequence[Sequence[int]],
        inner: Any,
        cache: OrderedDict[tuple[int, ...], np.ndarray],
    ) -> np.ndarray:
        """``next_logprobs`` of ``inner`` through ``cache`` (this LM's or a view's)."""
        self.calls += 1
        keys = [tuple(int(i) for i in p) for p in prefixes]
        out: dict[tuple[int, ...], np.ndarray] = {}
        missing: list[tuple[int, ...]] = []
        seen: set[tuple[int, ...]] = set()
        for k in keys:
            if k in seen:
                self.hits += 1
                continue
            seen.add(k)
            row = cache.get(k)
            if row is not None:
                cache.move_to_end(k)
                out[k] = row
                self.hits += 1
            else:
                missing.append(k)
        if missing:
            got = np.asarray(inner.next_logprobs([list(k) for k in missing]), dtype=np.float64)
            self.rows += len(missing)
            for k, row in zip(missing, got):
                out[k] = row
                if self.max_rows > 0:
                    cache[k] = row
                    if len(cache) > self.max_rows:
                        cache.popitem(last=False)
        if not keys:
            return np.zeros((0, self.vocab_size))
        if self.max_rows == 0 and len(missing) == len(keys):
            # every prefix new and distinct, nothing cached: the inner rows in order, without
            # a copy (a row is |V| floats: 0.8 MB at 100k ids)
            return got
        return np.stack([out[k] for k in keys])


class _CachedInOrder:
    """A :class:`CachedLM` over its inner LM's view in a token order
    (``CachedLM.with_token_order``): a cache of its own, the counters of the ``CachedLM``."""

    def __init__(self, cached: CachedLM, inner: Any) -> None:
        self.cached = cached
        self.inner = inner
        self.vocab_size = cached.vocab_size
        self.eos_id = cached.eos_id
        self.bos_id = cached.bos_id
        self._cache: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        return self.cached._query(prefixes, self.inner, self._cache)


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - optional dependency
        raise ImportError(
            f"this adapter needs the optional package {module!r}: pip install 'tokforge[{extra}]' "
            f"(or pip install {module})"
        ) from e


class TransformersLM:  # pragma: no cover - needs torch + transformers (not installed in tests)
    """A HF ``transformers`` causal LM as a :class:`TokenLM`.

    Batches are right-padded with an attention mask and explicit position ids; the row of each
    prefix is the log-softmax (float64) of its last real position. With ``kv_cache=True``,
    single-prefix queries (the sampler's one call per byte) reuse a prefix KV cache cropped to
    the longest common prefix with the previous query. ``vocab_size`` is the model's logit
    width; ``eos_id``/``bos_id`` default to the model config. Untested here (no torch).

    Example (not run in tests): ``TransformersLM(AutoModelForCausalLM.from_pretrained("gpt2"))``.
    """

    def __init__(
        self,
        model: Any,
        *,
        eos_id: Optional[int] = None,
        bos_id: Optional[int] = None,
        device: Optional[str] = None,
        kv_cache: bool = True,
    ) -> None:
        self._torch = _need("torch", "torch")
        _need("transformers", "torch")
        self.model = model.eval()
        cfg = model.config
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        self.eos_id = int(eos_id if eos_id is not None else cfg.eos_token_id)
        self.bos_id = bos_id if bos_id is not None else getattr(cfg, "bos_token_id", None)
        self.device = device or next(model.parameters()).device
        self.kv_cache = kv_cache
        self._past: Any = None
        self._past_ids: list[int] = []

    def _full(self, p: Sequence[int]) -> list[int]:
        ids = ([self.bos_id] if self.bos_id is not None else []) + [int(i) for i in p]
        if not ids:
            raise InputError("an empty prefix needs a model with a BOS token (bos_id)")
        return ids

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        torch = self._torch
        seqs = [self._full(p) for p in prefixes]
        if self.kv_cache and len(seqs) == 1:
            return self._cached(seqs[0])[None, :]
        L = max(len(s) for s in seqs)
        ids = torch.zeros((len(seqs), L), dtype=torch.long)
        mask = torch.zeros((len(seqs), L), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        pos = torch.arange(L).unsqueeze(0).expand(len(seqs), L)
        with torch.no_grad():
            out = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=pos.to(self.device),
            )
        last = torch.tensor([len(s) - 1 for s in seqs], device=out.logits.device)
        logits = out.logits[torch.arange(len(seqs)), last].double()
        return torch.log_softmax(logits, dim=-1).cpu().numpy()

    def _cached(self, seq: list[int]) -> np.ndarray:
        torch = self._torch
        lcp = 0
        for a, b in zip(seq, self._past_ids):
            if a != b:
                break
            lcp += 1
        lcp = min(lcp, len(seq) - 1)  # always run at least one token
        past = self._past
        if past is not None and lcp > 0:
            past.crop(lcp)
        else:
            past, lcp = None, 0
        new = torch.tensor([seq[lcp:]], device=self.device)
        pos = torch.arange(lcp, len(seq), device=self.device).unsqueeze(0)
        with torch.no_grad():
            out = self.model(input_ids=new, past_key_values=past, position_ids=pos, use_cache=True)
        self._past, self._past_ids = out.past_key_values, list(seq)
        return torch.log_softmax(out.logits[0, -1].double(), dim=-1).cpu().numpy()


class LlamaCppLM:  # pragma: no cover - needs llama-cpp-python (not installed in tests)
    """A ``llama_cpp.Llama`` model as a :class:`TokenLM`: one KV sequence; each query keeps the
    cached tokens of the longest common prefix, evaluates the rest and log-softmaxes the last
    logits in float64. Untested here (no llama-cpp-python).

    Example (not run in tests): ``LlamaCppLM(llama_cpp.Llama("model.gguf", n_ctx=4096))``.
    """

    def __init__(
        self, llama: Any, *, eos_id: Optional[int] = None, bos_id: Optional[int] = None
    ) -> None:
        _need("llama_cpp", "llama")
        self.llama = llama
        self.vocab_size = int(llama.n_vocab())
        self.eos_id = int(eos_id if eos_id is not None else llama.token_eos())
        self.bos_id = bos_id if bos_id is not None else llama.token_bos()
        self._ids: list[int] = []

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        return np.stack([self._one(p) for p in prefixes])

    def _one(self, p: Sequence[int]) -> np.ndarray:
        seq = ([self.bos_id] if self.bos_id is not None else []) + [int(i) for i in p]
        if not seq:
            raise InputError("an empty prefix needs a model with a BOS token (bos_id)")
        lcp = 0
        for a, b in zip(seq, self._ids):
            if a != b:
                break
            lcp += 1
        lcp = min(lcp, len(seq) - 1)
        self.llama.n_tokens = lcp  # eval() removes cached KV entries from n_tokens on
        self.llama.eval(seq[lcp:])
        self._ids = list(seq)
        logits = np.asarray(self.llama.scores[self.llama.n_tokens - 1], dtype=np.float64)
        m = logits.max()
        return logits - (m + np.log(np.exp(logits - m).sum()))
