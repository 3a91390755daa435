"""Zero-shot tokenizer transfer: predict a model's embedding rows for any new tokenizer
(ZeTT-style hypernetwork, Minixhofer et al. 2024), with the heuristics it is measured against.
Design note: docs/transfer.md.

- :class:`Hypernetwork` / :class:`HypernetConfig` / :class:`FitReport` (``hypernet.py``);
- ``model.py``: the numpy network, hand-written backward, AdamW; ``torch_backend.py``: the
  same network in PyTorch, used with ``HypernetConfig(backend="torch")`` (extra ``[torch]``);
- ``data.py``: decompositions with exclusions, the held-out split, length buckets, matrix files;
- ``baselines.py``: FVT, length-weighted mean, last piece, random, FOCUS-style;
- ``evaluate.py``: cosine, relative L2, retrieval ranks, bootstrap intervals;
- ``lm_eval.py``: evaluation C, a tiny torch LM's bits per byte before and after a swap.
"""

from .data import Decomposer as Decomposer
from .data import load_embeddings as load_embeddings
from .hypernet import FitReport as FitReport
from .hypernet import HypernetConfig as HypernetConfig
from .hypernet import Hypernetwork as Hypernetwork

__all__ = ["Decomposer", "FitReport", "HypernetConfig", "Hypernetwork", "load_embeddings"]
