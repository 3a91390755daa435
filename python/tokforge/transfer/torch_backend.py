"""The same network in PyTorch (docs/transfer.md §3): forward written with torch ops, gradients
from autograd, the update by the numpy :class:`~tokforge.transfer.model.AdamW`, so a step
differs from the numpy backend only by floating-point rounding. Needs the ``[torch]`` extra
(a CPU build of torch); imported only when ``HypernetConfig(backend="torch")`` is used.
``tests/test_transfer.py -m torch --torch`` checks forward and one step against numpy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError
from .model import LN_EPS, AdamW, ModelShape, Params, loss_and_grad


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise InputError("backend='torch' needs PyTorch: pip install 'tokforge[torch]' "
                         "(a CPU build of torch)") from None
    return torch


def forward(p: dict[str, Any], x: Any, shape: ModelShape) -> Any:
    """Torch twin of :func:`tokforge.transfer.model.forward` (tensors in, tensor out)."""
    torch = _torch()
    F = torch.nn.functional

    def gelu(t: Any) -> Any:
        return F.gelu(t, approximate="tanh")

    def ln(t: Any, g: Any, b: Any) -> Any:
        return F.layer_norm(t, (t.shape[-1],), g, b, eps=LN_EPS)

    def projector(pre: str, t: Any) -> Any:
        u = gelu(gelu(t @ p[pre + ".W1"] + p[pre + ".b1"]) @ p[pre + ".W2"] + p[pre + ".b2"])
        return ln(t + u, p[pre + ".g"], p[pre + ".beta"])

    B, k, _ = x.shape
    h, nh = shape.hidden, shape.n_heads
    dh = h // nh
    z = projector("pin", x @ p["in.W"] + p["in.b"]) + p["pos"][:k]
    for i in range(shape.n_layers):
        b = f"b{i}"
        u = ln(z, p[b + ".ln1.g"], p[b + ".ln1.b"])
        q, kk, v = ((u @ p[f"{b}.{m}.W"] + p[f"{b}.{m}.b"]).reshape(B, k, nh, dh).transpose(1, 2)
                    for m in ("q", "k", "v"))
        a = torch.softmax(q @ kk.transpose(-1, -2) / math.sqrt(dh), dim=-1)
        o = (a @ v).transpose(1, 2).reshape(B, k, h)
        z = z + o @ p[b + ".o.W"] + p[b + ".o.b"]
        u = ln(z, p[b + ".ln2.g"], p[b + ".ln2.b"])
        z = z + gelu(u @ p[b + ".f1.W"] + p[b + ".f1.b"]) @ p[b + ".f2.W"] + p[b + ".f2.b"]
    pooled = z[:, 0] if shape.pool == "first" else z.mean(1)
    u = projector("pout", ln(pooled, p["lnf.g"], p["lnf.b"]))
    return u @ p["out.W"] + p["out.b"]


def gradients(params: Params, x: np.ndarray, dy: np.ndarray, shape: ModelShape) -> Params:
    """``dL/dparams`` for ``L = sum(forward(x) * dy)``, by autograd (same dtype as params)."""
    torch = _torch()
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    y = forward(tp, torch.tensor(x), shape)
    (y * torch.tensor(dy)).sum().backward()
    return {k: t.grad.numpy() if t.grad is not None else np.zeros_like(params[k])
            for k, t in tp.items()}


class TorchTrainer:
    """One training step with torch computing the forward and backward passes."""

    def __init__(self, hypernet: Any, opt: AdamW) -> None:
        _torch()
        self.hn = hypernet
        self.opt = opt

    def step(self, ids: np.ndarray, tid: np.ndarray, opt: AdamW) -> float:
        torch = _torch()
        hn = self.hn
        tp = {k: torch.tensor(v, requires_grad=True) for k, v in hn.params.items()}
        y = forward(tp, torch.tensor(hn.T_in[ids]), hn.shape)
        pred = y.detach().numpy() * hn.out_s + hn.out_m + hn.residual(ids)
        loss, dpred = loss_and_grad(pred, hn.T[tid], norm=hn.norm,
                                    cos_weight=hn.config.cos_weight)
        (y * torch.tensor(dpred * hn.out_s)).sum().backward()
        grads = {k: t.grad.numpy() for k, t in tp.items()}
        opt.step(hn.params, grads)
        return loss
