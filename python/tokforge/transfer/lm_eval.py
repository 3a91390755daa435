"""Evaluation C: a tiny causal LM's held-out bits per byte before and after a tokenizer swap
(docs/transfer.md §5, C). Needs the ``[torch]`` extra (a CPU build of torch), imported only
when a function here is called.

- :func:`train_lm`: a small pre-norm decoder (``n_layers`` blocks, width ``d``, causal
  attention, learned positions, a learned start vector) whose output head is the input
  embedding matrix (tied), trained with AdamW on next-token loss over windows of one token
  stream; deterministic for a seed and thread count.
- :meth:`TinyLM.with_embeddings`: the same frozen body with a new tied matrix ``E'``
  (``[V', d]``, one row per token of a new tokenizer): the zero-shot swap. The start vector
  and positions belong to the body, so nothing but ``E'`` depends on the tokenizer.
- :func:`bits_per_byte`: ``-sum log2 p(token) / len(text.encode())`` over non-overlapping
  windows of ``ctx`` tokens, each window starting from the start vector, so every token of
  the text is scored once and two tokenizers are compared on the same bytes.

Cost: training ``O(steps * batch * ctx * (d^2 + ctx d + V d))``; scoring one forward pass per
window.

Usage (``tests/test_transfer.py`` runs it with ``pytest --torch``)::

    lm, losses = train_lm(orig.encode_ordinary(train_text), vocab_size=orig.vocab_size,
                          config=LMConfig(steps=300))
    bits_per_byte(lm, orig, held_text)
    bits_per_byte(lm.with_embeddings(baselines.fvt(lm.embeddings(), decomps)), new, held_text)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..tokenizer import Tokenizer


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise InputError("evaluation C (tokforge.transfer.lm_eval) needs PyTorch: pip install "
                         "'tokforge[torch]' (a CPU build of torch)") from None
    return torch


@dataclass(frozen=True)
class LMConfig:
    """Shape and training schedule of the tiny LM (keyword arguments)."""

    d: int = 64
    n_layers: int = 2
    n_heads: int = 2
    ctx: int = 64
    steps: int = 300
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 0.01
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        for name in ("d", "n_layers", "n_heads", "ctx", "steps", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise InputError(f"LMConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.d % self.n_heads:
            raise InputError(f"LMConfig.d ({self.d}) must be a multiple of n_heads "
                             f"({self.n_heads})")


def _body(torch: Any, cfg: LMConfig) -> Any:
    nn = torch.nn
    F = nn.functional
    Module: Any = nn.Module

    class Block(Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(cfg.d), nn.LayerNorm(cfg.d)
            self.qkv, self.o = nn.Linear(cfg.d, 3 * cfg.d), nn.Linear(cfg.d, cfg.d)
            self.f1, self.f2 = nn.Linear(cfg.d, 4 * cfg.d), nn.Linear(4 * cfg.d, cfg.d)

        def forward(self, x: Any) -> Any:
            B, L, d = x.shape
            h = cfg.n_heads
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
            q, k, v = (t.reshape(B, L, h, d // h).transpose(1, 2) for t in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.o(a.transpose(1, 2).reshape(B, L, d))
            return x + self.f2(F.gelu(self.f1(self.ln2(x))))

    class Body(Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.start = nn.Parameter(torch.randn(cfg.d) * 0.02)
            self.pos = nn.Parameter(torch.randn(cfg.ctx, cfg.d) * 0.02)
            self.blocks = nn.ModuleList([Block() for _ in range(cfg.n_layers)])
            self.lnf = nn.LayerNorm(cfg.d)

        def forward(self, x: Any) -> Any:
            """``x``: ``[B, L, d]`` embeddings of the tokens to predict; position ``i`` sees
            the start vector and tokens ``< i``."""
            B, L, _ = x.shape
            h = torch.cat([self.start.expand(B, 1, cfg.d), x[:, :-1]], dim=1) + self.pos[:L]
            for b in self.blocks:
                h = b(h)
            return self.lnf(h)

    return Body()


class TinyLM:
    """A trained body plus one tied embedding matrix (see the module docstring)."""

    def __init__(self, body: Any, E: Any, config: LMConfig) -> None:
        self.body = body
        self.E = E
        self.config = config

    @property
    def vocab_size(self) -> int:
        return int(self.E.shape[0])

    def embeddings(self) -> np.ndarray:
        """A float32 copy of the tied matrix ``[V, d]``."""
        return np.array(self.E.detach().numpy(), dtype=np.float32)

    def with_embeddings(self, E: Any) -> TinyLM:
        """The same body, frozen (it is shared with this model, not copied), with tied matrix
        ``E`` (``[V', d]``, finite)."""
        torch = _torch()
        M = np.asarray(E, dtype=np.float32)
        if M.ndim != 2 or M.shape[1] != self.config.d:
            raise InputError(f"embedding matrix has shape {M.shape}, expected (V, "
                             f"{self.config.d})")
        if not np.isfinite(M).all():
            raise InputError("embedding matrix contains NaN or infinity")
        for p in self.body.parameters():
            p.requires_grad_(False)
        return TinyLM(self.body, torch.tensor(M), self.config)

    def logits(self, ids: Any) -> Any:
        """``[B, L, V]`` next-token logits; row ``i`` scores token ``ids[:, i]``."""
        return self.body(self.E[ids]) @ self.E.T

    def token_logprobs(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Natural-log probability of each token of ``ids`` (float64), scored in
        non-overlapping windows of ``ctx`` tokens, each opened by the start vector."""
        torch = _torch()
        a = np.asarray(ids, dtype=np.int64)
        if a.size and (a.min() < 0 or a.max() >= self.vocab_size):
            raise InputError(f"token ids must lie in [0, {self.vocab_size})")
        out = np.empty(len(a), dtype=np.float64)
        ctx = self.config.ctx
        self.body.eval()
        with torch.no_grad():
            for s in range(0, len(a), ctx):
                w = torch.tensor(a[s:s + ctx])[None]
                lp = torch.log_softmax(self.logits(w).double(), dim=-1)[0]
                out[s:s + ctx] = lp.gather(1, w[0][:, None])[:, 0].numpy()
        return out


def train_lm(ids: Sequence[int] | np.ndarray, *, vocab_size: int,
             config: LMConfig | None = None) -> tuple[TinyLM, list[float]]:
    """Train a tiny LM on one token stream ``ids`` (random windows of ``ctx`` tokens); returns
    the model and the loss (nats per token) of every step."""
    torch = _torch()
    cfg = config or LMConfig()
    a = np.asarray(ids, dtype=np.int64)
    if len(a) <= cfg.ctx:
        raise InputError(f"training stream has {len(a)} tokens; need more than ctx={cfg.ctx}")
    if a.min() < 0 or a.max() >= vocab_size:
        raise InputError(f"token ids must lie in [0, {vocab_size})")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    body = _body(torch, cfg)
    E = torch.nn.Parameter(torch.randn(vocab_size, cfg.d) * 0.02)
    opt = torch.optim.AdamW([*body.parameters(), E], lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    stream = torch.tensor(a)
    warm = max(1, cfg.steps // 10)
    lm = TinyLM(body, E, cfg)
    losses = []
    body.train()
    for step in range(cfg.steps):
        lr = cfg.lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.tensor(rng.integers(0, len(a) - cfg.ctx, size=cfg.batch_size))
        w = stream[starts[:, None] + torch.arange(cfg.ctx)]
        loss = torch.nn.functional.cross_entropy(lm.logits(w).reshape(-1, vocab_size),
                                                 w.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return TinyLM(body, E.detach().clone(), cfg), losses


def bits_per_byte(lm: TinyLM, tokenizer: Any, text: str) -> float:
    """Held-out bits per UTF-8 byte of ``text`` under ``lm`` with ``tokenizer`` (whose vocabulary
    must match ``lm``'s embedding rows)."""
    tok = Tokenizer.coerce(tokenizer)
    if tok.vocab_size != lm.vocab_size:
        raise InputError(f"the tokenizer has {tok.vocab_size} tokens but the LM's embedding "
                         f"matrix has {lm.vocab_size} rows")
    n = len(text.encode("utf-8"))
    if n == 0:
        raise InputError("bits per byte of an empty text is undefined")
    lp = lm.token_logprobs(tok.encode_ordinary(text))
    return float(-lp.sum() / math.log(2) / n)
