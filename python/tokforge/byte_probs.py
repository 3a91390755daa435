"""Exact next-byte probabilities from a token-level LM: cover sets, a one-LM-call-per-byte
sampler, fill-in-the-middle and ensembles across vocabularies.

Method: Phan et al., "Exact Byte-Level Probabilities from Tokenized Language Models for
FIM-Tasks and Model Ensembles" (arXiv 2410.09303); design notes ``docs/byte_probs.md``. A token
LM induces a distribution over byte strings; the Byte-Token Representation lemma writes the
probability that the text starts with ``x`` as a sum over the *cover encodings* of ``x``
(canonical token sequences whose last token reaches past the end of ``x``). :class:`ByteLM`
keeps the cover set in incremental form and gives ``Q(b | x)`` for all 256 bytes and the end of
string, with exactly one LM call per byte after start-up. The trie, the validity rows and the
range sums run in Rust (``rust/src/byte_probs/``) with the GIL released; Python only calls the
LM. The brute-force twin is ``tests/reference/byte_probs_ref.py``.

Layers (docs/byte_probs.md §14): :class:`ByteLM` (here: the LM calls and the API) over the native
``_core.CoverIndex`` (Rust ``byte_probs::CoverIndex``: trie, validity rows, covers) built from the
tokenizer's native model; any tokenizer goes through :meth:`Tokenizer.coerce
<tokforge.Tokenizer.coerce>` first.

Where it is exact (docs/byte_probs.md §15): a token sequence is *valid* when it can be completed
to a canonical one (``encode(decode(τ)) == τ``), and the end of text follows only a canonical
sequence. ``mode="exact"`` masks everything else and reproduces the brute-force distribution to
1e-12 (properties P1-P13 of docs/byte_probs.md §11):

- Tokenizers whose pre-tokenizer does not split (one piece per string, merge-list BPE) are
  prefix-closed: valid = canonical, decided by the BPE pair rule (``validity="pair"``).
- Regex pre-tokenizers (GPT-2, cl100k, o200k presets, and llama.cpp's ``[\\p{N}, preset]``
  sequences such as SmolLM2's; ``validity="pieces"``): the pieces before a *settled boundary*
  are final whatever follows (a horizon bound on the preset scanners; the last number character
  of a digit-split sequence), so validity is decided on the open tail after it; the tail is
  valid iff it is canonical, or its piece structure can still change and one more token (or,
  after whitespace, a short probe text) continues it canonically. Covers are found by
  search from the settled boundary; several empty-overhang covers can be alive (``"  "`` as one
  token or as two spaces before a word), each with its LM row. ``fast`` keeps ``encode(x)`` alone.
- tiktoken-style whole-piece look-up (``ignore_merges``) breaks prefix closure inside a piece;
  such tokenizers are not covered by the argument.

Applications (docs/byte_probs.md §8): ``tokforge fim`` (complete a prefix that stops inside a token:
naive, token healing, byte level, and a two-vocabulary byte-level ensemble) and
``benches/byte_probs.py --demo`` (mid-token completion accuracy and bits per byte of two models and
their ensemble).

The worked example of docs/byte_probs.md §10, where tokenizing ``"ab"`` and asking for the next
token gives byte ``c`` probability 0 although its true probability is 5/6:

>>> from tokforge import Tokenizer
>>> from tokforge.lm import TableLM
>>> ranks = [(bytes([b]), b) for b in range(256)] + [(b"bc", 256), (b"abc", 257)]
>>> tok = Tokenizer.from_ranks(ranks, pattern=r"[\\s\\S]+", special_tokens={"<eos>": 258})
>>> a, b, c, bc, abc, eos = 97, 98, 99, 256, 257, 258
>>> rows = {(): {a: .2, b: .1, c: .1, bc: .1, abc: .4, eos: .1},
...         (a,): {a: .2, b: .4, c: .1, abc: .1, eos: .2},
...         (b,): {a: .3, b: .1, bc: .2, abc: .2, eos: .2}}
>>> rest = {a: .2, b: .2, c: .2, bc: .1, abc: .1, eos: .2}
>>> lm = TableLM(lambda k: rows.get(k, rest), vocab_size=259, eos_id=eos, bos_id=None,
...              order=1)
>>> blm = ByteLM(lm, tok)
>>> p = blm.next_byte_probs(blm.start(b"ab"))
>>> [round(float(p[i]), 4) for i in (a, b, c, END)]
[0.0833, 0.05, 0.8333, 0.0333]
>>> naive_next_byte_probs(blm, b"ab")[[a, b, c, END]].round(4).tolist()
[0.5, 0.3, 0.0, 0.2]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np

from . import _core
from .errors import InputError
from .lm import CachedLM, LlamaCppLM, NGramLM, TableLM, TokenLM, TransformersLM
from .tokenizer import Tokenizer

__all__ = [
    "END",
    "ByteLM",
    "ByteState",
    "ByteEnsemble",
    "TokenLM",
    "TableLM",
    "NGramLM",
    "CachedLM",
    "TransformersLM",
    "LlamaCppLM",
    "naive_next_byte_probs",
    "healing_next_byte_probs",
    "complete_naive",
    "complete_token_healing",
    "complete_bytes",
]

#: Index of the end-of-string entry in a next-byte distribution.
END = 256

Bytesish = Union[bytes, bytearray, str]


def _b(x: Bytesish) -> bytes:
    return x.encode("utf-8") if isinstance(x, str) else bytes(x)


#: A mixed text (letters, punctuation, tabs, blank lines, digits, non-ASCII) that the preset
#: regexes split: a pre-tokenizer that keeps it in one piece is taken to keep every text whole,
#: so BPE is prefix-closed and ``validity="auto"`` picks the exact pair rule.
_SPLIT_PROBE = "ab =_p\t\t}0 x\n\n  y\u00e9."


class ByteState:
    """The cover set of a byte prefix (immutable apart from a memo of the LM row after
    ``encode(x)``, so asking twice costs one LM call). ``text`` is the bytes since ``start``,
    ``log_q`` is ``log Q(text[len(prompt):] | prompt)``."""

    __slots__ = ("_rows", "core", "ctx_len", "text")

    def __init__(self, core: _core.CoverState, text: bytes, ctx_len: int) -> None:
        self.core = core
        self.text = text
        self.ctx_len = ctx_len
        self._rows: Optional[list[_core.LMRow]] = None

    @property
    def tokens(self) -> list[int]:
        """The heaviest empty-overhang cover, without the token context."""
        stars = self.core.stars
        return stars[0][self.ctx_len :] if stars else []

    @property
    def log_q(self) -> float:
        return self.core.log_q

    def __repr__(self) -> str:
        return f"ByteState(text={self.text[-20:]!r}, stars={len(self.core.stars)}, groups={self.core.n_groups})"


class ByteLM:
    """A token LM + its tokenizer as a distribution over bytes (docs/byte_probs.md §9).

    Args:
        lm: any :class:`~tokforge.lm.TokenLM` (``vocab_size``, ``eos_id``, ``next_logprobs``).
        tokenizer: the LM's tokenizer: a :class:`~tokforge.Tokenizer` or anything
            :meth:`Tokenizer.coerce <tokforge.Tokenizer.coerce>` accepts (a tokenizer file, a
            ``tiktoken.Encoding``, a HF byte-level BPE tokenizer); kept as :attr:`tokenizer`.
        mode: ``"exact"`` (mask invalid continuations and renormalise every token
            distribution; BTR holds exactly), ``"mask"`` (mask, renormalise only the byte
            distributions) or ``"fast"`` (no masking).
        validity: ``"pair"``: the BPE local rule, exact for tokenizers whose pre-tokenizer
            does not split (then BPE is prefix-closed); ``"pieces"``: regex pre-tokenizers,
            validity decided on the open tail after the settled boundary
            (docs/byte_probs.md §15). ``"auto"`` picks by pre-tokenizing a probe text.
        row_cache: validity rows kept (``vocab_size / 8`` bytes each).

    >>> from tokforge import Tokenizer
    >>> tok = Tokenizer.train(texts=["abab abba baab " * 30], vocab_size=270, pattern="gpt2")
    >>> ids = [tok.encode_ordinary(s) for s in ["abab abba", "baab ab", "abba baab"]]
    >>> lm = NGramLM(vocab_size=tok.vocab_size + 1, eos_id=tok.vocab_size, order=2).fit(ids)
    >>> blm = ByteLM(lm, tok)
    >>> st = blm.start(b"ab")
    >>> p = blm.next_byte_probs(st)
    >>> bool(abs(p.sum() - 1) < 1e-12), p.argmax() in (ord("a"), ord("b"))
    (True, True)
    >>> blm.logprob(b"abab") < 0
    True
    """

    def __init__(
        self,
        lm: TokenLM,
        tokenizer: Any,
        *,
        mode: str = "exact",
        validity: str = "auto",
        row_cache: int = 1024,
    ) -> None:
        self.lm = lm
        self.tokenizer = Tokenizer.coerce(tokenizer)
        self.mode = mode
        if validity == "auto":
            single = len(self.tokenizer.pretokenize(_SPLIT_PROBE)) == 1
            validity = "pair" if single else "pieces"
        self._table: Optional[list[Optional[bytes]]] = None
        self._index = _core.CoverIndex(
            self.tokenizer.model,
            int(lm.vocab_size),
            int(lm.eos_id),
            mode,
            validity,
            row_cache,
        )
        # rows in the index's trie order when the LM offers them (docs/byte_probs.md §9): the
        # engine then reads each row in sequence instead of gathering it by id
        offer = getattr(lm, "with_token_order", None)
        view = offer(self._index.token_order) if callable(offer) else None
        self._row_lm: TokenLM = lm if view is None else view
        self._trie_order = view is not None

    @property
    def trie_order(self) -> bool:
        """Whether the LM gives this model its rows in the engine's trie order (its
        ``with_token_order``, docs/byte_probs.md §9); the probabilities are the same bits
        either way."""
        return self._trie_order

    @property
    def validity(self) -> str:
        """``"pair"`` (BPE local rule, prefix-closed tokenizers) or ``"pieces"`` (regex
        pre-tokenizers: settled prefix + open tail)."""
        return self._index.validity

    @property
    def lmax(self) -> int:
        """Longest token in bytes."""
        return self._index.lmax

    @property
    def index(self) -> _core.CoverIndex:
        """The native engine (trie, validity rows, covers); ``index.encode(data)`` gives the
        canonical ids of arbitrary bytes."""
        return self._index

    @property
    def token_table(self) -> list[Optional[bytes]]:
        """Bytes of every tokenizer id; ``None`` for special and unused ids (built once)."""
        if self._table is None:
            specials = set(self.tokenizer.special_tokens.values())
            table: list[Optional[bytes]] = []
            for i in range(self.tokenizer.vocab_size):
                try:
                    table.append(None if i in specials else self.tokenizer.id_to_token(i))
                except ValueError:  # an id the vocabulary does not use
                    table.append(None)
            self._table = table
        return self._table

    def start(self, prompt: Bytesish = b"", *, context: Sequence[int] = ()) -> ByteState:
        """Cover set of ``prompt``. ``context``: token ids before it (e.g. ending with a FIM
        sentinel); it must end at a guaranteed token boundary. One batched LM call for the
        stems (none for an empty prompt). Raises ``InputError`` if ``Q(prompt) = 0``."""
        data = _b(prompt)
        ctx = [int(i) for i in context]
        plan = self._index.plan(data)
        stems = plan.stems
        rows: list[np.ndarray] = []
        if stems:
            prefixes: dict[tuple[int, ...], int] = {}
            for s in stems:
                for k in range(plan.common, len(s) + 1):
                    prefixes.setdefault(tuple(ctx + s[:k]), len(prefixes))
            got = np.asarray(
                self._row_lm.next_logprobs([list(p) for p in prefixes]), dtype=np.float64
            )
            for s in stems:
                idx = [prefixes[tuple(ctx + s[:k])] for k in range(plan.common, len(s) + 1)]
                rows.append(np.ascontiguousarray(got[idx]))
        core = self._index.start(plan, ctx, rows, self._trie_order)
        return ByteState(core, data, len(ctx))

    def _rows(self, st: ByteState) -> list[_core.LMRow]:
        """Prepared LM rows after each empty-overhang cover: one LM call (usually one row)."""
        if st._rows is None:
            stars = st.core.stars
            rows = []
            if stars:
                lp = np.asarray(self._row_lm.next_logprobs(stars), dtype=np.float64)
                for s, r in zip(stars, lp):
                    rows.append(self._index.prepare(np.ascontiguousarray(r), s, self._trie_order))
            st._rows = rows
        return st._rows

    def next_byte_probs(self, st: ByteState) -> np.ndarray:
        """``float64[257]``: ``Q(b | x)`` for bytes ``0..255`` and ``Q(⊥ | x)`` at
        :data:`END`. One LM call (memoised in the state)."""
        p, total = self._index.next_byte_probs(st.core, self._rows(st))
        if not total > 0:
            raise InputError(f"the prefix {st.text[-40:]!r} has no continuation under the model")
        return p

    def advance(self, st: ByteState, b: int) -> ByteState:
        """State after byte ``b`` (0..255); raises ``InputError`` if ``Q(b | x) = 0``."""
        if not 0 <= int(b) <= 255:
            raise InputError(f"a byte is 0..255, got {b}")
        core = self._index.advance(st.core, self._rows(st), int(b))
        return ByteState(core, st.text + bytes([int(b)]), st.ctx_len)

    def feed(self, st: ByteState, data: Bytesish) -> ByteState:
        """Advance through several bytes."""
        for b in _b(data):
            st = self.advance(st, b)
        return st

    def logprob(self, text: Bytesish, *, eos: bool = True, context: Sequence[int] = ()) -> float:
        """``log Q(text⊥)`` (or ``log Q(text)`` with ``eos=False``), natural log, one LM call
        per byte."""
        st = self.feed(self.start(b"", context=context), text)
        lq = st.log_q
        if eos:
            pe = self.next_byte_probs(st)[END]
            lq += math.log(pe) if pe > 0 else -math.inf
        return lq

    def covers(self, st: ByteState) -> list[tuple[list[int], bytes, float]]:
        """``[(token ids, overhang bytes, probability)]`` of the state's covers, ``encode(x)``
        first (its overhang is empty). Probabilities are normalised by ``Q(x)``."""
        return [(ids, bytes(o), p) for ids, o, p in self._index.covers(st.core, st.ctx_len)]

    def generate(
        self,
        prompt: Bytesish = b"",
        max_bytes: int = 64,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        rng: Optional[np.random.Generator] = None,
        context: Sequence[int] = (),
        stop: Optional[bytes] = None,
    ) -> bytes:
        """Sample up to ``max_bytes`` bytes after ``prompt`` (stops at end of string or when
        the output ends with ``stop``). Temperature acts on byte probabilities (``p^(1/T)``;
        greedy when ``T < 0.1``), then nucleus ``top_p``."""
        st = self.start(prompt, context=context)
        return _generate(self, st, max_bytes, temperature, top_p, rng, stop)


def _generate(
    model: Union[ByteLM, ByteEnsemble],
    state: Any,
    max_bytes: int,
    temperature: float,
    top_p: float,
    rng: Optional[np.random.Generator],
    stop: Optional[bytes],
) -> bytes:
    """The sampling loop of :meth:`ByteLM.generate` and :meth:`ByteEnsemble.generate`."""
    rng = rng if rng is not None else np.random.default_rng()
    out = bytearray()
    for _ in range(max_bytes):
        b = _sample(model.next_byte_probs(state), temperature, top_p, rng)
        if b == END:
            break
        out.append(b)
        if stop and out.endswith(stop):
            break
        state = model.advance(state, b)
    return bytes(out)


def _sample(p: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    if temperature < 0.1:
        return int(np.argmax(p))
    q = np.power(p, 1.0 / temperature)
    q /= q.sum()
    if top_p < 1.0:
        order = np.argsort(-q, kind="stable")
        cum = np.cumsum(q[order])
        keep = order[: int(np.searchsorted(cum, top_p)) + 1]
        r = np.zeros_like(q)
        r[keep] = q[keep]
        q = r / r.sum()
    return int(rng.choice(len(q), p=q))


class ByteEnsemble:
    """Average of byte-level models with different vocabularies: ``Q(b|x) = Σ w_m Q_m(b|x)``.

    Each model keeps its own state; all advance with the same byte. A model whose state
    becomes impossible (``Q_m(x) = 0``) is dropped and the weights renormalised. With
    ``posterior=True`` the weights are ``w_m ∝ prior_m Q_m(generated | prompt)``, which makes
    the ensemble a mixture of string distributions rather than a per-step average.

    >>> from tokforge import Tokenizer
    >>> texts = ["abab abba baab " * 30]
    >>> tok_a = Tokenizer.train(texts=texts, vocab_size=262, pattern="gpt2")
    >>> tok_b = Tokenizer.train(texts=texts, vocab_size=270, pattern="gpt2")
    >>> def model(tok):
    ...     ids = [tok.encode_ordinary(t) for t in texts]
    ...     lm = NGramLM(vocab_size=tok.vocab_size + 1, eos_id=tok.vocab_size).fit(ids)
    ...     return ByteLM(lm, tok)
    >>> ens = ByteEnsemble([model(tok_a), model(tok_b)])
    >>> p = ens.next_byte_probs(ens.start(b"ab"))
    >>> bool(abs(p.sum() - 1) < 1e-12)
    True
    """

    def __init__(
        self,
        models: Sequence[ByteLM],
        weights: Optional[Sequence[float]] = None,
        *,
        posterior: bool = False,
    ) -> None:
        if not models:
            raise InputError("an ensemble needs at least one model")
        w = np.ones(len(models)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(models),) or (w < 0).any() or w.sum() <= 0:
            raise InputError("weights: one non-negative number per model, not all zero")
        self.models = list(models)
        self.weights = w / w.sum()
        self.posterior = posterior

    def start(
        self, prompt: Bytesish = b"", *, contexts: Optional[Sequence[Sequence[int]]] = None
    ) -> list[Optional[ByteState]]:
        """One state per model (``None`` where the prompt has probability 0); ``contexts``:
        one token context per model (see :meth:`ByteLM.start`)."""
        if contexts is not None and len(contexts) != len(self.models):
            raise InputError(f"contexts: one per model ({len(self.models)}), got {len(contexts)}")
        out: list[Optional[ByteState]] = []
        for i, m in enumerate(self.models):
            try:
                out.append(m.start(prompt, context=contexts[i] if contexts else ()))
            except InputError:
                out.append(None)
        if all(s is None for s in out):
            raise InputError("the prompt has probability 0 under every model")
        return out

    def _weights(self, states: Sequence[Optional[ByteState]]) -> np.ndarray:
        w = np.array([wm if s is not None else 0.0 for wm, s in zip(self.weights, states)])
        if self.posterior:
            lq = np.array([s.log_q if s is not None else -np.inf for s in states])
            with np.errstate(divide="ignore"):
                lw = np.log(w) + lq
            lw -= lw.max()
            w = np.exp(lw)
        return w / w.sum()

    def next_byte_probs(self, states: Sequence[Optional[ByteState]]) -> np.ndarray:
        w = self._weights(states)
        p = np.zeros(257)
        for wm, m, s in zip(w, self.models, states):
            if s is not None and wm > 0:
                p += wm * m.next_byte_probs(s)
        return p / p.sum()

    def advance(self, states: Sequence[Optional[ByteState]], b: int) -> list[Optional[ByteState]]:
        out: list[Optional[ByteState]] = []
        for m, s in zip(self.models, states):
            if s is None:
                out.append(None)
                continue
            try:
                out.append(m.advance(s, b))
            except InputError:
                out.append(None)
        if all(s is None for s in out):
            raise InputError(f"byte {b} has probability 0 under every model")
        return out

    def logprob(self, text: Bytesish, *, eos: bool = True) -> float:
        """``Σ log Q_ens(b | x)`` over ``text`` (plus the end of string with ``eos``)."""
        states = self.start(b"")
        total = 0.0
        for b in _b(text):
            p = self.next_byte_probs(states)
            total += math.log(p[b]) if p[b] > 0 else -math.inf
            states = self.advance(states, b)
        if eos:
            total += math.log(max(self.next_byte_probs(states)[END], 1e-300))
        return total

    def generate(
        self,
        prompt: Bytesish = b"",
        max_bytes: int = 64,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        rng: Optional[np.random.Generator] = None,
        contexts: Optional[Sequence[Sequence[int]]] = None,
        stop: Optional[bytes] = None,
    ) -> bytes:
        """As :meth:`ByteLM.generate`, from the ensemble's distribution; ``contexts`` holds
        one token context per model."""
        states = self.start(prompt, contexts=contexts)
        return _generate(self, states, max_bytes, temperature, top_p, rng, stop)


# ---------------------------------------------------------------------------------------------
# Baselines: the naive next-token reading and token healing (docs/byte_probs.md §2, §8)


def naive_next_byte_probs(
    blm: ByteLM, prompt: Bytesish, *, context: Sequence[int] = ()
) -> np.ndarray:
    """Naive next-byte distribution: tokenize the prompt, take the next-token distribution
    and read off each token's first byte (EOS -> :data:`END`; other specials dropped)."""
    ids = list(context) + blm.index.encode(_b(prompt))
    p = np.exp(np.asarray(blm.lm.next_logprobs([ids])[0], dtype=np.float64))
    out = np.zeros(257)
    for i, t in enumerate(blm.token_table):
        if t:
            out[t[0]] += p[i]
    out[END] += p[blm.lm.eos_id]
    return out / out.sum()


def healing_next_byte_probs(
    blm: ByteLM, prompt: Bytesish, *, context: Sequence[int] = ()
) -> np.ndarray:
    """Token-healing next-byte distribution: drop the prompt's last token ``u``, keep the
    tokens that start with ``bytes(u)`` (weighted by the LM after the shortened prompt) and
    read the byte after ``bytes(u)``; the token ``u`` itself continues with the naive
    distribution after the full prompt."""
    data = _b(prompt)
    ids = list(context) + blm.index.encode(data)
    if len(ids) == len(context):
        return naive_next_byte_probs(blm, data, context=context)
    u = blm.tokenizer.id_to_token(ids[-1])
    p = np.exp(np.asarray(blm.lm.next_logprobs([ids[:-1]])[0], dtype=np.float64))
    out = np.zeros(257)
    for i, t in enumerate(blm.token_table):
        if t and len(t) > len(u) and t.startswith(u):
            out[t[len(u)]] += p[i]
    out += p[ids[-1]] * naive_next_byte_probs(blm, data, context=context)
    return out / out.sum()


def _greedy_tokens(blm: ByteLM, ids: list[int], n: int, first_prefix: bytes = b"") -> bytes:
    lm = blm.lm
    table = blm.token_table
    out = bytearray()
    need = first_prefix
    while len(out) < n:
        lp = np.asarray(lm.next_logprobs([ids])[0], dtype=np.float64)
        if need:
            ok = np.zeros(len(lp), dtype=bool)
            ok[: len(table)] = [t is not None and t.startswith(need) for t in table]
            lp = np.where(ok, lp, -np.inf)
            if not np.isfinite(lp).any():
                break
        t = int(np.argmax(lp))
        if t == lm.eos_id or t >= len(table) or table[t] is None:
            break
        out += (table[t] or b"")[len(need) :]
        need = b""
        ids = ids + [t]
    return bytes(out[:n])


def complete_naive(blm: ByteLM, prompt: Bytesish, n: int, *, context: Sequence[int] = ()) -> bytes:
    """Greedy completion of ``n`` bytes at the token level from ``encode(prompt)``."""
    return _greedy_tokens(blm, list(context) + blm.index.encode(_b(prompt)), n)


def complete_token_healing(
    blm: ByteLM, prompt: Bytesish, n: int, *, context: Sequence[int] = ()
) -> bytes:
    """Token healing: drop the prompt's last token and force the first generated token to
    start with its bytes (greedy); then continue greedily."""
    ids = blm.index.encode(_b(prompt))
    if not ids:
        return _greedy_tokens(blm, list(context), n)
    last = blm.tokenizer.id_to_token(ids[-1])
    return _greedy_tokens(blm, list(context) + ids[:-1], n, first_prefix=last)


def complete_bytes(
    model: Union[ByteLM, ByteEnsemble],
    prompt: Bytesish,
    n: int,
    *,
    context: Sequence[int] = (),
) -> bytes:
    """Greedy byte-level completion (argmax of ``Q(b | x)``), stopping at the end of string;
    ``model`` is one :class:`ByteLM` or a :class:`ByteEnsemble` (whose models see no token
    context: give per-model contexts to :meth:`ByteEnsemble.generate`)."""
    if isinstance(model, ByteEnsemble):
        if context:
            raise InputError("an ensemble takes one context per model: use generate(contexts=...)")
        return model.generate(prompt, n, temperature=0.0)
    return model.generate(prompt, n, temperature=0.0, context=context)
