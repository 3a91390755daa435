"""How close predicted rows are to the real ones (docs/transfer.md §5).

Per held-out token: cosine, relative L2 ``||y - e|| / ||e||``, and the rank of the true row
when *all* rows of the original matrix are sorted by cosine to the prediction (ties count
against the prediction) -> top-1, top-10, MRR. Each mean comes with a 95% percentile bootstrap
interval over the tokens (1,000 resamples, seeded). Cost: ``O(n V d)`` for the ranks, in blocks.

>>> import numpy as np
>>> E = np.eye(4, dtype=np.float32)
>>> m = reconstruction(E[[0, 1]], E, np.array([0, 1]), resamples=10)
>>> m["cosine"]["mean"], m["top1"]["mean"], m["mrr"]["mean"]
(1.0, 1.0, 1.0)
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def ranks(pred: np.ndarray, E: np.ndarray, ids: np.ndarray, *, block: int = 512) -> np.ndarray:
    """1-based rank of row ``ids[i]`` among all rows of ``E`` by cosine to ``pred[i]``."""
    En = _unit(E.astype(np.float32))
    P = _unit(pred.astype(np.float32))
    out = np.empty(len(ids), dtype=np.int64)
    for s in range(0, len(ids), block):
        sims = P[s:s + block] @ En.T
        true = sims[np.arange(sims.shape[0]), ids[s:s + block]]
        out[s:s + block] = 1 + (sims > true[:, None]).sum(1)
    return out


def bootstrap(values: np.ndarray, *, resamples: int = 1000, seed: int = 0) -> dict[str, float]:
    """Mean and its 95% percentile-bootstrap interval."""
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": float(v.mean()), "lo": float(lo), "hi": float(hi)}


def reconstruction(pred: np.ndarray, E: np.ndarray, ids: np.ndarray, *, resamples: int = 1000,
                   seed: int = 0) -> dict[str, dict[str, float]]:
    """Cosine, relative L2, top-1, top-10 and MRR of ``pred`` against rows ``E[ids]``."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 0:
        raise InputError("nothing to evaluate: the held-out set is empty")
    if pred.shape != (len(ids), E.shape[1]):
        raise InputError(f"predictions have shape {pred.shape}, expected ({len(ids)}, "
                         f"{E.shape[1]})")
    if not np.isfinite(pred).all():
        raise InputError("predictions contain NaN or infinity")
    target = E[ids].astype(np.float64)
    p = pred.astype(np.float64)
    cos = (_unit(p) * _unit(target)).sum(1)
    rel = np.linalg.norm(p - target, axis=1) / np.maximum(np.linalg.norm(target, axis=1), 1e-12)
    r = ranks(pred, E, ids)
    per = {"cosine": cos, "rel_l2": rel, "top1": (r == 1).astype(float),
           "top10": (r <= 10).astype(float), "mrr": 1.0 / r}
    return {k: bootstrap(v, resamples=resamples, seed=seed) for k, v in per.items()}


def separated(a: dict[str, float], b: dict[str, float]) -> bool:
    """True when interval ``a`` lies entirely above interval ``b``."""
    return a["lo"] > b["hi"]


def sentence_vectors(rows: np.ndarray, seqs: list[list[int]]) -> np.ndarray:
    """L2-normalised mean of token rows per sequence (WordLlama's ``embed``: average pooling
    over the tokens, then normalisation)."""
    out = np.zeros((len(seqs), rows.shape[1]), dtype=np.float64)
    for i, s in enumerate(seqs):
        if s:
            out[i] = rows[np.asarray(s)].mean(0)
    return _unit(out)


def swap_scores(orig: np.ndarray, new: np.ndarray) -> dict[str, dict[str, float]]:
    """Sentence-level swap: mean cosine of matching rows, and retrieval@1 of ``orig[i]`` among
    all ``orig`` rows from ``new[i]`` (both unit-normalised)."""
    cos = (orig * new).sum(1)
    sims = new @ orig.T
    hit = (sims.argmax(1) == np.arange(len(orig))).astype(float)
    return {"cosine": bootstrap(cos), "retrieval@1": bootstrap(hit)}
