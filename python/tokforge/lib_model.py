"""LiB, the Less-is-Better vocabulary learner (Yang 2024, arXiv 2403.00417), as a tokenizer.

LiB reads the corpus article by article and keeps ONE ordered lexicon of subwords, words and
multiword expressions: it memorises joins of adjacent chunks, promotes units that save tokens in
a counterfactual comparison, and forgets units that do not pay their way. tokforge runs the
v2023 reference loop in Rust (design notes: docs/lib.md; byte-for-byte the reference's lexicon in
:meth:`LibConfig.reference` settings) and turns the lexicon into a tokenizer: special tokens,
then 256 byte tokens (fallback, so every string encodes and decodes losslessly), then the
units by priority.

>>> from tokforge import Tokenizer, lib_model
>>> texts = ["the cat sat on the mat", "the dog sat on the log"] * 20
>>> tok = Tokenizer.train(texts=texts, vocab_size=None, algorithm="lib", lib=LibConfig(steps=50))
>>> tok.kind, tok.decode(tok.encode("the cat sat on the log")) == "the cat sat on the log"
('lib', True)
>>> model, summary = lib_model.train(texts=texts, vocab_size=None, config=LibConfig(steps=50))
>>> summary.units == model.vocab_size - 256 == len(model.units)
True

Entry points: ``Tokenizer.train(..., algorithm="lib", lib=LibConfig(...))``, :func:`train`
(the native model, which :class:`~tokforge.Tokenizer` wraps, and a :class:`LibTrainSummary`),
``tokforge train --algorithm lib [--lib-steps N --lib-article-len N ...]``, :func:`learn` (the
raw learner: lexicon, probation, cleaned lexicon) and :func:`apply` (segmentation rules).

What is implemented, by section of docs/lib.md:

- Training (docs/lib.md §3, §3.1-§3.3): larger-first reading, counterfactual comparison against the
  second-longest prefix, probation with context extension, passive and active forgetting, tail
  probation, ``clean_lexicon``; CPython-compatible MT19937; Python ``dict`` order semantics
  (docs/lib.md §3.4). ``LibConfig.reference()`` + ``protect_chars=False`` reproduces the golden
  vectors TV5/TV6 of docs/lib.md §11 (lexicon sha256, probation size, ``apply`` output) and equals
  ``tests/reference/lib_ref.py`` on random corpora (hypothesis). There is one Rust loop, the fast
  one of docs/lib.md §9 (trie with live-branch counts, O(step) moves with exact position tracking,
  memoised alternative paths, periodic trie compaction), and it gives the "reference" output.
  Training is single-threaded: each position depends on the lexicon the previous one left. The
  optional "parallel" mode (articles against a frozen snapshot) is NOT implemented (docs/lib.md
  §13).
- Protection (docs/lib.md §8.2): with ``protect_chars=True`` (default) single characters seen in
  training are never forgotten (neither by probation expiry nor by demotion past the end, nor by the
  clean up); byte and special tokens live outside the lexicon and cannot be forgotten.
- Tokenizer (docs/lib.md §8.1, §8.4): ids = specials, ``<0x00>..<0xFF>``, units by priority;
  ``vocab_size`` keeps the first ``vocab_size - 256 - specials`` units of the cleaned lexicon and
  raises :class:`~tokforge.TrainingError` when LiB saturated below that (it never pads);
  ``vocab_size=None`` keeps the emergent size. Lines are segmented independently (units never
  contain ``\\n``; training lines are stripped, empty lines dropped). ``pretokenize=`` gives the
  "no-supra" mode: units stay inside pre-tokenization pieces, in training and encoding (§8.3). After
  training, the training sentences are re-segmented and ``summary.unused_on_train`` counts kept
  units the segmenter never emits (the training text, not a held-out sample: docs/lib.md §8.4, §13).
- Segmentation (docs/lib.md §4): ``"lib"`` = v2023 ``apply`` (rollout of default and alternative
  path, fewer pieces then smaller rank sum); ``"reference"`` keeps its quirk (a lone multi-character
  match whose first character is not a unit emits that character); ``"greedy"`` = longest match. The
  optional ``seg_deeper`` split is not implemented. Encoding runs on a byte trie, batches in
  parallel (rayon) with the GIL released.
- Files (docs/lib.md §8.5): tokforge's own JSON (``"format": "tokforge-lib"``: version, segmenter,
  byte-fallback flag, specials, units in id order, training settings and seed);
  ``Tokenizer.from_file`` detects it. There is no HF ``tokenizer.json`` or ``.tiktoken`` export:
  larger-first segmentation with a counterfactual comparison is neither BPE nor WordPiece, so
  neither format can express it; ``Tokenizer.merges`` and ``Tokenizer.save_tiktoken`` raise
  :class:`~tokforge.InputError` (``TokenModel.merges`` is ``None``). Not done: the WordPiece export
  of the greedy rule and a GPT-2 byte-alphabet mode (docs/lib.md §13).

Measured (``benches/lib_model.py``, docs/lib.md §9 and §10; 2-core shared machine, CPython 3.11):

- Training speed vs the pure-Python reference at identical output (TV6, UDHR English, 300 articles
  of 20 lines, sha256 of both lexicons checked): 153x (TV6-A, 5.84 s vs 0.038 s) and 84x (TV6-B,
  2.64 s vs 0.032 s). Encoding: ~33 M chars/s on one thread (the reference ``apply``: ~1.2 M
  chars/s).
- LiB vs BPE (cl100k pattern) at equal vocabulary sizes on the 30 UDHR corpora, trained on the
  first 80% of lines, counted on the last 20% (each line encoded alone). At LiB's emergent size
  (828-1219 ids) and where BPE could reach that size (26 languages; in bn, hi, ta, vi it runs
  out of merges first), LiB needs fewer tokens in 22/26 languages (ratio 0.75-1.04) but uses
  MORE token types in 22/26 (fewer only in ja, ko, th, zh). Cut to 256 + 256 units, LiB needs
  more tokens than BPE in all 30 languages (priority order is not frequency order) while
  using fewer types in all 30; at 256 + 512 units: fewer tokens in 5/29, fewer types in 15/29.
  Multiword units: 15-40% of the lexicon for languages written with spaces, 0-3% for
  am/ja/th/zh. Without them (``pretokenize="gpt2"`` for LiB, same pattern for BPE) the token
  advantage disappears: at the emergent size LiB needs fewer tokens in 14/30 languages
  (ratio 0.93-1.09) and fewer types in 16/30. The corpora are ~10 KB per language, so 4k/16k vocabularies are out of reach
  (LiB saturates at ~1k units here): these numbers say nothing about scale.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

from . import _core
from ._core import LibTrainSummary
from .errors import InputError
from .inputs import PathLike, expand_files, str_list

__all__ = [
    "LibConfig",
    "LibStep",
    "LibTrainSummary",
    "read_sentences",
    "train",
    "learn",
    "apply",
    "is_multiword",
    "multiword_share",
]


@dataclass(frozen=True)
class LibConfig:
    """LiB hyperparameters (docs/lib.md §6). Defaults: v2023's, except ``max_chunk_len=16``,
    ``article_len=200`` (v2023 demo) and ``protect_chars=True``.

    Args:
        steps: articles to read; ``None`` = ``epochs`` passes over the sentences.
        epochs: passes over the corpus when ``steps`` is ``None``.
        in_rate: α, chance of memorising the join of the previous and the current chunk.
        out_rate: ω, share of the lexicon's tail put on probation after each article.
        life: τ0, articles a unit survives on probation.
        update_rate: Δ, promotion/demotion step as a share of the index.
        max_chunk_len: longest unit in characters (``None`` = unbounded, as the reference).
        inspect_context: grow units that keep the same neighbour (docs/lib.md §3.2).
        article_len: sentences (lines) per article.
        seed: seed of the CPython-compatible Mersenne Twister.
        protect_chars: never forget single characters (tokforge; the reference forgets them).
        segmenter: ``"lib"`` (v2023 ``apply``), ``"reference"`` (with its quirk, see
            docs/lib.md §4) or ``"greedy"`` (longest match).
        pretokenize: "no-supra" mode (docs/lib.md §8.3): a preset (``"gpt2"``, ``"cl100k"``,
            ``"o200k"``) or regex; units never cross its pieces, in training and encoding.
            ``None`` (default) allows multiword units.

    >>> LibConfig.reference().protect_chars
    False
    """

    steps: Optional[int] = None
    epochs: float = 20.0
    in_rate: float = 0.25
    out_rate: float = 0.0001
    life: int = 10
    update_rate: float = 0.1
    max_chunk_len: Optional[int] = 16
    inspect_context: bool = True
    article_len: int = 200
    seed: int = 0
    protect_chars: bool = True
    segmenter: str = "lib"
    pretokenize: Optional[str] = None

    @classmethod
    def reference(cls, **overrides: Any) -> LibConfig:
        """The v2023 reference's settings: unbounded units, no protection, its segmenter."""
        base: dict[str, Any] = dict(
            max_chunk_len=None, protect_chars=False, segmenter="reference", article_len=500
        )
        base.update(overrides)
        return cls(**base)

    def steps_for(self, n_sentences: int) -> int:
        """Articles to read for ``n_sentences`` sentences."""
        if self.steps is not None:
            return self.steps
        if not isinstance(self.article_len, int) or self.article_len < 1:
            return 1  # the native learner rejects article_len, naming it
        steps = self.epochs * n_sentences / self.article_len
        if not math.isfinite(steps) or steps < 0:
            raise InputError(
                f"epochs={self.epochs!r} gives no number of steps; give a finite epochs >= 0 "
                "or steps="
            )
        return max(1, math.ceil(steps))

    def learner_kwargs(self) -> dict[str, Any]:
        # the fields as they are (dataclasses.asdict deep-copies each value: a fixed cost of
        # every learn call)
        return {f: getattr(self, f) for f in _LEARNER_FIELDS}


# LibConfig's fields that are the native learner's keyword arguments
_LEARNER_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(LibConfig)
    if f.name not in ("steps", "epochs", "segmenter", "pretokenize")
)


@dataclass(frozen=True)
class LibStep:
    """What the learner reports after an article."""

    step: int
    steps: int
    lexicon_size: int
    probation_size: int
    tokens_per_byte: float


def read_sentences(
    files: PathLike | Iterable[PathLike] | None = None, *, texts: Iterable[str] | None = None
) -> list[str]:
    """Training sentences: every line of the files / texts, stripped; empty lines dropped.

    >>> read_sentences(texts=["a b\\n\\n  c d  "])
    ['a b', 'c d']
    """
    out: list[str] = []
    if files is not None:
        for p in expand_files(files):
            with open(p, encoding="utf-8") as fh:
                out.extend(s for s in (line.strip() for line in fh) if s)
    if texts is not None:
        for t in str_list(texts, "texts"):
            out.extend(s for s in (line.strip() for line in t.split("\n")) if s)
    return out


def train(
    files: PathLike | Iterable[PathLike] | None = None,
    *,
    texts: Iterable[str] | None = None,
    sentences: Sequence[str] | None = None,
    vocab_size: int | None,
    special_tokens: Sequence[str] = (),
    config: LibConfig | None = None,
    progress: Callable[[str, int, int], Optional[bool]] | None = None,
    on_step: Callable[[LibStep], Optional[bool]] | None = None,
) -> tuple[_core.TokenModel, LibTrainSummary]:
    """Train a LiB model; returns it (``Tokenizer(model)`` is the tokenizer; or call
    ``Tokenizer.train(..., algorithm="lib")``) and a :class:`LibTrainSummary` (lexicon sizes,
    multiword share, units unused on the training text).

    Args:
        files, texts: the corpus (see :func:`read_sentences`); or ``sentences`` as they are.
        vocab_size: final size counting special and byte tokens; the first
            ``vocab_size - 256 - len(special_tokens)`` units in priority order are kept, and
            :class:`~tokforge.TrainingError` is raised if the cleaned lexicon is smaller (LiB
            never pads). ``None`` keeps every unit that survived (the emergent size).
        special_tokens: ids ``0..k-1``.
        config: :class:`LibConfig`.
        progress: ``progress("lib", step, steps)``, the callback shape of ``Tokenizer.train``.
        on_step: called with a :class:`LibStep` (lexicon size, tokens per byte of the last
            article) about 200 times; return ``False`` to stop.
    """
    cfg = _config(config, LibConfig())
    if sentences is None:
        if files is None and texts is None:
            raise InputError("give files=..., texts=... or sentences=... to train on")
        sentences = read_sentences(files, texts=texts)
    sentences = str_list(sentences, "sentences")
    if not sentences:
        raise InputError("no non-empty line to train on")

    def cb(step: int, steps: int, lex: int, prob: int, tpb: float) -> bool:
        ok = True
        if progress is not None and progress("lib", step, steps) is False:
            ok = False
        if on_step is not None and on_step(LibStep(step, steps, lex, prob, tpb)) is False:
            ok = False
        return ok

    return _core.train_lib(
        sentences=sentences,
        steps=cfg.steps_for(len(sentences)),
        vocab_size=vocab_size,
        special_tokens=str_list(special_tokens, "special_tokens"),
        segmenter=cfg.segmenter,
        pretokenize=cfg.pretokenize,
        progress=cb if (progress is not None or on_step is not None) else None,
        **cfg.learner_kwargs(),
    )


def _config(config: LibConfig | None, default: LibConfig) -> LibConfig:
    if config is None:
        return default
    if not isinstance(config, LibConfig):
        raise InputError(f"config must be a LibConfig, not {type(config).__name__}")
    return config


def learn(
    sentences: Sequence[str], *, steps: int, config: LibConfig | None = None
) -> tuple[list[str], list[str], list[str]]:
    """The raw learner: ``(L, P, clean L)`` after ``steps`` articles, as lists of str.

    With :meth:`LibConfig.reference` settings this equals the v2023 code's state (golden
    vectors TV5 and TV6, docs/lib.md §11).

    >>> L, P, clean = learn(["ab ab ab"], steps=3, config=LibConfig.reference(article_len=1))
    >>> set(clean) <= set(L)
    True
    """
    cfg = _config(config, LibConfig.reference())
    # a list is joined as it is (no copy; join checks that every element is a str, and
    # str_list names the one that is not); anything else goes through str_list
    lines = sentences if type(sentences) is list else str_list(sentences, "sentences")
    try:
        text = "\n".join(lines)
    except TypeError:
        str_list(lines, "sentences")
        raise
    # one str for the core (one conversion instead of one per line); the core refuses a line
    # holding "\n" when the text does not split into len(lines) lines
    return _core.lib_learn(
        sentences=text if lines else [],
        steps=steps,
        pretokenize=cfg.pretokenize,
        lines=len(lines),
        **cfg.learner_kwargs(),
    )


def apply(
    units: Sequence[str], sentences: Sequence[str], *, segmenter: str = "reference"
) -> list[list[str]]:
    """Segment sentences with a lexicon (priority order) by a rule (docs/lib.md §4).

    >>> units = ["e ", "th", "the", "cat", " "]  # "th" + "e " outranks "the" + " "
    >>> apply(units, ["the cat"], segmenter="lib")
    [['th', 'e ', 'cat']]
    >>> apply(units, ["the cat"])  # the reference's quirk: "cat" has no shorter unit under it
    [['th', 'e ', 'c', 'a', 't']]
    """
    return _core.lib_apply(
        str_list(units, "units"), str_list(sentences, "sentences"), segmenter=segmenter
    )


def is_multiword(unit: str) -> bool:
    """A unit with whitespace strictly inside: a multiword expression. Whitespace is Unicode
    ``White_Space`` (the core's test; unlike :meth:`str.isspace`, U+001C..U+001F are not).

    >>> is_multiword("of the"), is_multiword(" the "), is_multiword("a\\x1fb")
    (True, False, False)
    """
    return _core.is_multiword(unit)


def multiword_share(model: _core.TokenModel) -> float:
    """Share of a LiB model's units (``Tokenizer.model``) that are multiword
    (:func:`is_multiword`); :class:`~tokforge.InputError` for a BPE model."""
    units = model.units
    if units is None:
        raise InputError(f"multiword_share needs a LiB model; this one is {model.kind!r}")
    return _core.multiword_share(units)
