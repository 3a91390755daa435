"""Tokenizer-quality metrics: compare any tokenizers over any languages in one report.

- :mod:`.qtok`: what a vocabulary is made of (Qtok's twelve categories, scripts, languages)
  and how vocabularies overlap;
- :mod:`.purity`: %TR / %Pure, the share of tokens that are words / single morphemes;
- :mod:`.corpus`: fertility, continued words, bytes and characters per token, NSL, premium,
  vocabulary utilisation, UNK / byte-fallback / partial-character rates, throughput;
- :mod:`.renyi`: Rényi entropy and efficiency;
- :func:`analyze` runs them over tokenizers × corpora into a :class:`Report`.

Every tokenizer goes through :meth:`tokforge.Tokenizer.coerce` (tokforge's BPE and LiB,
``tokenizer.json`` / ``.tiktoken`` / tekken files, HF ``tokenizers.Tokenizer``, tiktoken
encodings). Definitions, test vectors and reference numbers: docs/metrics.md.

>>> from tokforge import Tokenizer
>>> tok = Tokenizer.train(texts=["the cats sat on the mat"] * 20, vocab_size=270, pattern="gpt2")
>>> rep = analyze({"mine": tok}, {"en": ["the cat sat"]}, metrics=["fertility", "pcw"])
>>> rep.value("mine", "en", "fertility"), rep.value("mine", "en", "pcw")
(1.0, 0.0)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Optional, Union

from ..corpora import corpus_files
from ..errors import InputError
from ..inputs import expand_files
from ..tokenizer import Tokenizer
from .corpus import NO_SPACE_LANGUAGES, CorpusStats, VocabInfo, measure, nsl, premium, premium_mean
from .purity import PurityResult, purity
from .qtok import CATEGORIES, QtokResult, classify, qtok, vocab_overlap
from .renyi import DEFAULT_ALPHA, renyi_efficiency, renyi_entropy
from .report import Report, Row

__all__ = [
    "analyze",
    "tokenizer_names",
    "Report",
    "Row",
    "CORPUS_METRICS",
    "ALL_METRICS",
    "qtok",
    "QtokResult",
    "classify",
    "vocab_overlap",
    "purity",
    "PurityResult",
    "measure",
    "CorpusStats",
    "renyi_entropy",
    "renyi_efficiency",
    "CATEGORIES",
]

#: Metrics computed from one pass over each corpus (the default of :func:`analyze`).
CORPUS_METRICS = (
    "tokens",
    "fertility",
    "pcw",
    "bytes_per_token",
    "chars_per_token",
    "nsl",
    "premium",
    "renyi_efficiency",
    "vocab_utilisation",
    "unk_rate",
    "byte_fallback_rate",
    "partial_char_rate",
    "split_char_rate",
    "throughput_mb_s",
)
#: Everything :func:`analyze` knows: the corpus metrics plus ``qtok`` (vocabulary composition
#: and overlap) and ``purity`` (%TR / %Pure, for ``purity_langs``).
ALL_METRICS = (*CORPUS_METRICS, "qtok", "purity")

TokenizerLike = Any
CorpusLike = Union[str, "os.PathLike[str]", Sequence[str]]
Progress = Callable[[str, int, int], Optional[bool]]


def tokenizer_names(tokenizers: Sequence[Any]) -> list[str]:
    """Report names for a list of tokenizers: a file's name without ``.json`` / ``.tiktoken``
    (a run name as given), ``tokenizerN`` for objects; repeated names get a ``'``.

    >>> tokenizer_names(["a/gpt2.tiktoken", "b/gpt2.tiktoken", "demo", object()])
    ['gpt2', "gpt2'", 'demo', 'tokenizer4']
    """
    out: list[str] = []
    for i, obj in enumerate(tokenizers):
        if isinstance(obj, (str, os.PathLike)):
            name = Path(obj).name
            for suffix in (".json", ".tiktoken"):
                name = name[: -len(suffix)] if name.endswith(suffix) else name
        else:
            name = f"tokenizer{i + 1}"
        while name in out:
            name += "'"
        out.append(name)
    return out


def _tokenizers(tokenizers: Any) -> dict[str, Tokenizer]:
    if isinstance(tokenizers, Mapping):
        items = [(str(k), v) for k, v in tokenizers.items()]
    else:
        if isinstance(tokenizers, (str, os.PathLike, Tokenizer)) or not isinstance(
            tokenizers, Iterable
        ):
            tokenizers = [tokenizers]
        tokenizers = list(tokenizers)
        items = list(zip(tokenizer_names(tokenizers), tokenizers))
    if not items:
        raise InputError("no tokenizer to analyze")
    out: dict[str, Tokenizer] = {}
    for name, obj in items:
        tok = Tokenizer.coerce(obj)
        if tok.vocab_size == 0:
            raise InputError(f"tokenizer {name!r} has no vocabulary")
        out[name] = tok
    return out


def _read(p: Path) -> str:
    return p.read_text(encoding="utf-8", errors="replace")


def _corpora(corpora: Any) -> dict[str, list[str]]:
    """``{language: [documents]}`` from a directory, files, or ``{language: Path | text |
    [texts]}`` (a ``str`` value is text, a ``Path`` a file; a file's language is its stem:
    ``tr.txt`` -> ``tr``)."""
    if corpora is None:
        return {name: [_read(p)] for name, p in corpus_files().items()}
    if isinstance(corpora, Mapping):
        out: dict[str, list[str]] = {}
        for lang, v in corpora.items():
            if isinstance(v, os.PathLike):
                out[str(lang)] = [_read(p) for p in expand_files(v)]
            elif isinstance(v, str):
                out[str(lang)] = [v]
            else:
                out[str(lang)] = [str(t) for t in v]
        return out
    paths = expand_files(corpora)
    out = {}
    for p in paths:
        out.setdefault(p.stem, []).append(_read(p))
    return out


def _is_language(name: str) -> bool:
    return re.fullmatch(r"[a-z]{2,3}", name) is not None


def analyze(
    tokenizers: Any,
    corpora: Any = None,
    *,
    metrics: Iterable[str] = CORPUS_METRICS,
    langs: Optional[Iterable[str]] = None,
    reference_language: str = "en",
    reference_tokenizer: Optional[str] = None,
    alpha: float = DEFAULT_ALPHA,
    purity_langs: Iterable[str] = ("tr",),
    weighting: str = "type",
    qtok_mode: str = "tokforge",
    num_threads: Optional[int] = None,
    progress: Optional[Progress] = None,
) -> Report:
    """Measure every tokenizer on every corpus.

    Args:
        tokenizers: ``{name: tokenizer}`` or a list (names from file names); each item is
            anything :meth:`Tokenizer.coerce` takes.
        corpora: a directory of ``<lang>.txt`` files, a list of files, ``{lang: Path | text |
            [texts]}``, or ``None`` for the shipped ``corpora/`` (the UDHR in 30 languages,
            parallel, and source code).
        metrics: names from :data:`ALL_METRICS` (default: :data:`CORPUS_METRICS`).
        langs: keep only these corpora (unknown names raise :class:`InputError`).
        reference_language: premium is ``N_L / N_ref`` against this corpus (parallel text).
        reference_tokenizer: NSL is ``N_T / N_ref`` against this tokenizer (default: the first).
        alpha: Rényi exponent (the paper's 2.5 by default; tokenization-scorer's default is 3).
        purity_langs: languages for %TR / %Pure when ``"purity"`` is in ``metrics`` (measured
            on that language's corpus, or the shipped one when ``corpora`` has none).
        weighting: %TR / %Pure weighting, ``"type"`` or ``"token"``.
        qtok_mode: ``"tokforge"`` or ``"compat"`` (see :func:`tokforge.metrics.qtok.qtok`).
        num_threads: encoder threads.
        progress: ``progress(stage, done, total)`` after each step (stage ``"corpus"``: one
            tokenizer × corpus; ``"qtok"``, ``"purity"``: one tokenizer); ``False`` stops.
    """
    wanted = list(dict.fromkeys(metrics))
    unknown = [m for m in wanted if m not in ALL_METRICS]
    if unknown:
        raise InputError(f"unknown metrics {unknown}; known: {', '.join(ALL_METRICS)}")
    toks = _tokenizers(tokenizers)
    texts = _corpora(corpora)
    if langs is not None:
        langs = list(langs)
        missing = [lang for lang in langs if lang not in texts]
        if missing:
            raise InputError(
                f"no corpus for {missing}; available: {', '.join(sorted(texts)) or 'none'}"
            )
        texts = {lang: texts[lang] for lang in langs}
    texts = {k: v for k, v in texts.items() if any(v)}
    corpus_wanted = [m for m in wanted if m in CORPUS_METRICS]
    if corpus_wanted and not texts:
        raise InputError("empty corpora: no text to measure")
    ref_tok = reference_tokenizer if reference_tokenizer is not None else next(iter(toks))
    if ref_tok not in toks:
        raise InputError(f"reference_tokenizer {ref_tok!r} is not one of {list(toks)}")
    rows: list[Row] = []
    notes: list[str] = []
    n_steps = len(toks) * (len(texts) if corpus_wanted else 0)
    n_steps += len(toks) * ("qtok" in wanted) + len(toks) * ("purity" in wanted)
    done = 0

    def tick(stage: str) -> None:
        nonlocal done
        done += 1
        if progress is not None and progress(stage, done, n_steps) is False:
            raise InputError("analyze was stopped by the progress callback")

    stats: dict[tuple[str, str], CorpusStats] = {}
    for name, tok in toks.items():
        rows.append(Row(name, "*", "vocab_size", float(tok.vocab_size), {}))
        if not corpus_wanted:
            continue
        info = VocabInfo.of(tok)
        for lang, docs in texts.items():
            st = measure(tok, docs, language=lang, num_threads=num_threads, info=info)
            stats[(name, lang)] = st
            tick("corpus")
    for (name, lang), st in stats.items():
        row = _corpus_rows(name, lang, st, corpus_wanted, alpha)
        if "nsl" in corpus_wanted and (ref_tok, lang) in stats:
            row.append(
                Row(name, lang, "nsl", nsl(st, stats[(ref_tok, lang)]), {"reference": ref_tok})
            )
        ref = stats.get((name, reference_language))
        if "premium" in corpus_wanted and ref is not None and _is_language(lang):
            pm = premium_mean(st, ref)
            row.append(
                Row(
                    name,
                    lang,
                    "premium",
                    premium(st, ref),
                    {"reference": reference_language, "form": "corpus ratio"},
                )
            )
            if pm is not None:
                row.append(
                    Row(
                        name,
                        lang,
                        "premium_mean",
                        pm,
                        {"reference": reference_language, "form": "mean per line"},
                    )
                )
        rows.extend(row)
    no_space = sorted({lang for _, lang in stats if lang in NO_SPACE_LANGUAGES})
    if no_space and "fertility" in corpus_wanted:
        notes.append(
            f"{', '.join(no_space)}: written without spaces, fertility is tokens per character"
        )
    sparse = sorted(
        {
            lang
            for (_, lang), st in stats.items()
            if lang not in NO_SPACE_LANGUAGES and st.words and st.chars / st.words > 15
        }
    )
    if sparse and "fertility" in corpus_wanted:
        notes.append(
            f"{', '.join(sparse)}: few whitespace-separated words (over 15 characters each; "
            "Amharic separates words with U+1361 ETHIOPIC WORDSPACE): fertility and PCW count "
            "whitespace words"
        )
    if "premium" in corpus_wanted and stats and reference_language not in texts:
        notes.append(f"no premium: no {reference_language!r} corpus to compare with")
    if "qtok" in wanted:
        results: dict[str, QtokResult] = {}
        for name, tok in toks.items():
            res = qtok(tok, mode=qtok_mode)
            results[name] = res
            rows.extend(_qtok_rows(name, res))
            tick("qtok")
        if len(results) > 1:
            ov = vocab_overlap(results)
            rows.append(Row("*", "*", "overlap.union", float(ov["union"]), {}))
            rows.append(Row("*", "*", "overlap.in_all", float(ov["in_all"]), {}))
            rows.append(Row("*", "*", "overlap.in_one", float(ov["in_one"]), {}))
            for name, k in ov["only"].items():
                rows.append(Row(name, "*", "overlap.only_here", float(k), {}))
    if "purity" in wanted:
        plangs = list(purity_langs)
        for name, tok in toks.items():
            for lang in plangs:
                docs = texts.get(lang) or _corpora(None).get(lang) or []
                if not docs:
                    raise InputError(f"%TR for {lang!r} needs a {lang!r} corpus")
                pr = purity(tok, docs, lang=lang, weighting=weighting)
                base = {"weighting": pr.weighting, "types": pr.types, **pr.params}
                rows.append(
                    Row(
                        name,
                        lang,
                        "tr_pct",
                        pr.tr,
                        {**base, "reason": pr.tr_reason} if pr.tr is None else base,
                    )
                )
                rows.append(
                    Row(
                        name,
                        lang,
                        "pure_pct",
                        pr.pure,
                        {**base, "reason": pr.pure_reason} if pr.pure is None else base,
                    )
                )
            tick("purity")
    return Report(rows, notes)


def _corpus_rows(
    name: str, lang: str, st: CorpusStats, wanted: Sequence[str], alpha: float
) -> list[Row]:
    out = []

    def add(metric: str, value: Optional[float], **params: Any) -> None:
        if metric in wanted:
            out.append(Row(name, lang, metric, value, params))

    add("tokens", float(st.tokens), words=st.words, bytes=st.bytes, chars=st.chars)
    add("fertility", st.fertility, unit="char" if st.no_space else "word")
    add("pcw", st.pcw)
    add("bytes_per_token", st.bytes_per_token)
    add("chars_per_token", st.chars_per_token)
    if "renyi_efficiency" in wanted:
        out.append(
            Row(
                name,
                lang,
                "renyi_efficiency",
                st.renyi(alpha=alpha),
                {"alpha": alpha, "V": "observed types", "V_value": st.types},
            )
        )
        out.append(
            Row(
                name,
                lang,
                "renyi_efficiency_vocab",
                st.renyi(alpha=alpha, vocab="vocabulary"),
                {"alpha": alpha, "V": "vocabulary size", "V_value": st.regular_vocab},
            )
        )
    add("vocab_utilisation", st.vocab_utilisation, types=st.types, vocabulary=st.regular_vocab)
    add("unk_rate", st.unk_rate, unk_id=st.unk_id)
    add("byte_fallback_rate", st.byte_fallback_rate)
    add("partial_char_rate", st.partial_char_rate)
    add("split_char_rate", st.split_char_rate)
    add(
        "throughput_mb_s",
        st.throughput_mb_s,
        threads=st.threads or "all",
        encode_seconds=round(st.encode_seconds, 4),
    )
    return out


def _qtok_rows(name: str, res: QtokResult) -> list[Row]:
    rows = [
        Row(name, "*", f"qtok.{c}", res.shares[c], {"count": res.counts[c], "mode": res.mode})
        for c in CATEGORIES
    ]
    for script, share in res.script_totals().items():
        rows.append(Row(name, "*", f"qtok.script.{script}", share, {"of": "alpha tokens"}))
    for group, shares in res.languages.items():
        for lang, share in list(shares.items())[:10]:
            rows.append(Row(name, "*", f"qtok.{group}.{lang}", share, {"table": "qtok 0.11.0"}))
    for k, v in res.extension.items():
        rows.append(Row(name, "*", f"qtok.ext.{k}", float(v), {"extension": "tokforge"}))
    return rows
