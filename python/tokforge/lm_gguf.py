"""A Llama-architecture GGUF model run in numpy, as a :class:`~tokforge.lm.TokenLM`.

:class:`GGUFLlamaLM` reads a llama.cpp GGUF file (``general.architecture = llama``: SmolLM,
SmolLM2, TinyLlama, Llama 2/3 shapes), dequantises every tensor once to float32 with the
``gguf`` package and runs the forward pass in numpy: RMSNorm, rotary position embeddings with
the file's ``rope.freq_base`` / ``rope.dimension_count``, grouped-query attention, a SwiGLU
feed-forward block, and the output head (``output.weight``, or the token embedding when the
file ties them). Nothing else is needed: no torch, no llama.cpp build. The model's tokenizer is
:meth:`Tokenizer.from_gguf <tokforge.Tokenizer.from_gguf>` on the same file, so
``ByteLM(GGUFLlamaLM(path), Tokenizer.from_gguf(path))`` is an exact next-byte model of a real
LM (docs/byte_probs.md §17).

RoPE layout: llama.cpp's converter permutes the rows of ``attn_q`` / ``attn_k`` of each head
from the Hugging Face "rotate half" order (dimension ``i`` paired with ``i + d/2``) to
interleaved pairs (``2i``, ``2i+1``), which is what llama.cpp's ``LLAMA_ROPE_TYPE_NORM``
rotates. The weights are used as stored, so the rotation here acts on adjacent pairs.

KV cache: the keys and values of recent sequences are kept (an LRU of ``max_cached``
sequences) and a query reuses the cached sequence with the longest common prefix, so a
prefix that extends a cached one by one token costs one token step; the byte-level sampler's
queries (covers that share all but their last tokens) are mostly such extensions. In a batch,
prefixes of a longer prefix are read off that prefix's forward pass. Counters: ``steps``
(token positions computed) and ``reused`` (positions served from the cache).

Needs the optional package ``gguf`` (``pip install 'tokforge[lm-gguf]'``); ``import tokforge``
works without it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np

from .errors import FormatError, InputError

__all__ = ["GGUFLlamaLM"]

PathLike = Union[str, "os.PathLike[str]"]


def _gguf() -> Any:
    try:
        import gguf
    except ImportError as e:
        raise ImportError(
            "GGUFLlamaLM needs the optional package 'gguf': pip install 'tokforge[lm-gguf]' "
            "(or pip install gguf)"
        ) from e
    return gguf


def _field(reader: Any, key: str, default: Any = None) -> Any:
    """A scalar or string metadata value of a GGUF file (``default`` when absent)."""
    f = reader.fields.get(key)
    if f is None:
        if default is None:
            raise FormatError(f'GGUF key "{key}": missing')
        return default
    part = f.parts[f.data[0]]
    if f.types and f.types[0].name == "STRING":
        return bytes(part).decode("utf-8")
    return part.tolist()[0]


class GGUFLlamaLM:
    """A Llama-architecture GGUF checkpoint as a :class:`~tokforge.lm.TokenLM` (numpy forward
    pass, float32 weights dequantised once, prefix KV cache).

    Args:
        path: the ``.gguf`` file.
        bos_id: id put before every prefix. Default: the file's ``tokenizer.ggml.bos_token_id``
            when ``tokenizer.ggml.add_bos_token`` is true, else ``None`` (no start token; an
            empty prefix is then an error). Pass e.g. the ``<|endoftext|>`` id to start every
            text as a new document.
        eos_id: the end-of-text id of :class:`~tokforge.lm.TokenLM` (default: the file's
            ``tokenizer.ggml.eos_token_id``).
        max_cached: sequences whose keys and values are kept (0: no cache across calls).
        vocab_size: width of the returned rows when wider than the model's output layer; the
            extra ids get log-probability ``-inf``. :meth:`Tokenizer.from_gguf
            <tokforge.Tokenizer.from_gguf>` appends the single bytes a byte-level vocabulary
            lacks (21 for SmolLM2), and :class:`~tokforge.ByteLM` wants a row entry for every
            tokenizer id: pass ``vocab_size=tokenizer.vocab_size``.

    Attributes: ``vocab_size``, ``n_out`` (the model's output width), ``eos_id``, ``bos_id``,
    ``n_layers``, ``d_model``, ``n_heads``, ``n_kv_heads``, ``head_dim``, ``n_ff``, ``n_rot``,
    ``rope_base``, ``context_length``, ``tied``, and the counters ``calls``, ``steps``,
    ``reused``.

    Example (the test suite runs it on SmolLM2-135M; not a doctest, the file is 98 MB)::

        lm = GGUFLlamaLM("SmolLM2-135M-Instruct.Q4_1.gguf")
        tok = Tokenizer.from_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")
        lp = lm.next_logprobs([tok.encode("The capital of France is")])[0]
        tok.decode([int(lp.argmax())])   # ' Paris' (p = 0.77)
    """

    def __init__(
        self,
        path: PathLike,
        *,
        bos_id: Union[int, str, None] = "auto",
        eos_id: Optional[int] = None,
        max_cached: int = 32,
        vocab_size: Optional[int] = None,
    ) -> None:
        gguf = _gguf()
        from gguf.quants import dequantize

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise InputError(f"no GGUF file at {path!r}")
        try:
            r = gguf.GGUFReader(path)
        except (ValueError, OSError) as e:
            raise FormatError(f"{path}: not a readable GGUF file ({e})") from e
        arch = _field(r, "general.architecture")
        if arch != "llama":
            raise FormatError(
                f'GGUF key "general.architecture": {arch!r}; GGUFLlamaLM runs "llama" only'
            )
        scaling = _field(r, "llama.rope.scaling.type", "none")
        if scaling not in ("none", ""):
            raise FormatError(f'GGUF key "llama.rope.scaling.type": {scaling!r} is not supported')
        self.n_layers = int(_field(r, "llama.block_count"))
        self.d_model = int(_field(r, "llama.embedding_length"))
        self.n_heads = int(_field(r, "llama.attention.head_count"))
        self.n_kv_heads = int(_field(r, "llama.attention.head_count_kv", self.n_heads))
        self.head_dim = self.d_model // self.n_heads
        self.n_rot = int(_field(r, "llama.rope.dimension_count", self.head_dim))
        self.rope_base = float(_field(r, "llama.rope.freq_base", 10000.0))
        self.eps = float(_field(r, "llama.attention.layer_norm_rms_epsilon"))
        self.context_length = int(_field(r, "llama.context_length"))
        if self.n_heads % self.n_kv_heads or self.n_rot % 2 or self.n_rot > self.head_dim:
            raise FormatError(
                f"{path}: unsupported attention shape (heads {self.n_heads}, kv heads "
                f"{self.n_kv_heads}, rope dims {self.n_rot}, head dim {self.head_dim})"
            )

        file_eos = int(_field(r, "tokenizer.ggml.eos_token_id"))
        file_bos = int(_field(r, "tokenizer.ggml.bos_token_id", -1))
        add_bos = bool(_field(r, "tokenizer.ggml.add_bos_token", False))
        w: dict[str, np.ndarray] = {}
        for t in r.tensors:
            a = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
            shape = tuple(int(x) for x in reversed([int(s) for s in t.shape]))
            w[t.name] = np.ascontiguousarray(a.reshape(shape))
        del r

        def take(name: str) -> np.ndarray:
            a = w.pop(name, None)
            if a is None:
                raise FormatError(f"{path}: tensor {name!r} missing")
            return a

        self._embed = take("token_embd.weight")  # [vocab, d]
        out = w.pop("output.weight", None)
        self._out_t = np.ascontiguousarray((self._embed if out is None else out).T)  # [d, vocab]
        self.tied = out is None
        self._norm = take("output_norm.weight")
        self._layers: list[tuple[np.ndarray, ...]] = []
        for i in range(self.n_layers):
            p = f"blk.{i}."
            qkv = np.concatenate(
                [take(p + "attn_q.weight"), take(p + "attn_k.weight"), take(p + "attn_v.weight")]
            )
            gate_up = np.concatenate([take(p + "ffn_gate.weight"), take(p + "ffn_up.weight")])
            self._layers.append(
                (
                    take(p + "attn_norm.weight"),
                    np.ascontiguousarray(qkv.T),  # [d, (h + 2 kvh) hd]
                    np.ascontiguousarray(take(p + "attn_output.weight").T),
                    take(p + "ffn_norm.weight"),
                    np.ascontiguousarray(gate_up.T),  # [d, 2 ff]
                    np.ascontiguousarray(take(p + "ffn_down.weight").T),
                )
            )
        self.n_ff = self._layers[0][5].shape[0] if self._layers else 0
        self.n_out = int(self._out_t.shape[1])
        self.vocab_size = max(self.n_out, int(vocab_size or 0))
        self._inv_freq = self.rope_base ** (-np.arange(0, self.n_rot, 2) / self.n_rot)

        self.eos_id = int(eos_id) if eos_id is not None else file_eos
        if bos_id == "auto":
            self.bos_id: Optional[int] = file_bos if add_bos and file_bos >= 0 else None
        else:
            self.bos_id = None if bos_id is None else int(bos_id)
        for name, v in (("eos_id", self.eos_id), ("bos_id", self.bos_id)):
            if v is not None and not 0 <= v < self.n_out:
                raise InputError(f"{name} {v} is outside the model's {self.n_out} ids")

        self.max_cached = int(max_cached)
        # token sequence (BOS included) -> (keys [L, T, kvh, hd], values, last log-probs)
        self._cache: OrderedDict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = (
            OrderedDict()
        )
        self.calls = 0
        self.steps = 0
        self.reused = 0

    # ---- forward ------------------------------------------------------------------------------

    def _rms(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return (x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps)) * g

    def _rope(self, x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        """Rotate adjacent pairs (2i, 2i+1) of the first ``n_rot`` dims; x: [n, heads, hd]."""
        r = self.n_rot
        a, b = x[..., 0:r:2], x[..., 1:r:2]
        out = x.copy()
        out[..., 0:r:2] = a * cos - b * sin
        out[..., 1:r:2] = a * sin + b * cos
        return out

    def _forward(
        self, ids: Sequence[int], start: int, past_k: np.ndarray, past_v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run ``ids`` at positions ``start..`` after cached keys/values of ``start`` positions.
        Returns the final normed hidden states ``[n, d]`` and the keys/values of all
        ``start + n`` positions."""
        n = len(ids)
        T = start + n
        h_, kvh, hd = self.n_heads, self.n_kv_heads, self.head_dim
        g = h_ // kvh
        keys = np.empty((self.n_layers, T, kvh, hd), dtype=np.float32)
        vals = np.empty_like(keys)
        keys[:, :start] = past_k[:, :start]
        vals[:, :start] = past_v[:, :start]
        pos = np.arange(start, T, dtype=np.float64)
        ang = pos[:, None] * self._inv_freq[None, :]
        cos = np.cos(ang).astype(np.float32)[:, None, :]
        sin = np.sin(ang).astype(np.float32)[:, None, :]
        # query i (position start+i) sees keys 0..start+i
        mask = np.where(
            np.arange(T)[None, :] > (start + np.arange(n))[:, None], -np.inf, 0.0
        ).astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(hd))
        x = self._embed[np.asarray(ids, dtype=np.int64)]
        for li, (an, wqkv, wo, fn, wgu, wd) in enumerate(self._layers):
            hx = self._rms(x, an)
            qkv = hx @ wqkv
            q = self._rope(qkv[:, : h_ * hd].reshape(n, h_, hd), cos, sin)
            k = self._rope(qkv[:, h_ * hd : (h_ + kvh) * hd].reshape(n, kvh, hd), cos, sin)
            keys[li, start:] = k
            vals[li, start:] = qkv[:, (h_ + kvh) * hd :].reshape(n, kvh, hd)
            # [kvh, g, n, hd] @ [kvh, 1, hd, T] -> [kvh, g, n, T]
            qg = q.reshape(n, kvh, g, hd).transpose(1, 2, 0, 3)
            s = qg @ keys[li].transpose(1, 2, 0)[:, None] * scale + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            o = s @ vals[li].transpose(1, 0, 2)[:, None]  # [kvh, g, n, hd]
            x = x + o.transpose(2, 0, 1, 3).reshape(n, h_ * hd) @ wo
            hx = self._rms(x, fn)
            gu = hx @ wgu
            ff = gu.shape[1] // 2
            gate = gu[:, :ff]
            x = x + ((gate / (1.0 + np.exp(-gate))) * gu[:, ff:]) @ wd
        return self._rms(x, self._norm), keys, vals

    def _log_softmax(self, logits: np.ndarray) -> np.ndarray:
        z = logits.astype(np.float64)
        z -= z.max(-1, keepdims=True)
        z -= np.log(np.exp(z).sum(-1, keepdims=True))
        if self.vocab_size > self.n_out:
            pad = np.full((z.shape[0], self.vocab_size - self.n_out), -np.inf)
            z = np.concatenate([z, pad], axis=1)
        return z

    # ---- TokenLM ------------------------------------------------------------------------------

    def _full(self, p: Sequence[int]) -> tuple[int, ...]:
        seq = ((self.bos_id,) if self.bos_id is not None else ()) + tuple(int(i) for i in p)
        if not seq:
            raise InputError("an empty prefix needs a start token: pass bos_id=")
        if min(seq) < 0 or max(seq) >= self.n_out:
            raise InputError(f"a prefix has ids outside the model's {self.n_out} ids")
        if len(seq) > self.context_length:
            raise InputError(f"a prefix of {len(seq)} tokens exceeds the context length")
        return seq

    def _best(self, seq: tuple[int, ...]) -> tuple[int, Optional[tuple[int, ...]]]:
        """Longest common prefix of ``seq`` with a cached sequence, and that sequence."""
        best, key = 0, None
        for k in self._cache:
            m = min(len(k), len(seq))
            n = 0
            while n < m and k[n] == seq[n]:
                n += 1
            if n > best:
                best, key = n, k
        return best, key

    def next_logprobs(self, prefixes: Sequence[Sequence[int]]) -> np.ndarray:
        """``float64[B, vocab_size]`` log-probabilities of the next token after each prefix
        (``bos_id`` put in front when set)."""
        self.calls += 1
        seqs = [self._full(p) for p in prefixes]
        wanted = set(seqs)
        rows: dict[tuple[int, ...], np.ndarray] = {}
        for seq in sorted(wanted, key=len, reverse=True):
            if seq in rows:
                continue
            hit = self._cache.get(seq)
            if hit is not None:
                self._cache.move_to_end(seq)
                rows[seq] = hit[2]
                self.reused += len(seq)
                continue
            lcp, key = self._best(seq)
            lcp = min(lcp, len(seq) - 1)  # always compute the last position
            if key is not None and lcp > 0:
                pk, pv, _ = self._cache[key]
                self._cache.move_to_end(key)
            else:
                lcp = 0
                pk = pv = np.empty((self.n_layers, 0, self.n_kv_heads, self.head_dim), np.float32)
            hidden, keys, vals = self._forward(seq[lcp:], lcp, pk, pv)
            self.steps += len(seq) - lcp
            self.reused += lcp
            # rows for every requested prefix of seq that this pass computed
            at = [
                i for i in range(lcp + 1, len(seq) + 1) if seq[:i] in wanted and seq[:i] not in rows
            ]
            lp = self._log_softmax(hidden[[i - lcp - 1 for i in at]] @ self._out_t)
            for i, row in zip(at, lp):
                rows[seq[:i]] = row
            if self.max_cached > 0:
                self._cache[seq] = (keys, vals, rows[seq])
                while len(self._cache) > self.max_cached:
                    self._cache.popitem(last=False)
        if not seqs:
            return np.zeros((0, self.vocab_size))
        return np.stack([rows[s] for s in seqs])

    def logits_along(self, ids: Sequence[int]) -> np.ndarray:
        """Log-probabilities after every prefix of ``ids`` (``[len(ids), vocab]``; row ``i``
        predicts ``ids[i]`` given ``ids[:i]`` and BOS, so with ``bos_id=None`` the first row
        is after ``ids[:1]``), in one uncached forward pass."""
        seq = self._full(ids)
        empty = np.empty((self.n_layers, 0, self.n_kv_heads, self.head_dim), np.float32)
        hidden, _, _ = self._forward(seq, 0, empty, empty)
        self.steps += len(seq)
        return self._log_softmax(hidden @ self._out_t)

    def clear_cache(self) -> None:
        self._cache.clear()
