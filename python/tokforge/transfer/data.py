"""Decompositions with exclusions, the honest held-out split, and length buckets
(docs/transfer.md §2).

``D(s, X)``: the byte string ``s`` spelled in the original tokenizer's initial symbols (bytes for
byte-level BPE; characters with byte fallback for SentencePiece-style BPE), then the original
merges applied in priority order, **skipping every merge whose result is in the banned set X**
(banned by output token: SentencePiece conversions have several merges per token). With ``X``
empty this is the original tokenizer's model-level encoding of ``s`` (no pre-tokenizer), which
``tests/test_transfer.py`` checks against the native encoder on whole vocabularies.

Everything comes from the :class:`~tokforge.Tokenizer`'s public API (``merges``,
``token_to_id``, ``id_to_token``, ``special_tokens``, ``kind``). Cost per string of ``n``
symbols: ``O(n^2)`` dictionary look-ups (tokens are short).

>>> from tokforge import Tokenizer
>>> tok = Tokenizer.train(texts=["abc abc bc ab"] * 20, vocab_size=262, pattern="gpt2")
>>> d = Decomposer(tok)
>>> [tok.id_to_token(i) for i in d.decompose(b"abc")]
[b'abc']
>>> [tok.id_to_token(i) for i in d.decompose(b"abc", banned={tok.token_to_id(b"abc")})]
[b'ab', b'c']
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..tokenizer import Tokenizer


class Decomposer:
    """``D(s, X)`` for one original tokenizer (BPE or SentencePiece-style BPE)."""

    def __init__(self, tokenizer: object) -> None:
        tok = Tokenizer.coerce(tokenizer)
        if tok.kind not in ("bpe", "sentencepiece"):
            raise InputError(
                f"decomposition needs a BPE tokenizer with merges; this one is {tok.kind!r}")
        self.tokenizer = tok
        self.vocab_size = tok.vocab_size
        self.chars = tok.kind == "sentencepiece"
        self.special_ids = frozenset(tok.special_tokens.values())
        self.token_bytes = [tok.id_to_token(i) for i in range(self.vocab_size)]
        # the lowest non-special id spelled as each single byte: byte-level BPE's byte tokens,
        # SentencePiece's <0xNN> byte-fallback pieces (they come before the character pieces)
        self.byte_ids: list[int | None] = [None] * 256
        for i, b in enumerate(self.token_bytes):
            if len(b) == 1 and i not in self.special_ids and self.byte_ids[b[0]] is None:
                self.byte_ids[b[0]] = i
        self.merges: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, (a, b) in enumerate(tok.merges):
            ia, ib, out = tok.token_to_id(a), tok.token_to_id(b), tok.token_to_id(a + b)
            if ia is None or ib is None or out is None:
                continue
            self.merges.setdefault((ia, ib), (rank, out))
        self._initial_cache: dict[bytes, tuple[int, ...]] = {}

    def initial(self, s: bytes) -> tuple[int, ...]:
        """The initial symbols of ``s``: one per byte (byte-level BPE) or per character, with
        byte fallback for characters that are not pieces (SentencePiece-style)."""
        hit = self._initial_cache.get(s)
        if hit is not None:
            return hit
        if not s:
            raise InputError("cannot decompose an empty token")
        out: list[int] = []
        if self.chars:
            text = s.decode("utf-8", errors="surrogateescape")
            for ch in text:
                cb = ch.encode("utf-8", errors="surrogateescape")
                i = self.tokenizer.token_to_id(cb) if len(ch) == 1 and not (
                    "\udc80" <= ch <= "\udcff") else None
                if i is not None and i not in self.special_ids:
                    out.append(i)
                else:
                    out.extend(self._byte(b, s) for b in cb)
        else:
            out = [self._byte(b, s) for b in s]
        res = tuple(out)
        self._initial_cache[s] = res
        return res

    def _byte(self, b: int, s: bytes) -> int:
        i = self.byte_ids[b]
        if i is None:
            raise InputError(
                f"the original tokenizer cannot decompose {s!r}: it has no token for byte "
                f"0x{b:02X} (no byte fallback)")
        return i

    def decompose(self, s: bytes, *, banned: Container[int] = (), extra: int = -1
                  ) -> list[int]:
        """``D(s, banned ∪ {extra})``: original ids whose bytes concatenate to ``s``."""
        syms = list(self.initial(s))
        merges = self.merges
        while len(syms) > 1:
            best_rank, best_at, best_out = 1 << 62, -1, -1
            for i in range(len(syms) - 1):
                m = merges.get((syms[i], syms[i + 1]))
                if m is not None and m[0] < best_rank and m[1] != extra and m[1] not in banned:
                    best_rank, best_at, best_out = m[0], i, m[1]
            if best_at < 0:
                break
            syms[best_at:best_at + 2] = [best_out]
        return syms


class _Mask:
    """A banned set as a bytearray over ids (fast ``in``)."""

    __slots__ = ("bits",)

    def __init__(self, n: int, ids: Sequence[int] | np.ndarray = ()) -> None:
        self.bits = bytearray(n)
        for i in ids:
            self.bits[int(i)] = 1

    def __contains__(self, i: object) -> bool:
        return isinstance(i, (int, np.integer)) and bool(self.bits[i])


def eligible_ids(dec: Decomposer) -> np.ndarray:
    """Tokens that can be held out: not special, not a single byte, at least two characters
    (or two bytes when the spelling is not UTF-8)."""
    out = []
    for i, b in enumerate(dec.token_bytes):
        if i in dec.special_ids or len(b) < 2:
            continue
        try:
            if len(b.decode("utf-8")) < 2:
                continue
        except UnicodeDecodeError:
            pass
        out.append(i)
    return np.asarray(out, dtype=np.int64)


@dataclass
class Split:
    """The honest split: held-out ids ``H`` with inputs ``D(t, H)``; training ids with
    ``variants`` decompositions each (``D(t, H ∪ {t})`` first, then ``D(t, H ∪ {t} ∪ S)`` for
    random sets ``S`` of other training tokens), all truncated to ``max_len``."""

    held_ids: np.ndarray
    held_inputs: list[list[int]]
    train_ids: np.ndarray
    train_inputs: list[list[list[int]]]
    truncated: int = 0
    ban_rates: list[float] = field(default_factory=list)
    #: the whole held-out set ``H`` (``held_ids`` may be a subsample of it)
    held_all: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def make_split(dec: Decomposer, *, held_out: float, seed: int, variants: int = 4,
               max_len: int = 8, max_train: int | None = None,
               max_held: int | None = None) -> Split:
    """Pick ``H`` (``held_out`` of the eligible tokens, seeded) and decompose everything.

    ``max_train`` / ``max_held`` subsample (seeded) to keep small runs small. Raises
    :class:`~tokforge.InputError` when the held-out or the training set is empty."""
    if not 0.0 < held_out < 1.0:
        raise InputError(f"held_out must be a fraction in (0, 1), got {held_out!r}")
    rng = np.random.default_rng(seed)
    elig = eligible_ids(dec)
    perm = rng.permutation(elig)
    n_held = round(held_out * len(elig))
    held, train = np.sort(perm[:n_held]), np.sort(perm[n_held:])
    if len(held) == 0:
        raise InputError(
            f"the held-out set is empty: {len(elig)} eligible tokens x held_out={held_out}")
    if len(train) == 0:
        raise InputError(f"no training tokens left: {len(elig)} eligible, held_out={held_out}")
    H = _Mask(dec.vocab_size, held)
    eval_held = held if max_held is None else np.sort(rng.choice(held, min(max_held, len(held)),
                                                                 replace=False))
    train_all = train  # random bans S range over every training token, even when subsampled
    if max_train is not None and max_train < len(train):
        train = np.sort(rng.choice(train, max_train, replace=False))
    truncated = 0

    def cut(d: list[int]) -> list[int]:
        nonlocal truncated
        if len(d) > max_len:
            truncated += 1
            return d[:max_len]
        return d

    held_inputs = [cut(dec.decompose(dec.token_bytes[t], banned=H)) for t in eval_held]
    train_inputs: list[list[list[int]]] = [[] for _ in train]
    rates = []
    for v in range(variants):
        if v == 0:
            banned = H
        else:
            q = float(rng.uniform(0.0, 0.5))
            rates.append(q)
            banned = _Mask(dec.vocab_size, held)
            for t in train_all[rng.random(len(train_all)) < q]:
                banned.bits[int(t)] = 1
        for j, t in enumerate(train):
            d = cut(dec.decompose(dec.token_bytes[t], banned=banned, extra=int(t)))
            if v == 0 or d not in train_inputs[j]:
                train_inputs[j].append(d)
    for d in [*held_inputs, *(d for ds in train_inputs for d in ds)]:
        if any(i in H for i in d):
            raise AssertionError("a held-out id leaked into an input decomposition")
    return Split(eval_held, held_inputs, train, train_inputs, truncated, rates, held)


def held_out_inputs(dec: Decomposer, held_all: np.ndarray, held_ids: np.ndarray, *,
                    max_len: int = 8) -> list[list[int]]:
    """``D(t, H)`` for each ``t`` in ``held_ids`` (as :func:`make_split` builds them)."""
    H = _Mask(dec.vocab_size, held_all)
    return [dec.decompose(dec.token_bytes[int(t)], banned=H)[:max_len] for t in held_ids]


def wordllama_files() -> tuple[str, str]:
    """Paths of the WordLlama package's 32,000 x 256 embedding matrix and its Llama-2
    SentencePiece-BPE ``tokenizer.json``, when ``wordllama`` is installed (``pip install
    --no-deps wordllama==0.4.0.post1`` is enough: nothing is imported, only files are read)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the WordLlama files need the wordllama package: "
                         "pip install --no-deps wordllama==0.4.0.post1")
    root = Path(next(iter(spec.submodule_search_locations)))
    emb = root / "weights" / "l2_supercat_256.safetensors"
    tok = root / "tokenizers" / "l2_supercat_tokenizer_config.json"
    for f in (emb, tok):
        if not f.is_file():
            raise InputError(f"{f} is missing from the installed wordllama package")
    return str(emb), str(tok)


def buckets(decomps: Sequence[Sequence[int]]) -> dict[int, np.ndarray]:
    """Indices of ``decomps`` grouped by length (a batch never needs padding)."""
    by: dict[int, list[int]] = {}
    for i, d in enumerate(decomps):
        by.setdefault(len(d), []).append(i)
    return {k: np.asarray(v, dtype=np.int64) for k, v in sorted(by.items())}


def epoch_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator
                  ) -> list[np.ndarray]:
    """One epoch of index batches: shuffled, split by length, chunked, batch order shuffled."""
    order = rng.permutation(len(lengths))
    out: list[np.ndarray] = []
    for k in np.unique(lengths):
        idx = order[lengths[order] == k]
        out.extend(idx[i:i + batch_size] for i in range(0, len(idx), batch_size))
    return [out[i] for i in rng.permutation(len(out))]


_ST_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "BF16": None}


def load_embeddings(path: str | object, *, tensor: str | None = None) -> np.ndarray:
    """A float32 embedding matrix from ``.npy``, ``.npz`` (``tensor`` or its only array) or
    ``.safetensors`` (``tensor``, or its only 2-D tensor; read with numpy, no extra package).

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "e.npy"); np.save(p, np.eye(3))
    >>> load_embeddings(p).dtype
    dtype('float32')
    """
    import json
    from pathlib import Path

    p = Path(str(path))
    if p.suffix == ".npy":
        arr = np.load(p, allow_pickle=False)
    elif p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            names = list(z.files)
            if tensor is None and len(names) != 1:
                raise InputError(f"{p} holds {names}; say which with tensor=")
            arr = z[tensor or names[0]]
    elif p.suffix == ".safetensors":
        raw = p.read_bytes()
        n = int.from_bytes(raw[:8], "little")
        head = json.loads(raw[8:8 + n])
        head.pop("__metadata__", None)
        if tensor is None:
            two_d = [k for k, v in head.items() if len(v["shape"]) == 2]
            if len(two_d) != 1:
                raise InputError(f"{p} holds tensors {sorted(head)}; say which with tensor=")
            tensor = two_d[0]
        if tensor not in head:
            raise InputError(f"{p} has no tensor {tensor!r}; it has {sorted(head)}")
        info = head[tensor]
        lo, hi = info["data_offsets"]
        buf = raw[8 + n + lo:8 + n + hi]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(buf, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in _ST_DTYPES:
            arr = np.frombuffer(buf, dtype=_ST_DTYPES[info["dtype"]])
        else:
            raise InputError(f"{p}: tensor {tensor!r} has dtype {info['dtype']}, not a float")
        arr = arr.reshape(info["shape"])
    else:
        raise InputError(f"{p}: embeddings must be .npy, .npz or .safetensors")
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 2:
        raise InputError(f"{p}: embeddings must be a 2-D matrix, got shape {arr.shape}")
    return arr
