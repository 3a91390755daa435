"""The ZeTT-style hypernetwork users hold: fit it to a model's embeddings, predict rows for
any new tokenizer, save and load it (docs/transfer.md §1-§4).

>>> import numpy as np
>>> from tokforge import Tokenizer
>>> tok = Tokenizer.train(texts=["the cat sat on the mat, the hat"] * 30, vocab_size=290,
...                       pattern="gpt2")
>>> E = np.random.default_rng(0).normal(size=(tok.vocab_size, 8)).astype(np.float32)
>>> hn = Hypernetwork(HypernetConfig(hidden=16, ffn=32, n_layers=1, n_heads=2, steps=5,
...                                  identity_steps=2, batch_size=16))
>>> report = hn.fit(E, tok, held_out=0.2, seed=0)
>>> report.steps, hn.predict([b" cat", "mat"]).shape
(5, (2, 8))
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..errors import InputError
from ..tokenizer import Tokenizer
from . import baselines, evaluate
from .data import Decomposer, Split, epoch_batches, held_out_inputs, make_split
from .model import (
    AdamW,
    ModelShape,
    Params,
    backward,
    blas_threads,
    forward,
    init_params,
    loss_and_grad,
)

#: ``progress(stage, done, total)``; stages "decompose", "identity", "train", "evaluate"
Progress = Callable[[str, int, int], Optional[bool]]
#: input rescaler target std (ZeTT: the encoder's initializer range)
INPUT_STD = 0.02
FORMAT_VERSION = 1


@dataclass(frozen=True)
class HypernetConfig:
    """Network size and training schedule (defaults: docs/transfer.md §3-§4)."""

    hidden: int = 128
    ffn: int = 256
    n_layers: int = 2
    n_heads: int = 4
    max_len: int = 8
    pool: str = "first"
    residual_mean: bool = False
    steps: int = 2000
    identity_steps: int = 200
    batch_size: int = 512
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.01
    clip: float = 1.0
    cos_weight: float = 0.1
    variants: int = 4
    max_train: Optional[int] = None
    max_held: Optional[int] = None
    backend: str = "numpy"
    blas_threads: Optional[int] = 1

    def __post_init__(self) -> None:
        for name in ("hidden", "ffn", "n_layers", "n_heads", "max_len", "batch_size", "variants"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputError(f"HypernetConfig.{name} must be a positive int, got {v!r}")
        for name in ("steps", "identity_steps", "warmup"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise InputError(f"HypernetConfig.{name} must be an int >= 0, got {v!r}")
        if self.hidden % self.n_heads:
            raise InputError(f"hidden={self.hidden} is not a multiple of n_heads={self.n_heads}")
        if self.pool not in ("first", "mean"):
            raise InputError(f"pool must be 'first' or 'mean', got {self.pool!r}")
        if self.backend not in ("numpy", "torch"):
            raise InputError(f"backend must be 'numpy' or 'torch', got {self.backend!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError(f"lr must be a positive number, got {self.lr!r}")


@dataclass
class FitReport:
    """What a fit did and how well it reconstructs its held-out tokens."""

    steps: int
    identity_steps: int
    n_params: int
    n_train: int
    n_held: int
    truncated: int
    wall_s: float
    seconds_per_step: float
    backend: str
    losses: list[tuple[int, float]] = field(default_factory=list)
    held_out: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_matrix(E: Any, name: str) -> np.ndarray:
    arr = np.asarray(E)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} must be a non-empty 2-D matrix, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{name} must be numeric, got dtype {arr.dtype}")
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputError(f"{name} has {int(bad.sum())} NaN/infinite entries (first at row {r}, "
                         f"column {c}); clean the matrix before fitting")
    return arr.astype(np.float32)


class Hypernetwork:
    """Predicts embedding rows for new tokens from their decomposition into original tokens.

    :meth:`fit` trains on one model's matrix ``E`` (and ``U`` for untied output embeddings)
    with the tokenizer it belongs to; :meth:`predict` then takes new tokens (bytes or str) or a
    whole new tokenizer; :meth:`predict_units` takes the units of
    :func:`tokforge.dynamic.merge_batch`."""

    def __init__(self, config: Optional[HypernetConfig] = None) -> None:
        self.config = config or HypernetConfig()
        self.params: Params = {}
        self._fitted = False

    # ---- fitting ------------------------------------------------------------------------
    def fit(self, E: Any, tokenizer: Any, *, U: Any = None, held_out: float = 0.15,
            seed: int = 0, progress: Optional[Progress] = None) -> FitReport:
        """Fit to ``E`` (``[V, d]``, one row per token of ``tokenizer``), holding out
        ``held_out`` of the eligible tokens (seeded) for the report. Deterministic for a
        ``seed`` (and BLAS thread count)."""
        cfg = self.config
        tok = Tokenizer.coerce(tokenizer)
        T = _check_matrix(E, "E")
        if U is not None:
            U = _check_matrix(U, "U")
            if U.shape != T.shape:
                raise InputError(f"U has shape {U.shape}, E has {T.shape}; they must match")
            T = np.hstack([T, U])
        if T.shape[0] != tok.vocab_size:
            raise InputError(
                f"the embedding matrix has {T.shape[0]} rows but the tokenizer has "
                f"{tok.vocab_size} tokens; pass the tokenizer the matrix was trained with")
        dec = Decomposer(tok)
        if progress:
            progress("decompose", 0, 1)
        split = make_split(dec, held_out=held_out, seed=seed, variants=cfg.variants,
                           max_len=cfg.max_len, max_train=cfg.max_train, max_held=cfg.max_held)
        if progress:
            progress("decompose", 1, 1)
        self._setup(T, tok, dec)
        with blas_threads(cfg.blas_threads):
            return self._fit(split, seed, progress)

    def fit_split(self, E: Any, split: Split, *, seed: int = 0,
                  progress: Optional[Progress] = None) -> FitReport:
        """Fit on decompositions given directly (rows of ``E`` as targets and pieces), e.g. a
        synthetic composition task with no tokenizer; :meth:`predict` then needs
        decompositions (:meth:`predict_decompositions`)."""
        T = _check_matrix(E, "E")
        ids = [split.held_ids, split.train_ids,
               *(np.asarray(d) for ds in split.train_inputs for d in ds),
               *(np.asarray(d) for d in split.held_inputs)]
        if len(split.held_ids) == 0 or len(split.train_ids) == 0:
            raise InputError("the split needs training and held-out tokens")
        if any(len(a) and (a.min() < 0 or a.max() >= T.shape[0]) for a in ids):
            raise InputError(f"the split has ids outside [0, {T.shape[0]})")
        self._setup(T, None, None)
        with blas_threads(self.config.blas_threads):
            return self._fit(split, seed, progress)

    def _fit(self, split: Split, seed: int, progress: Optional[Progress]) -> FitReport:
        cfg = self.config
        t_start = time.perf_counter()
        rng = np.random.default_rng(seed)
        T = self.T
        self.shape = ModelShape(d_in=T.shape[1], d_out=T.shape[1], hidden=cfg.hidden,
                                ffn=cfg.ffn, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                                max_len=cfg.max_len, pool=cfg.pool)
        self.params = init_params(self.shape, rng)
        self._fit_output_rescaler(split)
        self._fitted = True
        self.split = split
        losses, t_loop = self._train(split, rng, progress)
        total = cfg.identity_steps + cfg.steps
        if progress:
            progress("evaluate", 0, 1)
        pred = self.predict_decompositions(split.held_inputs)
        metrics = {"hypernetwork": evaluate.reconstruction(pred, T, split.held_ids,
                                                           resamples=200, seed=seed),
                   "fvt": evaluate.reconstruction(baselines.fvt(T, split.held_inputs), T,
                                                  split.held_ids, resamples=200, seed=seed)}
        if progress:
            progress("evaluate", 1, 1)
        return FitReport(
            steps=cfg.steps, identity_steps=cfg.identity_steps,
            n_params=int(sum(p.size for p in self.params.values())),
            n_train=len(split.train_ids), n_held=len(split.held_ids), truncated=split.truncated,
            wall_s=time.perf_counter() - t_start,
            seconds_per_step=t_loop / max(1, total), backend=cfg.backend, losses=losses,
            held_out=metrics)

    def held_out_scores(self, *, focus_sequences: Optional[Sequence[Sequence[int]]] = None,
                        resamples: int = 1000, seed: int = 0
                        ) -> dict[str, dict[str, dict[str, float]]]:
        """Reconstruction scores (:func:`tokforge.transfer.evaluate.reconstruction`) on the
        held-out tokens of the fit, for the hypernetwork and every baseline on the same
        decompositions ``D(t, H)``; ``focus_sequences`` (a corpus tokenized with the original
        tokenizer) adds the FOCUS-style baseline, with its corpus coverage."""
        self._need_fit()
        with blas_threads(self.config.blas_threads):
            return self._held_out_scores(focus_sequences, resamples, seed)

    def _held_out_scores(self, focus_sequences: Optional[Sequence[Sequence[int]]],
                         resamples: int, seed: int) -> dict[str, dict[str, dict[str, float]]]:
        split = self.split
        ids, dec = split.held_ids, split.held_inputs
        T = self.T
        lens = [len(b) for b in self.decomposer.token_bytes] if self.decomposer else None
        preds: dict[str, np.ndarray] = {
            "hypernetwork": self.predict_decompositions(dec),
            "fvt": baselines.fvt(T, dec),
            "last_piece": baselines.last_piece(T, dec),
            "random": baselines.random_rows(T, len(ids), seed=seed),
        }
        if lens is not None:
            preds["length_weighted"] = baselines.length_weighted(T, dec, lens)
        out: dict[str, dict[str, dict[str, float]]] = {}
        if focus_sequences is not None:
            allowed = np.setdiff1d(np.arange(T.shape[0]), split.held_all)
            if self.decomposer is not None:
                allowed = np.setdiff1d(allowed, np.fromiter(self.decomposer.special_ids, int))
            fs = baselines.FocusStyle(focus_sequences, T.shape[0], allowed=allowed)
            preds["focus_style"], coverage = fs.predict(T, ids, dec)
            out["focus_style_coverage"] = {"share": {"mean": coverage, "lo": coverage,
                                                     "hi": coverage}}
        for name, p in preds.items():
            out[name] = evaluate.reconstruction(p, T, ids, resamples=resamples, seed=seed)
        return out

    def _setup(self, T: np.ndarray, tok: Optional[Tokenizer], dec: Optional[Decomposer]
               ) -> None:
        self.tokenizer, self.decomposer = tok, dec
        self.T = T
        self.in_mu = T.mean(0)
        self.in_sd = np.maximum(T.std(0), 1e-6)
        self.T_in = ((T - self.in_mu) / self.in_sd * INPUT_STD).astype(np.float32)
        self.norm = float((T.astype(np.float64) ** 2).sum(1).mean())

    def _raw(self, ids: np.ndarray) -> tuple[np.ndarray, Any]:
        return forward(self.params, self.T_in[ids], self.shape)

    def residual(self, ids: np.ndarray) -> np.ndarray:
        """The mean of the pieces' rows when ``residual_mean`` (else 0): added to the output."""
        return self.T[ids].mean(1) if self.config.residual_mean else 0.0  # type: ignore[return-value]

    def _fit_output_rescaler(self, split: Split) -> None:
        """Map the initial outputs to the per-dimension mean/std of the targets (ZeTT's second
        rescaler), computed on the first decomposition of up to 4,096 training tokens."""
        n = min(4096, len(split.train_ids))
        ys, targets = [], []
        by_len: dict[int, list[int]] = {}
        for j in range(n):
            by_len.setdefault(len(split.train_inputs[j][0]), []).append(j)
        for _k, js in sorted(by_len.items()):
            ids = np.asarray([split.train_inputs[j][0] for j in js])
            ys.append(self._raw(ids)[0])
            targets.append(self.T[split.train_ids[js]] - self.residual(ids))
        y, t = np.concatenate(ys), np.concatenate(targets)
        self.out_s = (t.std(0) / np.maximum(y.std(0), 1e-8)).astype(np.float32)
        self.out_m = (t.mean(0) - y.mean(0) * self.out_s).astype(np.float32)

    def _train(self, split: Split, rng: np.random.Generator, progress: Optional[Progress]
               ) -> tuple[list[tuple[int, float]], float]:
        cfg = self.config
        total = cfg.identity_steps + cfg.steps
        opt = AdamW(lr=cfg.lr, weight_decay=cfg.weight_decay, clip=cfg.clip,
                    warmup=min(cfg.warmup, max(1, total)), total=total)
        step_fn = self._numpy_step
        if cfg.backend == "torch":
            from .torch_backend import TorchTrainer

            step_fn = TorchTrainer(self, opt).step
        items = [(j, v) for j, ds in enumerate(split.train_inputs) for v in range(len(ds))]
        lengths = np.asarray([len(split.train_inputs[j][v]) for j, v in items])
        queue: list[np.ndarray] = []
        losses: list[tuple[int, float]] = []
        t0 = time.perf_counter()
        for step in range(total):
            if step < cfg.identity_steps:
                pick = rng.choice(len(split.train_ids), min(cfg.batch_size, len(split.train_ids)),
                                  replace=False)
                tid = split.train_ids[pick]
                ids = tid[:, None]
            else:
                if not queue:
                    queue = epoch_batches(lengths, cfg.batch_size, rng)[::-1]
                batch = queue.pop()
                tid = split.train_ids[[items[i][0] for i in batch]]
                ids = np.asarray([split.train_inputs[items[i][0]][items[i][1]] for i in batch])
            loss = step_fn(ids, tid, opt)
            if not math.isfinite(loss):
                raise InputError(f"the loss became {loss} at step {step}; lower lr")
            if step % 50 == 0 or step == total - 1:
                losses.append((step, round(loss, 6)))
            if progress and progress("identity" if step < cfg.identity_steps else "train",
                                     step + 1, total):
                break
        return losses, time.perf_counter() - t0

    def _numpy_step(self, ids: np.ndarray, tid: np.ndarray, opt: AdamW) -> float:
        y, cache = self._raw(ids)
        pred = y * self.out_s + self.out_m + self.residual(ids)
        loss, dpred = loss_and_grad(pred, self.T[tid], norm=self.norm,
                                    cos_weight=self.config.cos_weight)
        grads = backward(self.params, dpred * self.out_s, cache, self.shape)
        opt.step(self.params, grads)
        return loss

    # ---- predicting ---------------------------------------------------------------------
    def _need_fit(self) -> None:
        if not self._fitted:
            raise InputError("this Hypernetwork is not fitted: call fit(...) or load(...)")

    def predict_decompositions(self, decomps: Sequence[Sequence[int]], *,
                               batch_size: int = 2048) -> np.ndarray:
        """Rows for decompositions given as original ids (truncated to ``max_len``)."""
        self._need_fit()
        V = self.T.shape[0]
        cut = []
        for d in decomps:
            d = [int(i) for i in d][:self.shape.max_len]
            if not d or min(d) < 0 or max(d) >= V:
                raise InputError(f"decomposition {d} is empty or has ids outside [0, {V})")
            cut.append(d)
        out = np.empty((len(cut), self.T.shape[1]), dtype=np.float32)
        by_len: dict[int, list[int]] = {}
        for i, d in enumerate(cut):
            by_len.setdefault(len(d), []).append(i)
        with blas_threads(self.config.blas_threads):
            for _k, idx in sorted(by_len.items()):
                for s in range(0, len(idx), batch_size):
                    part = idx[s:s + batch_size]
                    ids = np.asarray([cut[i] for i in part])
                    out[part] = self._raw(ids)[0] * self.out_s + self.out_m + self.residual(ids)
        return out

    def _need_decomposer(self) -> Decomposer:
        """The original tokenizer's decomposer; an error when fitted without a tokenizer."""
        if self.decomposer is None:
            raise InputError("this Hypernetwork was fitted without a tokenizer: pass "
                             "decompositions to predict_decompositions(...)")
        return self.decomposer

    def decompose(self, token: bytes | str) -> list[int]:
        """The decomposition the hypernetwork sees for a new token (no exclusions)."""
        self._need_fit()
        dec = self._need_decomposer()
        if isinstance(token, str):
            if dec.chars:
                token = token.replace("\u2581", " ")  # SentencePiece's word marker
            b = token.encode("utf-8", errors="surrogatepass")
        elif isinstance(token, (bytes, bytearray)):
            b = bytes(token)
        else:
            raise InputError(f"a token is bytes or str, not {type(token).__name__}")
        return dec.decompose(b)

    def predict(self, tokens: Any, *, copy_overlap: bool = False) -> np.ndarray:
        """``float32[n, d]`` rows for new tokens: a sequence of bytes/str, or anything
        :meth:`tokforge.Tokenizer.coerce` accepts (then one row per id of that tokenizer; its
        special tokens spelled like the original's get the original rows). ``copy_overlap``
        copies the original row of every token the original vocabulary already has. With
        untied ``U``, columns ``[:d]`` are input and ``[d:]`` output embeddings."""
        self._need_fit()
        specials: dict[int, int] = {}
        if isinstance(tokens, (list, tuple)) and all(
                isinstance(t, (bytes, bytearray, str)) for t in tokens):
            spelled = list(tokens)
        else:
            new = Tokenizer.coerce(tokens)
            spelled = [new.id_to_token(i) for i in range(new.vocab_size)]
            orig_special = self.tokenizer.special_tokens if self.tokenizer else {}
            for text, i in new.special_tokens.items():
                if text in orig_special:
                    specials[i] = orig_special[text]
        decomps, where = [], []
        copies: dict[int, int] = dict(specials)
        for i, t in enumerate(spelled):
            if i in copies:
                continue
            if copy_overlap and self.tokenizer is not None:
                b = t if isinstance(t, bytes) else self._bytes(t)
                o = self.tokenizer.token_to_id(b)
                if o is not None and o not in self._need_decomposer().special_ids:
                    copies[i] = o
                    continue
            decomps.append(self.decompose(t))
            where.append(i)
        out = np.empty((len(spelled), self.T.shape[1]), dtype=np.float32)
        if decomps:
            out[where] = self.predict_decompositions(decomps)
        for i, o in copies.items():
            out[i] = self.T[o]
        return out

    def predict_units(self, result: Any) -> np.ndarray:
        """``float32[U, d]``: a row for each unit of a :func:`tokforge.dynamic.merge_batch`
        result, from the unit's constituents (its decomposition into original ids, as ZeTT's
        surface form); one-token units keep their original rows."""
        self._need_fit()
        units = [tuple(int(i) for i in u) for u in result.units]
        out = np.empty((len(units), self.T.shape[1]), dtype=np.float32)
        multi = [i for i, u in enumerate(units) if len(u) > 1]
        for i, u in enumerate(units):
            if len(u) == 1:
                out[i] = self.T[u[0]]
        if multi:
            out[multi] = self.predict_decompositions([units[i] for i in multi])
        return out

    def _bytes(self, t: str) -> bytes:
        if self._need_decomposer().chars:
            t = t.replace("\u2581", " ")
        return t.encode("utf-8", errors="surrogatepass")

    # ---- files --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``path`` (``.npz``: weights, rescalers, the original matrix) and the same
        name with ``.json`` (config, original tokenizer), each atomically."""
        self._need_fit()
        p = Path(path)
        if p.suffix != ".npz":
            p = p.with_suffix(".npz")
        # Any, not ndarray: mypy checks a ** dict against every keyword of np.savez, and its
        # allow_pickle is a bool
        arrays: dict[str, Any] = {f"param/{k}": v for k, v in self.params.items()}
        arrays.update({"T": self.T, "out_s": self.out_s, "out_m": self.out_m,
                       "held_all": self.split.held_all, "held_ids": self.split.held_ids})
        meta = {"format": "tokforge.transfer.Hypernetwork", "version": FORMAT_VERSION,
                "config": dataclasses.asdict(self.config),
                "shape": dataclasses.asdict(self.shape),
                "tokenizer": self.tokenizer.to_json() if self.tokenizer else None}
        _atomic(p, lambda fh: np.savez(fh, **arrays))
        _atomic(p.with_suffix(".json"),
                lambda fh: fh.write(json.dumps(meta, ensure_ascii=False).encode("utf-8")))
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Hypernetwork:
        """Read what :meth:`save` wrote."""
        p = Path(path)
        if p.suffix != ".npz":
            p = p.with_suffix(".npz")
        try:
            meta = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InputError(f"{p.with_suffix('.json')} is not JSON: {e}") from None
        if meta.get("format") != "tokforge.transfer.Hypernetwork":
            raise InputError(f"{p.with_suffix('.json')} is not a saved tokforge Hypernetwork")
        hn = cls(HypernetConfig(**meta["config"]))
        hn.shape = ModelShape(**meta["shape"])
        with np.load(p, allow_pickle=False) as z:
            hn.params = {k[6:]: z[k] for k in z.files if k.startswith("param/")}
            T = z["T"]
            hn.out_s, hn.out_m = z["out_s"], z["out_m"]
            held_all, held_ids = z["held_all"], z["held_ids"]
        tok = Tokenizer.from_json_str(meta["tokenizer"]) if meta["tokenizer"] else None
        dec = Decomposer(tok) if tok else None
        hn._setup(T, tok, dec)
        held_inputs = (held_out_inputs(dec, held_all, held_ids, max_len=hn.shape.max_len)
                       if dec else [])
        hn.split = Split(held_ids, held_inputs, np.zeros(0, dtype=np.int64), [],
                         held_all=held_all)
        hn._fitted = True
        return hn


def _atomic(path: Path, write: Callable[[Any], Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
