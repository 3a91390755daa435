"""The hypernetwork in numpy: forward, hand-written backward and AdamW (docs/transfer.md §3).

A new token arrives as its decomposition into original tokens ``a_1..a_k``; their (rescaled)
embeddings go through ``Linear -> projector -> + positions -> pre-LN transformer blocks ->
first-position state -> LN -> projector -> Linear``. Every piece has a forward that returns a
cache and a backward that takes it; ``tests/test_transfer.py`` checks each backward against
finite differences in float64.

Cost per token of decomposition length ``k``, width ``h``, FFN ``f``, input ``d_in``, output
``d_out``: ``k (d_in h + 2 h f + n_layers (4 h^2 + 2 h f + k h)) + 2 h f + h d_out``
multiply-adds forward, about twice that backward. Inside a batch every decomposition has the
same length (batches are bucketed by length), so attention needs no padding mask.

>>> import numpy as np
>>> cfg = ModelShape(d_in=4, d_out=4, hidden=8, ffn=16, n_layers=1, n_heads=2, max_len=3)
>>> p = init_params(cfg, np.random.default_rng(0), dtype=np.float64)
>>> y, cache = forward(p, np.zeros((5, 2, 4)), cfg)
>>> y.shape, backward(p, np.ones_like(y), cache, cfg)["in.W"].shape
((5, 4), (4, 8))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

Params = dict[str, np.ndarray]

#: sqrt(2/pi), the tanh-GELU constant
_C = math.sqrt(2.0 / math.pi)
#: LayerNorm epsilon, as ZeTT's hypernetwork (docs/transfer.md §3)
LN_EPS = 1e-6
#: std of the normal initialisation (RoBERTa's initializer_range, as ZeTT)
INIT_STD = 0.02


@dataclass(frozen=True)
class ModelShape:
    """Sizes of the network: input and output widths, hidden width, FFN width, layers, heads,
    longest decomposition, pooling (``"first"`` as ZeTT, or ``"mean"``)."""

    d_in: int
    d_out: int
    hidden: int = 128
    ffn: int = 256
    n_layers: int = 2
    n_heads: int = 4
    max_len: int = 8
    pool: str = "first"


def init_params(shape: ModelShape, rng: np.random.Generator, *, dtype: Any = np.float32
                ) -> Params:
    """Weights ~ N(0, 0.02), biases 0, LayerNorm gains 1; the order of draws is fixed."""
    h, f = shape.hidden, shape.ffn
    p: Params = {}

    def w(name: str, *dims: int) -> None:
        p[name] = rng.normal(0.0, INIT_STD, size=dims).astype(dtype)

    def z(name: str, n: int, value: float = 0.0) -> None:
        p[name] = np.full(n, value, dtype=dtype)

    def projector(pre: str) -> None:
        w(pre + ".W1", h, f)
        z(pre + ".b1", f)
        w(pre + ".W2", f, h)
        z(pre + ".b2", h)
        z(pre + ".g", h, 1.0)
        z(pre + ".beta", h)

    w("in.W", shape.d_in, h)
    z("in.b", h)
    projector("pin")
    w("pos", shape.max_len, h)
    for i in range(shape.n_layers):
        b = f"b{i}"
        z(b + ".ln1.g", h, 1.0)
        z(b + ".ln1.b", h)
        for m in ("q", "k", "v", "o"):
            w(f"{b}.{m}.W", h, h)
            z(f"{b}.{m}.b", h)
        z(b + ".ln2.g", h, 1.0)
        z(b + ".ln2.b", h)
        w(b + ".f1.W", h, f)
        z(b + ".f1.b", f)
        w(b + ".f2.W", f, h)
        z(b + ".f2.b", h)
    z("lnf.g", h, 1.0)
    z("lnf.b", h)
    projector("pout")
    w("out.W", h, shape.d_out)
    z("out.b", shape.d_out)
    return p


# ---- pieces: each forward returns (output, cache); each backward returns input grads -------
def linear(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    # one 2-D GEMM (a 3-D ``x @ W`` runs one small GEMM per batch row: ~4x slower here)
    x2 = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    return (x2 @ W + b).reshape(*x.shape[:-1], W.shape[1]), x2


def linear_back(dy: np.ndarray, cache: Any, W: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x2 = cache
    dy2 = np.ascontiguousarray(dy).reshape(-1, dy.shape[-1])
    return (dy2 @ W.T).reshape(*dy.shape[:-1], W.shape[0]), x2.T @ dy2, dy2.sum(0)


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    rstd = 1.0 / np.sqrt((xc * xc).mean(-1, keepdims=True) + LN_EPS)
    xhat = xc * rstd
    return xhat * g + b, (xhat, rstd, g)


def layer_norm_back(dy: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xhat, rstd, g = cache
    n = xhat.shape[-1]
    dg = (dy * xhat).reshape(-1, n).sum(0)
    db = dy.reshape(-1, n).sum(0)
    dxhat = dy * g
    dx = rstd * (dxhat - dxhat.mean(-1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return dx, dg, db


def gelu(x: np.ndarray) -> tuple[np.ndarray, Any]:
    t = np.tanh(_C * (x + 0.044715 * x * x * x))
    return 0.5 * x * (1.0 + t), (x, t)


def gelu_back(dy: np.ndarray, cache: Any) -> np.ndarray:
    x, t = cache
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _C * (1.0 + 3 * 0.044715 * x * x))


def projector(p: Params, pre: str, x: np.ndarray) -> tuple[np.ndarray, Any]:
    """``LN(x + W2 gelu(W1 x))`` after a GELU on ``W1 x`` (ZeTT's projector block)."""
    a, c1 = linear(x, p[pre + ".W1"], p[pre + ".b1"])
    a, c2 = gelu(a)
    u, c3 = linear(a, p[pre + ".W2"], p[pre + ".b2"])
    u, c4 = gelu(u)
    y, c5 = layer_norm(x + u, p[pre + ".g"], p[pre + ".beta"])
    return y, (c1, c2, c3, c4, c5)


def projector_back(dy: np.ndarray, cache: Any, p: Params, pre: str, g: Params) -> np.ndarray:
    c1, c2, c3, c4, c5 = cache
    ds, g[pre + ".g"], g[pre + ".beta"] = layer_norm_back(dy, c5)
    du = gelu_back(ds, c4)
    da, g[pre + ".W2"], g[pre + ".b2"] = linear_back(du, c3, p[pre + ".W2"])
    da = gelu_back(da, c2)
    dx, g[pre + ".W1"], g[pre + ".b1"] = linear_back(da, c1, p[pre + ".W1"])
    return ds + dx


def attention(p: Params, pre: str, x: np.ndarray, n_heads: int) -> tuple[np.ndarray, Any]:
    """Multi-head self-attention over ``x: (B, k, h)`` (no mask: one length per batch)."""
    B, k, h = x.shape
    dh = h // n_heads
    q, cq = linear(x, p[pre + ".q.W"], p[pre + ".q.b"])
    kk, ck = linear(x, p[pre + ".k.W"], p[pre + ".k.b"])
    v, cv = linear(x, p[pre + ".v.W"], p[pre + ".v.b"])

    def heads(t: np.ndarray) -> np.ndarray:
        return t.reshape(B, k, n_heads, dh).transpose(0, 2, 1, 3)

    qh, kh, vh = heads(q), heads(kk), heads(v)
    s = qh @ kh.transpose(0, 1, 3, 2) / math.sqrt(dh)
    s = s - s.max(-1, keepdims=True)
    a = np.exp(s)
    a /= a.sum(-1, keepdims=True)
    o = (a @ vh).transpose(0, 2, 1, 3).reshape(B, k, h)
    y, co = linear(o, p[pre + ".o.W"], p[pre + ".o.b"])
    return y, (cq, ck, cv, co, qh, kh, vh, a)


def attention_back(dy: np.ndarray, cache: Any, p: Params, pre: str, n_heads: int,
                   g: Params) -> np.ndarray:
    cq, ck, cv, co, qh, kh, vh, a = cache
    B, k, h = dy.shape
    dh = h // n_heads
    do, g[pre + ".o.W"], g[pre + ".o.b"] = linear_back(dy, co, p[pre + ".o.W"])
    doh = do.reshape(B, k, n_heads, dh).transpose(0, 2, 1, 3)
    da = doh @ vh.transpose(0, 1, 3, 2)
    dvh = a.transpose(0, 1, 3, 2) @ doh
    ds = a * (da - (da * a).sum(-1, keepdims=True)) / math.sqrt(dh)
    dqh = ds @ kh
    dkh = ds.transpose(0, 1, 3, 2) @ qh

    def merge(t: np.ndarray) -> np.ndarray:
        return t.transpose(0, 2, 1, 3).reshape(B, k, h)

    dx, g[pre + ".q.W"], g[pre + ".q.b"] = linear_back(merge(dqh), cq, p[pre + ".q.W"])
    dxk, g[pre + ".k.W"], g[pre + ".k.b"] = linear_back(merge(dkh), ck, p[pre + ".k.W"])
    dxv, g[pre + ".v.W"], g[pre + ".v.b"] = linear_back(merge(dvh), cv, p[pre + ".v.W"])
    return dx + dxk + dxv


def block(p: Params, pre: str, z: np.ndarray, n_heads: int) -> tuple[np.ndarray, Any]:
    """Pre-LN transformer block: ``z + MHA(LN(z))``, then ``+ W2 gelu(W1 LN(z))``."""
    u, c1 = layer_norm(z, p[pre + ".ln1.g"], p[pre + ".ln1.b"])
    u, c2 = attention(p, pre, u, n_heads)
    z = z + u
    u, c3 = layer_norm(z, p[pre + ".ln2.g"], p[pre + ".ln2.b"])
    u, c4 = linear(u, p[pre + ".f1.W"], p[pre + ".f1.b"])
    u, c5 = gelu(u)
    u, c6 = linear(u, p[pre + ".f2.W"], p[pre + ".f2.b"])
    return z + u, (c1, c2, c3, c4, c5, c6)


def block_back(dz: np.ndarray, cache: Any, p: Params, pre: str, n_heads: int,
               g: Params) -> np.ndarray:
    c1, c2, c3, c4, c5, c6 = cache
    du, g[pre + ".f2.W"], g[pre + ".f2.b"] = linear_back(dz, c6, p[pre + ".f2.W"])
    du = gelu_back(du, c5)
    du, g[pre + ".f1.W"], g[pre + ".f1.b"] = linear_back(du, c4, p[pre + ".f1.W"])
    du, g[pre + ".ln2.g"], g[pre + ".ln2.b"] = layer_norm_back(du, c3)
    dz = dz + du
    du = attention_back(dz, c2, p, pre, n_heads, g)
    du, g[pre + ".ln1.g"], g[pre + ".ln1.b"] = layer_norm_back(du, c1)
    return dz + du


# ---- the whole network ---------------------------------------------------------------------
def forward(p: Params, x: np.ndarray, shape: ModelShape) -> tuple[np.ndarray, Any]:
    """``x: (B, k, d_in)`` rescaled piece embeddings (one length ``k <= max_len`` per call)
    -> ``(B, d_out)`` raw outputs (before the output rescaler) and the cache for backward."""
    k = x.shape[1]
    z, c_in = linear(x, p["in.W"], p["in.b"])
    z, c_pin = projector(p, "pin", z)
    z = z + p["pos"][:k]
    c_blocks = []
    for i in range(shape.n_layers):
        z, c = block(p, f"b{i}", z, shape.n_heads)
        c_blocks.append(c)
    pooled = z[:, 0] if shape.pool == "first" else z.mean(1)
    u, c_lnf = layer_norm(pooled, p["lnf.g"], p["lnf.b"])
    u, c_pout = projector(p, "pout", u)
    y, c_out = linear(u, p["out.W"], p["out.b"])
    return y, (k, c_in, c_pin, c_blocks, c_lnf, c_pout, c_out)


def backward(p: Params, dy: np.ndarray, cache: Any, shape: ModelShape) -> Params:
    """Gradients of every parameter given ``dL/dy`` (``y`` as returned by :func:`forward`)."""
    k, c_in, c_pin, c_blocks, c_lnf, c_pout, c_out = cache
    g: Params = {}
    du, g["out.W"], g["out.b"] = linear_back(dy, c_out, p["out.W"])
    du = projector_back(du, c_pout, p, "pout", g)
    dpool, g["lnf.g"], g["lnf.b"] = layer_norm_back(du, c_lnf)
    B = dy.shape[0]
    dz = np.zeros((B, k, shape.hidden), dtype=dy.dtype)
    if shape.pool == "first":
        dz[:, 0] = dpool
    else:
        dz += dpool[:, None, :] / k
    for i in reversed(range(shape.n_layers)):
        dz = block_back(dz, c_blocks[i], p, f"b{i}", shape.n_heads, g)
    gpos = np.zeros_like(p["pos"])
    gpos[:k] = dz.sum(0)
    g["pos"] = gpos
    dz = projector_back(dz, c_pin, p, "pin", g)
    _, g["in.W"], g["in.b"] = linear_back(dz, c_in, p["in.W"])
    return g


# ---- loss ----------------------------------------------------------------------------------
def loss_and_grad(pred: np.ndarray, target: np.ndarray, *, norm: float, cos_weight: float
                  ) -> tuple[float, np.ndarray]:
    """``mean_t ||pred - target||^2 / norm + cos_weight * mean_t (1 - cos(pred, target))`` and
    its gradient with respect to ``pred`` (``norm`` = mean squared norm of the real rows)."""
    n = pred.shape[0]
    diff = pred - target
    loss = float((diff * diff).sum() / (n * norm))
    grad = 2.0 * diff / (n * norm)
    if cos_weight:
        pn = np.sqrt((pred * pred).sum(1, keepdims=True)) + 1e-12
        tn = np.sqrt((target * target).sum(1, keepdims=True)) + 1e-12
        cos = (pred * target).sum(1, keepdims=True) / (pn * tn)
        loss += cos_weight * float((1.0 - cos).mean())
        grad = grad - cos_weight / n * (target / (pn * tn) - cos * pred / (pn * pn))
    return loss, grad.astype(pred.dtype, copy=False)


# ---- optimiser ----------------------------------------------------------------------------
@dataclass
class AdamW:
    """AdamW (decoupled weight decay on matrices only), global-norm clipping, linear warm-up
    then cosine decay to ``final_frac`` of ``lr`` (docs/transfer.md §4)."""

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.01
    clip: float = 1.0
    warmup: int = 100
    total: int = 2000
    final_frac: float = 0.1

    def __post_init__(self) -> None:
        self.t = 0
        self.m: Params = {}
        self.v: Params = {}

    def rate(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        frac = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.lr * (self.final_frac + (1 - self.final_frac) * 0.5
                          * (1 + math.cos(math.pi * frac)))

    def step(self, p: Params, g: Params, *, lr: float | None = None) -> float:
        """Update ``p`` in place; returns the gradient norm before clipping."""
        norm = math.sqrt(sum(float((x.astype(np.float64) ** 2).sum()) for x in g.values()))
        scale = min(1.0, self.clip / (norm + 1e-12)) if self.clip else 1.0
        rate = self.rate(self.t) if lr is None else lr
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for name in sorted(p):
            gr = g[name] * scale
            m = self.m.setdefault(name, np.zeros_like(p[name]))
            v = self.v.setdefault(name, np.zeros_like(p[name]))
            m *= b1
            m += (1 - b1) * gr
            v *= b2
            v += (1 - b2) * gr * gr
            if p[name].ndim >= 2 and name != "pos":
                p[name] *= 1 - rate * self.weight_decay
            p[name] -= rate * (m / c1) / (np.sqrt(v / c2) + self.eps)
        return norm


# ---- BLAS threads ----------------------------------------------------------------------------
def _openblas_handles() -> list[tuple[Any, Any]]:
    """(get, set) thread-count functions of every OpenBLAS loaded in this process (Linux)."""
    import ctypes

    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            paths = sorted({ln.split()[-1] for ln in fh if "openblas" in ln.lower()
                            and ln.split()[-1].startswith("/")})
    except OSError:
        return []
    out = []
    for p in paths:
        try:
            lib = ctypes.CDLL(p)
        except OSError:
            continue
        for get, set_ in (("openblas_get_num_threads", "openblas_set_num_threads"),
                          ("scipy_openblas_get_num_threads64_",
                           "scipy_openblas_set_num_threads64_"),
                          ("openblas_get_num_threads64_", "openblas_set_num_threads64_")):
            if hasattr(lib, get) and hasattr(lib, set_):
                out.append((getattr(lib, get), getattr(lib, set_)))
                break
    return out


class blas_threads:
    """Run a block with OpenBLAS limited to ``n`` threads (``None``: unchanged). The
    hypernetwork's matrices are small: on 2 shared cores one thread measured ~10x faster than
    two for a 1536x128 @ 128x256 float32 product (2.6 ms vs 23.5 ms) because the threads spin
    while waiting for each other; results are identical for a given thread count."""

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.saved: list[tuple[Any, int]] = []

    def __enter__(self) -> blas_threads:
        if self.n is not None:
            for get, set_ in _openblas_handles():
                self.saved.append((set_, int(get())))
                set_(int(self.n))
        return self

    def __exit__(self, *exc: object) -> None:
        for set_, n in self.saved:
            set_(n)
        self.saved.clear()
