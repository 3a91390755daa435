"""Data-mixture inference: estimate the mix of categories (languages, code, ...) a BPE tokenizer
was trained on, from its ordered merge list alone.

Hayase, Liu, Choi, Oh and Smith (2024), "Data Mixture Inference: What do BPE Tokenizers Reveal
about their Training Data?". Design note: ``docs/mixture_inference.md``.

Merge ``t`` of a BPE tokenizer was the most frequent pair in the training data after merges
``1..t-1``. Replaying the merges on a sample of each category gives every pair's count per
category at every step (Rust, :func:`replay`); if category ``i`` makes up weight ``alpha_i`` of the
training pairs, merge ``t`` must have beaten every competitor ``p``::

    sum_i alpha_i (c_it(m_t) - c_it(p)) / N_i + v_t + v_p >= 0

with slacks ``v`` for noise. :func:`solve` finds the weights minimising the total slack by
constraint generation (only the rows that bind are ever built) and converts them to shares of
training *bytes*. :func:`infer` does both.

>>> from tokforge import Tokenizer
>>> en = "the cat and the hat sat on the mat with the bat " * 40
>>> de = "der hund und die katze sind in dem haus mit dem ball " * 40
>>> tok = Tokenizer.train(texts=[en * 3 + de], vocab_size=300, pattern="gpt2")
>>> r = infer(tok, {"en": en, "de": de}, min_sample_bytes=0)
>>> sorted(r)
['de', 'en']
>>> r["en"] > r["de"]
True
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Optional, Union

import numpy as np

from . import _core
from .errors import InputError, TokforgeError
from .inputs import expand_files
from .tokenizer import Tokenizer

__all__ = ["MixtureResult", "infer", "replay", "solve", "SOLVERS"]

PathLike = Union[str, "os.PathLike[str]"]
#: a category's sample: text (``str``), or a path / paths (``pathlib.Path``; a directory stands
#: for its ``*.txt`` files)
SampleLike = Union[str, "os.PathLike[str]", Sequence["os.PathLike[str]"]]
MergeLike = tuple[Union[bytes, str], Union[bytes, str]]
ProgressCallback = Callable[[str, int, int], Optional[bool]]

#: counts enter the LP per million pairs: the argmin does not change, tolerances stay meaningful
SCALE = 1e6
#: the paper's number of merges (``num_merges=None`` uses this many, or the whole list)
DEFAULT_MERGES = 30_000
#: LP solvers: name -> (module, extra to install)
SOLVERS = {"highs": ("scipy", "scipy"), "cbc": ("pulp", "mixture-cbc")}


@dataclass(frozen=True, eq=False)
class MixtureResult(Mapping[str, float]):
    """Inferred training mixture: a read-only mapping category -> share of training bytes.

    Attributes:
        shares: category -> share of training bytes (sums to 1).
        alpha: the LP's weights, in units of pairs (same order as ``categories``).
        categories: category names, in input order.
        objective: total slack at the optimum (count fractions; 0 = every merge explained).
        v_step: step -> slack of that merge (non-zero ones only).
        v_pair: ``(left, right)`` bytes -> slack of that competitor pair (non-zero ones only).
        missing_merges: steps whose merge occurs in no sample (no constraint comes from them).
        merges_used: merges replayed; ``merges_dropped``: merges removed before replaying
            (``drop_merges``, and redundant splits of rank-based lists).
        rounds: LP solves; ``constraints``: rows in the final LP; ``pair_slacks``: its ``v_p``.
        timing: seconds for ``replay``, ``separate`` (finding violated rows) and ``solve``.
        solver: ``"highs"`` or ``"cbc"``; ``strategy``: ``"generate"`` or ``"full"``.
    """

    shares: Mapping[str, float]
    alpha: np.ndarray
    categories: tuple[str, ...]
    objective: float
    v_step: Mapping[int, float]
    v_pair: Mapping[tuple[bytes, bytes], float]
    missing_merges: tuple[int, ...]
    merges_used: int
    merges_dropped: int
    rounds: int
    constraints: int
    pair_slacks: int
    timing: Mapping[str, float]
    solver: str
    strategy: str
    counts: Any = field(repr=False)

    def __getitem__(self, name: str) -> float:
        return self.shares[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.shares)

    def __len__(self) -> int:
        return len(self.shares)

    @property
    def residual_slack(self) -> float:
        """Alias of :attr:`objective`: how much the samples fail to explain the merge order."""
        return self.objective

    def to_dict(self) -> dict[str, Any]:
        """Shares and diagnostics as plain JSON-ready values."""
        return {
            "shares": dict(self.shares),
            "alpha": dict(zip(self.categories, map(float, self.alpha))),
            "objective": self.objective,
            "merges_used": self.merges_used,
            "merges_dropped": self.merges_dropped,
            "missing_merges": len(self.missing_merges),
            "rounds": self.rounds,
            "constraints": self.constraints,
            "pair_slacks": self.pair_slacks,
            "step_slacks": len(self.v_step),
            "timing": dict(self.timing),
            "solver": self.solver,
            "strategy": self.strategy,
        }

    def __repr__(self) -> str:
        top = ", ".join(f"{k}={v:.4f}" for k, v in self.shares.items())
        return f"MixtureResult({top}; objective={self.objective:.3g}, rounds={self.rounds})"


# ---- replay ----------------------------------------------------------------------------------
def _merges_of(tokenizer: Any, pattern: str | None) -> tuple[list[tuple[bytes, bytes]], str]:
    """Byte-pair merges and pre-tokenization pattern of a tokenizer or a merge list."""
    if isinstance(tokenizer, (list, tuple)):
        if pattern is None:
            raise InputError("a raw merge list needs pattern= (gpt2 | cl100k | o200k | REGEX)")
        out = []
        for k, m in enumerate(tokenizer):
            if not (isinstance(m, (tuple, list)) and len(m) == 2):
                raise InputError(f"merges[{k}] = {m!r} is not a pair")
            a, b = (x.encode("utf-8") if isinstance(x, str) else bytes(x) for x in m)
            out.append((a, b))
        return out, pattern
    tok = Tokenizer.coerce(tokenizer)
    try:
        merges = tok.merges
    except TokforgeError as e:
        raise InputError(f"mixture inference needs a BPE tokenizer: {e}") from None
    if not merges:
        raise InputError("mixture inference needs a BPE tokenizer with merges")
    return merges, pattern if pattern is not None else tok.pattern


def _sample_args(name: str, sample: SampleLike) -> tuple[str, Optional[str], list[str], int]:
    if isinstance(sample, str):
        return name, sample, [], len(sample.encode("utf-8", "surrogatepass"))
    if isinstance(sample, (bytes, bytearray)):
        raise InputError(f"category {name!r}: give text as str, not bytes")
    paths = expand_files(sample)
    return name, None, [str(p) for p in paths], sum(p.stat().st_size for p in paths)


def replay(
    tokenizer: Any,
    samples: Mapping[str, SampleLike],
    *,
    num_merges: int | None = None,
    pattern: str | None = None,
    merge_order: str = "auto",
    drop_merges: Sequence[int] = (),
    top_k: int = 10,
    min_sample_bytes: int = 1000,
    errors: str = "strict",
    progress: ProgressCallback | None = None,
    num_threads: int | None = None,
) -> _core.MixtureCounts:
    """Replay the tokenizer's merges on each category's sample; see :func:`infer` for the
    arguments (``num_merges=None`` = the first 30,000 or the whole list). Returns the native pair-count transcripts (numpy arrays; lazy counts of any pair
    at any step with ``counts_at``).

    >>> c = replay([("a", "b"), ("ab", "c")], {"x": "abc ab abc"}, pattern="gpt2",
    ...            min_sample_bytes=0)
    >>> c.chosen.tolist()
    [[3, 2]]
    """
    merges, pat = _merges_of(tokenizer, pattern)
    if drop_merges:
        drop = {int(i) for i in drop_merges}
        bad = [i for i in drop if not 0 <= i < len(merges)]
        if bad:
            raise InputError(f"drop_merges has indices outside the {len(merges)} merges: {bad}")
        merges = [m for i, m in enumerate(merges) if i not in drop]
    if not merges:
        raise InputError("the merge list is empty")
    if not samples:
        raise InputError("give at least one category sample")
    if top_k < 0:
        raise InputError(f"top_k={top_k} must be >= 0")
    cats = [_sample_args(str(k), v) for k, v in samples.items()]
    tiny = [f"{n} ({b} bytes)" for n, _, _, b in cats if b < min_sample_bytes]
    if tiny:
        raise InputError(
            f"samples below min_sample_bytes={min_sample_bytes}: {', '.join(tiny)}; their counts "
            "are too noisy to weigh merges (pass min_sample_bytes=0 to accept them)"
        )
    if num_merges is not None and num_merges < 1:
        raise InputError(f"num_merges={num_merges} must be >= 1")
    counts = _core.replay_merges(
        merges,
        pat,
        [c[:3] for c in cats],
        merge_order=merge_order,
        num_merges=num_merges,
        limit=DEFAULT_MERGES,
        top_k=top_k,
        errors=errors,
        progress=progress,
        num_threads=num_threads,
    )
    return counts


# ---- the linear program ----------------------------------------------------------------------
def _import_solver(solver: str) -> Any:
    if solver not in SOLVERS:
        raise InputError(f"solver={solver!r} is not one of {sorted(SOLVERS)}")
    module, extra = SOLVERS[solver]
    try:
        if solver == "highs":
            from scipy.optimize import linprog

            return linprog
        import pulp

        return pulp
    except ImportError:
        raise ImportError(
            f"solver={solver!r} needs the package {module!r}: pip install 'tokforge[{extra}]' "
            f"(or pip install {module})"
        ) from None


class _LP:
    """The LP over a growing set of rows: columns alpha (n), then v_t and v_p as rows need them."""

    def __init__(self, counts: _core.MixtureCounts) -> None:
        empty = [n for n, t in zip(counts.categories, counts.pairs_total) if t == 0]
        if empty:
            raise InputError(
                f"categories with no adjacent byte pair (every piece is a single byte): {empty}"
            )
        self.counts = counts
        self.chosen = counts.chosen.astype(np.float64)  # (n, T)
        self.norm = SCALE / counts.pairs_total.astype(np.float64)  # (n,)
        self.n = len(counts.categories)
        self.steps = np.zeros(0, dtype=np.int64)
        self.pairs = np.zeros(0, dtype=np.int64)
        self.coef = np.zeros((0, self.n))

    def add(self, rows: np.ndarray) -> None:
        steps, pairs = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64)
        c = self.counts.counts_at(steps, pairs).astype(np.float64)  # (m, n)
        coef = (self.chosen[:, steps].T - c) * self.norm
        self.steps = np.concatenate([self.steps, steps])
        self.pairs = np.concatenate([self.pairs, pairs])
        self.coef = np.vstack([self.coef, coef])

    def solve(self, solver: str) -> tuple[np.ndarray, dict[int, float], dict[int, float], float]:
        """(alpha, v_step, v_pair, objective) in scaled units."""
        n, m = self.n, len(self.steps)
        ust, st_col = np.unique(self.steps, return_inverse=True)
        upa, pa_col = np.unique(self.pairs, return_inverse=True)
        n_cols = n + len(ust) + len(upa)
        if m == 0:
            alpha = np.full(n, 1.0 / n)
            return alpha, {}, {}, 0.0
        if solver == "highs":
            x, obj = _solve_highs(self.coef, st_col, pa_col, n, n_cols)
        else:
            x, obj = _solve_cbc(self.coef, st_col, pa_col, n, n_cols)
        alpha = np.clip(x[:n], 0.0, None)
        alpha /= alpha.sum()
        vs = x[n : n + len(ust)]
        vp = x[n + len(ust) :]
        v_step = {int(t): float(v) for t, v in zip(ust, vs) if v > 0}
        v_pair = {int(p): float(v) for p, v in zip(upa, vp) if v > 0}
        return alpha, v_step, v_pair, obj


def _solve_highs(
    coef: np.ndarray, st_col: np.ndarray, pa_col: np.ndarray, n: int, n_cols: int
) -> tuple[np.ndarray, float]:
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    m = coef.shape[0]
    r = np.arange(m)
    rows = np.concatenate([np.repeat(r, n), r, r])
    cols = np.concatenate([np.tile(np.arange(n), m), n + st_col, n + st_col.max() + 1 + pa_col])
    vals = np.concatenate([-coef.ravel(), -np.ones(m), -np.ones(m)])
    a_ub = coo_matrix((vals, (rows, cols)), shape=(m, n_cols)).tocsr()
    c = np.concatenate([np.zeros(n), np.ones(n_cols - n)])
    a_eq = np.concatenate([np.ones(n), np.zeros(n_cols - n)])[None, :]
    res = linprog(
        c, A_ub=a_ub, b_ub=np.zeros(m), A_eq=a_eq, b_eq=[1.0], bounds=(0, None), method="highs"
    )
    if res.status != 0:
        raise TokforgeError(f"the HiGHS solver failed: {res.message} (status {res.status})")
    return np.asarray(res.x), float(res.fun)


def _cbc_command(pulp: Any) -> Any:
    """CBC through ``pulp``: the ``cbcbox`` binary (``pulp[cbc]``), a CBC on the PATH, or the
    binary older PuLP bundles."""
    try:
        import cbcbox

        return pulp.COIN_CMD(msg=False, path=cbcbox.cbc_bin_path())
    except ImportError:
        pass
    cmd = pulp.COIN_CMD(msg=False)
    if cmd.available():
        return cmd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pulp.PULP_CBC_CMD(msg=False)


def _solve_cbc(
    coef: np.ndarray, st_col: np.ndarray, pa_col: np.ndarray, n: int, n_cols: int
) -> tuple[np.ndarray, float]:
    import pulp

    prob = pulp.LpProblem("mixture", pulp.LpMinimize)
    if hasattr(prob, "add_variable"):  # PuLP >= 3.3; LpVariable(...) is deprecated there
        x = [prob.add_variable(f"x{j}", lowBound=0) for j in range(n_cols)]
    else:  # pragma: no cover - older PuLP
        x = [pulp.LpVariable(f"x{j}", lowBound=0) for j in range(n_cols)]
    n_st = int(st_col.max()) + 1
    prob += pulp.lpSum(x[n:])
    prob += pulp.lpSum(x[:n]) == 1
    for i in range(coef.shape[0]):
        terms = [(x[j], float(coef[i, j])) for j in range(n) if coef[i, j] != 0]
        terms += [(x[n + st_col[i]], 1.0), (x[n + n_st + pa_col[i]], 1.0)]
        prob += pulp.LpAffineExpression(terms) >= 0
    status = prob.solve(_cbc_command(pulp))
    if pulp.LpStatus[status] != "Optimal":
        raise TokforgeError(f"the CBC solver failed: status {pulp.LpStatus[status]}")
    vals = np.array([v.value() or 0.0 for v in x])
    return vals, float(pulp.value(prob.objective) or 0.0)


def solve(
    counts: _core.MixtureCounts,
    *,
    solver: str = "highs",
    strategy: str = "generate",
    k: int = 10,
    max_add: int = 10_000,
    tol: float = 1e-6,
    progress: ProgressCallback | None = None,
    replay_seconds: float = 0.0,
    merges_dropped: int = 0,
) -> MixtureResult:
    """Solve the mixture LP on replayed counts.

    Args:
        counts: from :func:`replay`.
        solver: ``"highs"`` (``scipy.optimize.linprog``) or ``"cbc"`` (``pulp``; extra
            ``mixture-cbc``). Both reach the same optimum.
        strategy: ``"generate"`` adds rows while the solution violates some (optimal for the
            full LP on exit); ``"full"`` builds every row at once (small instances only).
        k: rows added per step and round at most (the paper's 10).
        max_add: a round ends after the step where this many rows were found (the paper used
            100 with a warm-started solver; this LP is rebuilt each round, so fewer, larger
            rounds are faster).
        tol: violation (in counts per million pairs) below which a row is taken as satisfied.
        progress: ``progress("lp", round, 0)`` after each round; return ``False`` to stop.

    >>> c = replay([("a", "b")], {"x": "ab ab", "y": "ba ba ab"}, pattern="gpt2",
    ...            min_sample_bytes=0)
    >>> solve(c).objective
    0.0
    """
    _import_solver(solver)
    if strategy not in ("generate", "full"):
        raise InputError(f"strategy={strategy!r} is not 'generate' or 'full'")
    if k < 1 or max_add < 1:
        raise InputError("k and max_add must be >= 1")
    lp = _LP(counts)
    n, T = lp.n, counts.num_steps
    alpha = np.full(n, 1.0 / n)
    v_step: dict[int, float] = {}
    v_pair: dict[int, float] = {}
    obj = 0.0
    t_sep = t_solve = 0.0
    rounds = 0
    while True:
        t0 = time.perf_counter()
        if strategy == "full":
            new = counts.all_rows() if rounds == 0 else np.zeros((0, 2), dtype=np.int64)
        else:
            vs = np.zeros(T)
            for t, v in v_step.items():
                vs[t] = v
            new = counts.violated_rows(
                alpha,
                vs,
                np.fromiter(v_pair.keys(), dtype=np.int64, count=len(v_pair)),
                np.fromiter(v_pair.values(), dtype=np.float64, count=len(v_pair)),
                lp.steps,
                lp.pairs,
                scale=SCALE,
                tol=tol,
                k=k,
                max_add=max_add,
            )
        t_sep += time.perf_counter() - t0
        if len(new) == 0:
            break
        lp.add(new)
        t0 = time.perf_counter()
        alpha, v_step, v_pair, obj = lp.solve(solver)
        t_solve += time.perf_counter() - t0
        rounds += 1
        if progress is not None and progress("lp", rounds, 0) is False:
            raise _core.StoppedError("stopped by the progress callback during the LP")
    names = tuple(counts.categories)
    ratio = counts.sample_bytes.astype(np.float64) / counts.pairs_total.astype(np.float64)
    data = alpha * ratio
    shares = data / data.sum()
    pair_names = {counts.pair_tokens(p): v / SCALE for p, v in sorted(v_pair.items())}
    return MixtureResult(
        shares=MappingProxyType(dict(zip(names, map(float, shares)))),
        alpha=alpha,
        categories=names,
        objective=max(obj, 0.0) / SCALE,
        v_step=MappingProxyType({t: v / SCALE for t, v in sorted(v_step.items())}),
        v_pair=MappingProxyType(pair_names),
        missing_merges=tuple(int(t) for t in counts.missing_steps()),
        merges_used=T,
        merges_dropped=merges_dropped + counts.merges_dropped,
        rounds=rounds,
        constraints=len(lp.steps),
        pair_slacks=len(np.unique(lp.pairs)),
        timing=MappingProxyType(
            {"replay": replay_seconds, "separate": t_sep, "solve": t_solve}
        ),
        solver=solver,
        strategy=strategy,
        counts=counts,
    )


def infer(
    tokenizer: Any,
    samples: Mapping[str, SampleLike],
    num_merges: int | None = None,
    *,
    pattern: str | None = None,
    merge_order: str = "auto",
    drop_merges: Sequence[int] = (),
    solver: str = "highs",
    strategy: str = "generate",
    k: int = 10,
    max_add: int = 10_000,
    top_k: int = 10,
    min_sample_bytes: int = 1000,
    errors: str = "strict",
    progress: ProgressCallback | None = None,
    num_threads: int | None = None,
) -> MixtureResult:
    """Infer the share of each category in the tokenizer's training data.

    Args:
        tokenizer: anything :meth:`Tokenizer.coerce` takes (a tokforge ``Tokenizer``, a path to
            ``tokenizer.json`` / ``.tiktoken`` / tekken, a HF or tiktoken object), or a merge
            list of ``(left, right)`` bytes (``str`` is UTF-8 encoded) with ``pattern=``.
        samples: category -> sample. A ``str`` is the text itself; a ``pathlib.Path`` (or a
            list of them) is a file or a directory of ``*.txt`` files. Samples should be
            disjoint from the training data and from the same kind of source.
        num_merges: merges to use; ``None`` = the first 30,000 (the paper's choice) or the
            whole list if shorter. More than the list has is an error.
        pattern: pre-tokenizer override (default: the tokenizer's own).
        merge_order: ``"auto"``, ``"list"`` (a trainer's log) or ``"ranks"`` (a split list from
            a rank file or converter, reduced to the merge BPE makes for each token); ``auto``
            picks ``ranks`` when neighbouring merges make the same token.
        drop_merges: indices of merges to remove first (hand-added or redundant merges).
        solver, strategy, k, max_add: see :func:`solve`.
        top_k: competitors per step and category recorded by the replay.
        min_sample_bytes: smaller samples are refused (their counts are mostly noise).
        errors: invalid UTF-8 in sample files: ``strict`` | ``replace`` | ``ignore``.
        progress: ``progress(stage, done, total)``: ``"replay"`` (steps over all categories),
            then ``"lp"`` (rounds); return ``False`` to stop.
        num_threads: replay threads (categories run in parallel); results do not depend on it.

    >>> r = infer([("a", "b")], {"x": "ab ab", "y": "ba ba"}, pattern="gpt2",
    ...           min_sample_bytes=0)
    >>> sorted(r), r.objective
    (['x', 'y'], 0.0)
    >>> r["x"] >= 0.5  # (a, b) before (b, a) needs x to outweigh y
    True
    """
    t0 = time.perf_counter()
    counts = replay(
        tokenizer,
        samples,
        num_merges=num_merges,
        pattern=pattern,
        merge_order=merge_order,
        drop_merges=drop_merges,
        top_k=top_k,
        min_sample_bytes=min_sample_bytes,
        errors=errors,
        progress=progress,
        num_threads=num_threads,
    )
    t_replay = time.perf_counter() - t0
    return solve(
        counts,
        solver=solver,
        strategy=strategy,
        k=k,
        max_add=max_add,
        progress=progress,
        replay_seconds=t_replay,
        merges_dropped=len(drop_merges),
    )


def load_samples(specs: Sequence[str]) -> dict[str, Path]:
    """``NAME=PATH`` strings (CLI ``--category``) as a samples mapping of paths.

    >>> load_samples(["en=corpora/en.txt"])
    {'en': PosixPath('corpora/en.txt')}
    """
    out: dict[str, Path] = {}
    for s in specs:
        name, sep, path = s.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--category {s!r} is not NAME=PATH")
        if name in out:
            raise InputError(f"category {name!r} is given twice")
        out[name] = Path(path)
    return out
