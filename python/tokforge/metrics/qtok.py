"""Qtok: what a vocabulary is made of (Chelombitko et al. 2024), with qtok 0.11.0's exact rules.

Every token is normalised, then put in one of twelve categories (control tokens, single
bytes, single characters, word-initial "spaced" tokens, word-internal "inner" tokens, partial
characters, and tokens with unnamed characters); alpha tokens (one script only) also get their
Unicode script, and Latin / Cyrillic ones a language share from qtok's own tables (read from
the installed ``qtok`` package, never copied). See docs/metrics.md, section Qtok.

Two normalisations:

- ``mode="compat"`` replays qtok's reading of a ``tokenizer.json`` heuristic by heuristic (marker
  choice by counting characters in the file, "byte-level unless the file contains ``ма``",
  ``<0xNN>`` tokens as GPT-2 characters, SentencePiece single characters as ``0XNN`` strings), so
  its counts equal the ``qtok`` command's on the same file.
- ``mode="tokforge"`` (default) reads the real tokens: the model's special tokens are control
  tokens, one-byte tokens are ``pure_unicode``, tokens that are not whole UTF-8 characters are
  ``unicode_flanks``, everything else is classified from its decoded text.

>>> from tokforge import Tokenizer
>>> tok = Tokenizer.train(texts=["the cat the hat"] * 20, vocab_size=262, pattern="gpt2")
>>> r = qtok(tok, languages=False)
>>> r.counts["pure_unicode"], r.counts["spaced_alpha"] + r.counts["inner_alpha"]
(256, 6)
>>> classify(" the"), classify("<0yÃ>")
(('spaced_alpha', 'LATIN'), ('unicode_flanks', None))
"""

from __future__ import annotations

import functools
import json
import os
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .. import _core
from ..errors import FormatError, InputError
from ..tokenizer import Tokenizer

__all__ = [
    "CATEGORIES",
    "SCRIPTS",
    "QtokResult",
    "classify",
    "script_of",
    "qtok",
    "qtok_reference",
    "reference_vocabularies",
    "language_shares",
    "normalise_tokenizer_json",
    "vocab_overlap",
]

#: The twelve categories, in the column order of qtok's ``basic_stats.tsv``.
CATEGORIES = (
    "control_tokens",
    "pure_unicode",
    "char_alpha",
    "spaced_alpha",
    "inner_alpha",
    "char_other",
    "spaced_other",
    "inner_other",
    "unicode_flanks",
    "char_errors",
    "spaced_errors",
    "inner_errors",
)

#: First words of Unicode character names that qtok counts as scripts (its ``LANGUAGES``).
SCRIPTS = frozenset(
    "ADLAM CHAKMA OL BAMUM OGHAM BOPOMOFO COPTIC RUNIC HALFWIDTH MODI KAITHI LEPCHA SHAVIAN "
    "LIMBU BATAK PHOENICIAN GLAGOLITIC MANDAIC BALINESE SAMARITAN PHAGS-PA OLD BLACK-LETTER "
    "SUNDANESE INSCRIPTIONAL LISU CHAM TAGALOG DESERET TAGBANWA BUGINESE THAANA MONGOLIAN "
    "DINGBAT JAVANESE EGYPTIAN GEORGIAN NKO TIFINAGH GURMUKHI BENGALI SINHALA ORIYA TAI KANGXI "
    "CANADIAN CHEROKEE LAO TELUGU SYRIAC TAMIL BRAILLE ETHIOPIC MYANMAR HEBREW ARABIC TIBETAN "
    "HIRAGANA CYRILLIC GREEK CJK LATIN KATAKANA KHMER THAI ARMENIAN YI HANGUL GOTHIC MALAYALAM "
    "DEVANAGARI GUJARATI KANNADA MEETEI ARABIC-INDIC".split()
)
assert len(SCRIPTS) == 75

#: Bracketed HTML-ish tags qtok does not count as control tokens.
_HTML_TAGS = frozenset("br h1 h2 h3 h4 h5 h6 b img li tr td p th u em".split())

#: GPT-2's byte <-> character table, taken from the native module (rust/src/byte_level.rs).
_C2B: dict[str, int] = {}
for _cp in range(0x144):
    _b = _core.byte_level_decode(chr(_cp))
    if _b is not None:
        _C2B[chr(_cp)] = _b[0]
_B2C = {b: c for c, b in _C2B.items()}
assert len(_C2B) == 256

_NO_NAME = "\0"  # script_of() result for characters without a Unicode name


class _Scripts(dict[str, str]):
    """char -> first word of its Unicode name (qtok's "script"), ``_NO_NAME`` if it has none;
    filled on first use, so lookups in the hot loop are C-level ``dict`` hits."""

    def __missing__(self, ch: str) -> str:
        name = unicodedata.name(ch, None)
        s = name.split(None, 1)[0] if name else _NO_NAME
        self[ch] = s
        return s


_SCRIPT = _Scripts()


def script_of(ch: str) -> Optional[str]:
    """First word of the character's Unicode name (what Qtok calls its script: ``LATIN``,
    ``CJK``, ``SPACE``...), ``None`` for characters without a name (controls, unassigned).

    >>> script_of("ı"), script_of("\\n")
    ('LATIN', None)
    """
    s = _SCRIPT[ch]
    return None if s == _NO_NAME else s


def classify(token: str, *, heuristics: bool = True) -> tuple[str, Optional[str]]:
    """Category of a normalised token and, for the ``*_alpha`` ones, its script (qtok's rules:
    a leading ``" "`` marks a spaced token; the first matching rule wins).

    ``heuristics=True`` keeps the two rules qtok needs because it sees only strings: any single
    character of the GPT-2 byte alphabet (``a``, ``é``, ``Ā``, ...) is ``pure_unicode``, and
    bracketed tokens (``<s>``, ``[CLS]``) are control tokens. tokforge mode knows the bytes and
    the special tokens, and passes ``False``.

    >>> classify("ing"), classify("[CLS]"), classify("\\n\\n")
    (('inner_alpha', 'LATIN'), ('control_tokens', None), ('inner_errors', None))
    >>> classify("é"), classify("é", heuristics=False)
    (('pure_unicode', None), ('char_alpha', 'LATIN'))
    """
    if len(token) == 1:
        if heuristics and token in _C2B:
            return "pure_unicode", None
        s = _SCRIPT[token]
        if s == _NO_NAME:
            return "char_errors", None
        return ("char_alpha", s) if s in SCRIPTS else ("char_other", None)
    if not token:
        return "inner_other", None
    if token[0] == " ":
        rest = set(map(_SCRIPT.__getitem__, token[1:]))
        if _NO_NAME in rest:
            return "spaced_errors", None
        if len(rest) == 1:
            (s,) = rest
            if s in SCRIPTS:
                return "spaced_alpha", s
        return "spaced_other", None
    if heuristics and (
        (token[0] == "<" and token[-1] == ">" and "<0y" not in token)
        or (token[0] == "[" and token[-1] == "]")
    ):
        if token[1:-1].lower().replace("/", "") not in _HTML_TAGS:
            return "control_tokens", None
    if token.startswith("<0y"):
        return "unicode_flanks", None
    scripts = set(map(_SCRIPT.__getitem__, token))
    if _NO_NAME in scripts:
        return "inner_errors", None
    if len(scripts) == 1:
        (s,) = scripts
        if s in SCRIPTS:
            return "inner_alpha", s
    return "inner_other", None


# ---- normalisation ----------------------------------------------------------------------------


def _byte_level_text(raw: str) -> Optional[str]:
    """qtok's reading of a byte-level token: characters to bytes (unknown ones to 0xFF), then
    UTF-8; ``None`` when the bytes are not whole valid characters (or spell U+FFFD)."""
    data = bytes(_C2B.get(c, 0xFF) for c in raw)
    text = data.decode("utf-8", "replace")
    return None if "\ufffd" in text else text


def normalise_tokenizer_json(
    text: str,
) -> tuple[list[tuple[str, int]], list[tuple[str, int, int]]]:
    """qtok 0.11.0's normalisation of a ``tokenizer.json`` (its ``load_vocab``), heuristics
    included: returns ``[(token, id)]`` in file order and the collisions ``(token, id kept,
    id dropped)`` (qtok stops and asks; we keep the first id).

    >>> toks, _ = normalise_tokenizer_json('{"model": {"vocab": {"Ġthe": 0, "Ã": 1, "ĊĊ": 2}}}')
    >>> toks
    [(' the', 0), ('<0yÃ>', 1), ('\\n\\n', 2)]
    """
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise FormatError(f"not a tokenizer.json ({e})") from None
    if not isinstance(doc, dict):
        raise FormatError("not a tokenizer.json: the top level is not an object")
    if "model" not in doc:
        # qtok rewrites such files as {"model": {"vocab": ...}} (json.dump, indent=2, ASCII
        # escapes) and then counts markers in the rewritten text
        if "vocab" in doc:
            doc["model"] = {"vocab": doc["vocab"]}
        elif "mama" in doc:
            doc["model"] = {"vocab": dict(doc)}
        text = json.dumps(doc, indent=2)
    vocab = doc.get("model", {}).get("vocab") if isinstance(doc.get("model"), dict) else None
    if not isinstance(vocab, dict):
        raise FormatError(
            "tokenizer.json has no model.vocab object (list-style vocabularies, e.g. Unigram, "
            "are not readable by qtok)"
        )
    counts = sorted(
        [
            (text.count("\u2581"), "\u2581"),
            (text.count("\u0120"), "\u0120"),
            (text.count("\u0120"), "\u0120"),
            (text.count("\t"), "\t"),
            (text.count("\u2581"), "\u2581"),
        ]
    )
    marker: Optional[str] = counts[-1][1]
    if marker == "\u0120":
        marker = None
    byte_level = "ма" not in text
    out: dict[str, int] = {}
    collisions = []
    for raw, rid in vocab.items():
        if marker and raw.startswith(marker) and len(raw) > 1:
            raw = ("\u0120" if byte_level else " ") + raw[len(marker) :]
        if raw.lower().startswith("<0x"):
            try:
                tok = _B2C[int(raw[1:-1], 16)]
            except (ValueError, KeyError):
                raise FormatError(f"token {raw!r} (id {rid}) is not a <0xNN> byte") from None
            out[tok] = rid  # qtok stores byte tokens without the collision check
            continue
        if byte_level:
            decoded = _byte_level_text(raw)
            tok = f"<0y{raw}>" if decoded is None else decoded
        else:
            tok = hex(_C2B[raw]).upper() if raw in _C2B else raw
        if tok in out:
            collisions.append((tok, out[tok], rid))
            continue
        out[tok] = rid
    for added in doc.get("added_tokens") or ():
        content = added.get("content")
        if isinstance(content, str) and content not in out:
            out[content] = added.get("id")
    return list(out.items()), collisions


def token_table(tok: Tokenizer) -> list[tuple[int, Optional[bytes], bool]]:
    """``(id, bytes, is_special)`` of every id below ``vocab_size`` (``None`` for ids that the
    vocabulary skips, like cl100k's 100256)."""
    token_bytes = tok.model.token_bytes
    specials = set(tok.special_tokens.values())
    out: list[tuple[int, Optional[bytes], bool]] = []
    for i in range(tok.vocab_size):
        try:
            out.append((i, token_bytes(i), i in specials))
        except ValueError:
            out.append((i, None, False))
    return out


def _normalise_tokforge(tok: Tokenizer) -> list[tuple[str, int, Optional[str]]]:
    """Real tokens: ``(key, id, forced category)``. Specials are control tokens, one-byte tokens
    ``pure_unicode`` (key ``<0xNN>``), tokens that are not whole UTF-8 characters
    ``unicode_flanks`` (key ``<0y...>`` with GPT-2 characters, as qtok writes them); the rest is
    classified from its text (forced category ``None``)."""
    out: list[tuple[str, int, Optional[str]]] = []
    for i, data, special in token_table(tok):
        if data is None:
            continue
        if special:
            out.append((data.decode("utf-8", "replace"), i, "control_tokens"))
        elif len(data) == 1:
            out.append((f"<0x{data[0]:02X}>", i, "pure_unicode"))
        else:
            try:
                out.append((data.decode("utf-8"), i, None))
            except UnicodeDecodeError:
                out.append(("<0y" + "".join(_B2C[b] for b in data) + ">", i, "unicode_flanks"))
    return out


# ---- result ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QtokResult:
    """Qtok tables of one vocabulary. Shares are percentages, unrounded (qtok prints them
    rounded to 2 decimals)."""

    mode: str
    #: normalised token -> (category, script or None)
    tokens: dict[str, tuple[str, Optional[str]]]
    #: category -> number of tokens (all twelve categories present)
    counts: dict[str, int]
    #: (category, script) -> tokens, for the ``*_alpha`` categories
    script_counts: dict[tuple[str, str], int]
    #: ``{"latin": {lang: %}, "cyrillic": {lang: %}}`` (qtok's formula; empty if not asked)
    languages: dict[str, dict[str, float]] = field(default_factory=dict)
    #: alpha tokens (len > 1) of the script that qtok's language table does not list
    unseen: dict[str, int] = field(default_factory=dict)
    #: normalised tokens that two ids share (compat mode; the first id is kept)
    collisions: list[tuple[str, int, int]] = field(default_factory=list)
    #: tokforge's extension (not in qtok): spaced alpha tokens that are whole words of the given
    #: word list vs word-initial fragments
    extension: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(self.counts.values())

    @property
    def shares(self) -> dict[str, float]:
        """Category -> % of the vocabulary (``basic_stats.tsv``)."""
        n = self.size
        return {c: (100 * k / n if n else 0.0) for c, k in self.counts.items()}

    @property
    def scripts(self) -> dict[tuple[str, str], float]:
        """(category, script) -> % of the alpha tokens (``unicode_stats.tsv`` before merging)."""
        n = sum(self.script_counts.values())
        return {k: 100 * v / n for k, v in self.script_counts.items()} if n else {}

    def script_totals(self) -> dict[str, float]:
        """Script -> % of the alpha tokens (char, spaced and inner together)."""
        out: dict[str, float] = {}
        for (_, s), v in self.scripts.items():
            out[s] = out.get(s, 0.0) + v
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


@functools.lru_cache(maxsize=4)
def _qtok_table(name: str) -> dict[str, Any]:
    """One of qtok's bundled JSON tables (``tokens2natural_lat`` ...), from the installed package."""
    try:
        from importlib import resources

        import qtok as qtok_pkg  # noqa: F401
    except ImportError:
        raise InputError(
            "Qtok's language tables come from the `qtok` package: pip install 'tokforge[metrics]'"
            " (or pass languages=False)"
        ) from None
    path = resources.files("qtok") / "data" / f"{name}.json"
    with path.open("r", encoding="utf-8") as fh:
        return json.load(fh)


def _language_shares(
    tokens: Iterable[tuple[str, tuple[str, Optional[str]]]], table: Mapping[str, list[str]]
) -> tuple[dict[str, float], int]:
    """qtok's ``get_language_table`` for one vocabulary: each alpha token (len > 1) listed with
    k languages adds 1/k to each, while the denominator grows by 1 per (token, language)."""
    acc: dict[str, float] = {}
    denom = 0
    unseen = 0
    for tok, (cat, _) in tokens:
        if "alpha" not in cat or len(tok) <= 1:
            continue
        langs = table.get(tok)
        if langs is None:
            unseen += 1
            continue
        for lang in langs:
            acc[lang] = acc.get(lang, 0.0) + 1 / len(langs)
            denom += 1
    shares = {k: 100 * v / denom for k, v in acc.items()} if denom else {}
    return dict(sorted(shares.items(), key=lambda kv: -kv[1])), unseen


def language_shares(
    tokens: Mapping[str, tuple[str, Optional[str]]] | QtokResult,
) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """qtok's Latin and Cyrillic language tables for classified tokens (``{token: (category,
    script)}`` or a :class:`QtokResult`): ``({"latin": {lang: %}, "cyrillic": ...}, {"latin":
    unseen, ...})``. Needs ``pip install 'tokforge[metrics]'``."""
    meta = tokens.tokens if isinstance(tokens, QtokResult) else tokens
    langs: dict[str, dict[str, float]] = {}
    unseen: dict[str, int] = {}
    for name, table in (("latin", "tokens2natural_lat"), ("cyrillic", "tokens2natural_cyr")):
        langs[name], unseen[name] = _language_shares(meta.items(), _qtok_table(table))
    return langs, unseen


def _tokenizer_json_text(obj: Any) -> str:
    """``tokenizer.json`` text for compat mode: the file itself when given a path to one, else
    the tokenizer's own export (a minimal ``{"model": {"vocab": ...}}`` if it has none)."""
    if isinstance(obj, (str, os.PathLike)):
        p = Path(obj)
        if p.is_file():
            with p.open("rb") as fh:
                head = fh.read(256).lstrip()
            if head.startswith(b"{"):
                text = p.read_text(encoding="utf-8")
                doc = json.loads(text)
                if isinstance(doc, dict) and (
                    isinstance(doc.get("model"), dict) or isinstance(doc.get("vocab"), dict)
                ):
                    return text
    tok = Tokenizer.coerce(obj)
    text = tok.to_json()
    doc = json.loads(text)
    if isinstance(doc.get("model"), dict) and isinstance(doc["model"].get("vocab"), dict):
        return text
    vocab = {}
    added = []
    for i, data, special in token_table(tok):
        if data is None:
            continue
        if special:
            added.append({"id": i, "content": data.decode("utf-8", "replace")})
        else:
            vocab["".join(_B2C[b] for b in data)] = i
    return json.dumps({"added_tokens": added, "model": {"vocab": vocab}}, ensure_ascii=False)


def qtok(
    tokenizer: Any,
    *,
    mode: str = "tokforge",
    languages: bool = True,
    words: Optional[Iterable[str]] = None,
) -> QtokResult:
    """Classify every token of a vocabulary as Qtok does.

    Args:
        tokenizer: anything :meth:`Tokenizer.coerce` takes; in ``mode="compat"`` a path to a
            ``tokenizer.json`` is read as text, as qtok reads it (so SentencePiece-style files
            work there before tokforge can encode with them).
        mode: ``"tokforge"`` (real token bytes and special tokens) or ``"compat"`` (qtok's
            heuristics, for numbers identical to the ``qtok`` command).
        languages: also compute the Latin / Cyrillic language shares from the ``qtok``
            package's tables (needs ``pip install 'tokforge[metrics]'``).
        words: a word list (any case); spaced alpha tokens that are a whole word of it are
            counted as ``spaced_word``, the others as ``spaced_fragment`` (tokforge's
            extension, in :attr:`QtokResult.extension`).
    """
    collisions: list[tuple[str, int, int]] = []
    if mode == "compat":
        toks, collisions = normalise_tokenizer_json(_tokenizer_json_text(tokenizer))
        meta = {t: classify(t) for t, _ in toks}
    elif mode == "tokforge":
        tok = Tokenizer.coerce(tokenizer)
        if tok.vocab_size == 0:
            raise InputError("the tokenizer has no vocabulary")
        meta = {}
        first: dict[str, int] = {}
        for text, i, forced in _normalise_tokforge(tok):
            if text in meta:
                collisions.append((text, first[text], i))
                continue
            first[text] = i
            meta[text] = (forced, None) if forced else classify(text, heuristics=False)
    else:
        raise InputError(f"mode={mode!r} is not 'tokforge' or 'compat'")
    if not meta:
        raise InputError("the tokenizer has no vocabulary")
    extension: dict[str, int] = {}
    if words is not None:
        lexicon = {w.casefold() for w in words}
        extension = {"spaced_word": 0, "spaced_fragment": 0}
        for t, (cat, _) in meta.items():
            if cat == "spaced_alpha":
                whole = t[1:].casefold() in lexicon
                extension["spaced_word" if whole else "spaced_fragment"] += 1
    return _result(mode, meta, languages, collisions, extension)


def _result(
    mode: str,
    meta: dict[str, tuple[str, Optional[str]]],
    languages: bool,
    collisions: list[tuple[str, int, int]] = [],  # noqa: B006 (never mutated)
    extension: Optional[dict[str, int]] = None,
) -> QtokResult:
    """Counts, script counts and (``languages``) qtok's language shares of classified tokens."""
    counts = dict.fromkeys(CATEGORIES, 0)
    script_counts: dict[tuple[str, str], int] = {}
    for cat, script in meta.values():
        counts[cat] += 1
        if script is not None:
            key = (cat, script)
            script_counts[key] = script_counts.get(key, 0) + 1
    langs, unseen = language_shares(meta) if languages else ({}, {})
    return QtokResult(
        mode=mode,
        tokens=meta,
        counts=counts,
        script_counts=script_counts,
        languages=langs,
        unseen=unseen,
        collisions=list(collisions),
        extension=extension or {},
    )


def reference_vocabularies() -> dict[str, set[str]]:
    """The 13 reference vocabularies bundled with the ``qtok`` package, as normalised token
    sets (``data/token2hits_tok.json``: each token lists its rank + 1 in each, 0 = absent).

    Needs ``pip install 'tokforge[metrics]'``.
    """
    hits = _qtok_table("token2hits_tok")
    names = list(_qtok_table("model2vocab_tok"))
    out: dict[str, set[str]] = {name: set() for name in names}
    sets = list(out.values())
    for t, ranks in hits.items():
        for k, r in enumerate(ranks[: len(sets)]):
            if r:
                sets[k].add(t)
    return out


def qtok_reference(
    *, languages: bool = True, names: Optional[Iterable[str]] = None
) -> dict[str, QtokResult]:
    """Qtok results of the 13 reference vocabularies bundled with the ``qtok`` package (already
    normalised by its authors), plus ``"Qtok"``, their union; ``names`` keeps only some.

    Needs ``pip install 'tokforge[metrics]'``.
    """
    vocabs: dict[str, Iterable[str]] = {"Qtok": _qtok_table("token2hits_tok")}
    vocabs.update(reference_vocabularies())
    keep = list(vocabs) if names is None else list(names)
    unknown = [n for n in keep if n not in vocabs]
    if unknown:
        raise InputError(f"no reference vocabulary {unknown}; qtok has {list(vocabs)}")
    meta = {t: classify(t) for n in keep for t in vocabs[n]}
    return {n: _result("reference", {t: meta[t] for t in vocabs[n]}, languages) for n in keep}


def vocab_overlap(results: Mapping[str, QtokResult | Iterable[str]]) -> dict[str, Any]:
    """How many normalised tokens all vocabularies share, and how many only one has.

    >>> vocab_overlap({"a": ["x", "y"], "b": ["y", "z"]})["in_all"]
    1
    """
    sets = {
        name: set(r.tokens) if isinstance(r, QtokResult) else set(r) for name, r in results.items()
    }
    if not sets:
        raise InputError("vocab_overlap needs at least one vocabulary")
    seen: dict[str, int] = {}
    for s in sets.values():
        for t in s:
            seen[t] = seen.get(t, 0) + 1
    n = len(sets)
    only = {name: sum(1 for t in s if seen[t] == 1) for name, s in sets.items()}
    names = list(sets)
    jaccard = {
        (a, b): len(sets[a] & sets[b]) / len(sets[a] | sets[b]) if sets[a] | sets[b] else 0.0
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }
    return {
        "union": len(seen),
        "in_all": sum(1 for v in seen.values() if v == n),
        "in_one": sum(1 for v in seen.values() if v == 1),
        "only": only,
        "jaccard": jaccard,
    }
