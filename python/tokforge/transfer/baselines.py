"""Heuristic initialisations the hypernetwork is compared with (docs/transfer.md §6).

All take the original matrix ``E`` and decompositions (lists of original ids) and return one
row per decomposition:

- :func:`fvt`: mean of the pieces' rows (FVT, Gee et al. 2022; ZeTT's ``transfer_lexical``);
- :func:`length_weighted`: the mean weighted by each piece's length in bytes;
- :func:`last_piece`: the last piece's row;
- :func:`random_rows`: normal with the matrix's per-dimension mean and std (a floor);
- :class:`FocusStyle`: "FOCUS-style" — similarity weights from auxiliary token vectors
  (PPMI + truncated SVD of co-occurrences in a corpus tokenized with the original tokenizer),
  sparsemax over the 50 most similar allowed tokens, applied to their original rows; tokens
  unseen in the corpus fall back to FVT. Not the ``deepfocus`` package (which needs fastText
  vectors downloaded).

>>> import numpy as np
>>> E = np.array([[1, 0], [0, 1], [1, 1], [2, 2], [0.5, 1]])
>>> fvt(E, [[3, 2], [0, 4]]).tolist()
[[1.5, 1.5], [0.75, 0.5]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError


def fvt(E: np.ndarray, decomps: Sequence[Sequence[int]]) -> np.ndarray:
    """Mean of the pieces' rows."""
    return np.stack([E[np.asarray(d)].mean(0) for d in decomps])


def length_weighted(E: np.ndarray, decomps: Sequence[Sequence[int]],
                    token_len: Sequence[int] | np.ndarray) -> np.ndarray:
    """Mean of the pieces' rows weighted by piece length (``token_len[id]``, e.g. bytes)."""
    lens = np.asarray(token_len, dtype=np.float64)
    out = []
    for d in decomps:
        w = np.maximum(lens[np.asarray(d)], 1.0)
        out.append((E[np.asarray(d)] * w[:, None]).sum(0) / w.sum())
    return np.stack(out)


def last_piece(E: np.ndarray, decomps: Sequence[Sequence[int]]) -> np.ndarray:
    """The last piece's row."""
    return np.stack([E[d[-1]] for d in decomps])


def random_rows(E: np.ndarray, n: int, *, seed: int = 0) -> np.ndarray:
    """``n`` rows drawn from N(mean, std) per dimension of ``E``."""
    rng = np.random.default_rng(seed)
    return rng.normal(E.mean(0), E.std(0), size=(n, E.shape[1]))


def sparsemax(z: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``z`` onto the probability simplex (Martins & Astudillo 2016).

    >>> sparsemax(np.array([2.0, 1.0, -1.0])).tolist()
    [1.0, 0.0, 0.0]
    """
    zs = np.sort(z)[::-1]
    cum = np.cumsum(zs)
    k = np.arange(1, len(z) + 1)
    support = k[1 + k * zs > cum]
    kz = support[-1]
    tau = (cum[kz - 1] - 1) / kz
    return np.maximum(z - tau, 0.0)


class FocusStyle:
    """FOCUS-style weights from a corpus tokenized with the original tokenizer.

    ``sequences``: token id sequences; ``allowed``: ids whose original rows may be combined
    (never the held-out ones). Auxiliary vectors: PPMI of symmetric co-occurrence counts within
    ``window`` tokens, truncated SVD to ``dim``."""

    def __init__(self, sequences: Sequence[Sequence[int]], vocab_size: int, *,
                 allowed: np.ndarray, window: int = 5, dim: int = 100, top: int = 50,
                 min_count: int = 2) -> None:
        import scipy.sparse as sp
        from scipy.sparse.linalg import svds

        rows, cols = [], []
        for s in sequences:
            a = np.asarray(s, dtype=np.int64)
            for o in range(1, window + 1):
                if len(a) > o:
                    rows += [a[:-o], a[o:]]
                    cols += [a[o:], a[:-o]]
        if not rows:
            raise InputError("FOCUS-style weights need a corpus with at least two tokens")
        r, c = np.concatenate(rows), np.concatenate(cols)
        C = sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(vocab_size, vocab_size)).tocsr()
        C.sum_duplicates()
        counts = np.asarray(C.sum(1)).ravel()
        total = counts.sum()
        C = C.tocoo()
        pmi = np.log(C.data * total / (counts[C.row] * counts[C.col]))
        keep = pmi > 0
        P = sp.csr_matrix((pmi[keep], (C.row[keep], C.col[keep])), shape=C.shape)
        k = min(dim, min(P.shape) - 1)
        u, s, _ = svds(P, k=k, random_state=0)
        vec = u * np.sqrt(s)
        self.seen = counts >= min_count
        self.vectors = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
        ok = np.zeros(vocab_size, dtype=bool)
        ok[np.asarray(allowed, dtype=np.int64)] = True
        self.pool = np.flatnonzero(ok & self.seen)
        self.top = top

    def predict(self, E: np.ndarray, ids: np.ndarray, decomps: Sequence[Sequence[int]]
                ) -> tuple[np.ndarray, float]:
        """Rows for tokens ``ids`` (FVT of ``decomps`` where a token is unseen) and the share
        of tokens covered by the corpus."""
        out = fvt(E, decomps)
        covered = 0
        pool_vec = self.vectors[self.pool]
        for i, t in enumerate(np.asarray(ids)):
            if not self.seen[t]:
                continue
            covered += 1
            sims = pool_vec @ self.vectors[t]
            top = np.argsort(-sims, kind="stable")[:self.top]
            w = sparsemax(sims[top])
            out[i] = w @ E[self.pool[top]]
        return out, covered / max(1, len(ids))
