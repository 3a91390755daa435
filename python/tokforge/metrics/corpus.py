"""Corpus-level intrinsic metrics of a tokenizer on one language's text.

One pass per (tokenizer, corpus): the text is encoded without special tokens (special-token
text is plain text), in parallel chunks cut where pre-tokenization cannot depend on what
follows (so the ids equal those of encoding each document whole). Everything else is
vectorised over the id array and the UTF-8 bytes: token end offsets are the cumulative sum of
token byte lengths, words are maximal runs of non-whitespace (``str.split``'s whitespace), and
a word is *continued* when the tokens containing its first and its last byte differ.

Metrics (docs/metrics.md, section Corpus metrics): fertility ``N / W`` (Rust et al. 2021; per
character for languages written without spaces), proportion of continued words (PCW), bytes
and characters per token, normalised sequence length against a reference tokenizer, premium
against a reference language on parallel text (Petrov et al. 2023), Rényi efficiency
(:mod:`.renyi`), vocabulary utilisation, UNK / byte-fallback / partial-character rates, and
encoding throughput.

Cost: the encoder's, plus O(bytes) numpy work and O(words · log tokens) for the spans.

>>> from tokforge import Tokenizer
>>> tok = Tokenizer.train(texts=["the cats sat"] * 50, vocab_size=262, pattern="gpt2")
>>> [tok.id_to_token(i) for i in tok.encode_ordinary("the cats sat")]
[b'the', b' cat', b's', b' ', b'sat']
>>> st = measure(tok, ["the cats sat"])
>>> st.tokens, st.words, st.continued_words, st.bytes_per_token
(5, 3, 1, 2.4)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import _core
from ..errors import InputError
from ..tokenizer import Tokenizer
from .qtok import token_table
from .renyi import DEFAULT_ALPHA, renyi_efficiency

__all__ = ["NO_SPACE_LANGUAGES", "VocabInfo", "CorpusStats", "measure", "premium", "nsl"]

#: Languages written without spaces between words: fertility is per character there.
NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "km", "my"})

#: Size of the parallel encoding chunks (characters). 1 MiB keeps both cores busy on corpora of a
#: few MB and the per-call overhead under 1% (measured on cl100k, 5 MB of English: 0.29 s).
CHUNK_CHARS = 1 << 20

_UNK_NAMES = ("<unk>", "[UNK]", "<|unk|>", "<UNK>")


@dataclass(frozen=True)
class VocabInfo:
    """Per-id tables of one tokenizer, computed once (O(vocabulary))."""

    lengths: np.ndarray  #: byte length of each id, uint32 (0 for ids that do not exist)
    flags: np.ndarray  #: uint8 bits: 1 = not whole UTF-8 characters, 2 = one non-ASCII byte
    special: np.ndarray  #: special token
    present: np.ndarray  #: id exists
    unk_id: Optional[int]

    @classmethod
    def of(cls, tokenizer: Any) -> VocabInfo:
        tok = Tokenizer.coerce(tokenizer)
        n = tok.vocab_size
        if n == 0:
            raise InputError("the tokenizer has no vocabulary")
        lengths = [0] * n
        flags = [0] * n
        special = [False] * n
        present = [False] * n
        unk = None
        for i, data, is_special in token_table(tok):
            if data is None:
                continue
            present[i] = True
            lengths[i] = len(data)
            special[i] = is_special
            if is_special and unk is None and data.decode("utf-8", "replace") in _UNK_NAMES:
                unk = i
            if data.isascii():
                continue
            if len(data) == 1:
                flags[i] = 3  # one non-ASCII byte: byte fallback, and not a whole character
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                flags[i] = 1
        return cls(
            np.array(lengths, dtype=np.uint32),
            np.array(flags, dtype=np.uint8),
            np.array(special, dtype=bool),
            np.array(present, dtype=bool),
            unk,
        )

    @property
    def regular_size(self) -> int:
        """Ids that exist and are not special (the ``|V|`` of vocabulary utilisation)."""
        return int(np.count_nonzero(self.present & ~self.special))


@dataclass(frozen=True)
class CorpusStats:
    """Counts from one (tokenizer, corpus) pass; the metrics are properties of it."""

    language: Optional[str]
    tokens: int  #: N
    words: int  #: W (maximal runs of non-whitespace)
    bytes: int  #: B (UTF-8)
    chars: int  #: C (code points)
    continued_words: int  #: words overlapped by >= 2 tokens
    partial_tokens: int  #: tokens that are not whole UTF-8 characters
    byte_fallback_tokens: int  #: one-byte tokens >= 0x80
    split_chars: int  #: characters whose bytes are split between tokens
    unk_tokens: int
    unk_id: Optional[int]
    type_counts: np.ndarray  #: occurrences of each id (length = vocabulary size)
    regular_vocab: int  #: non-special ids of the vocabulary
    special: np.ndarray  #: special ids (VocabInfo.special)
    line_tokens: np.ndarray  #: tokens per non-empty line (a token belongs to its first byte's line)
    encode_seconds: float
    seconds: float
    threads: Optional[int]

    @property
    def no_space(self) -> bool:
        """The language is written without spaces: fertility is per character."""
        return self.language in NO_SPACE_LANGUAGES

    @property
    def fertility(self) -> float:
        """Tokens per word (``N / W``); per character for :data:`NO_SPACE_LANGUAGES`."""
        denom = self.chars if self.no_space else self.words
        return self.tokens / denom if denom else float("nan")

    @property
    def pcw(self) -> float:
        """Proportion of continued words: words that two or more tokens overlap."""
        return self.continued_words / self.words if self.words else float("nan")

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens

    @property
    def types(self) -> int:
        return int(np.count_nonzero(self.type_counts))

    @property
    def vocab_utilisation(self) -> float:
        """Share of the regular (non-special) vocabulary seen in the corpus."""
        seen = np.count_nonzero((self.type_counts > 0) & ~self.special)
        return int(seen) / self.regular_vocab if self.regular_vocab else float("nan")

    @property
    def unk_rate(self) -> float:
        return self.unk_tokens / self.tokens

    @property
    def partial_char_rate(self) -> float:
        """Share of tokens that are not whole UTF-8 characters (qtok's unicode_flanks, applied
        to the stream)."""
        return self.partial_tokens / self.tokens

    @property
    def byte_fallback_rate(self) -> float:
        """Share of tokens that are a single non-ASCII byte."""
        return self.byte_fallback_tokens / self.tokens

    @property
    def split_char_rate(self) -> float:
        """Share of characters whose bytes are split between tokens (encoded through bytes)."""
        return self.split_chars / self.chars if self.chars else 0.0

    @property
    def throughput_mb_s(self) -> float:
        """Encoding throughput in MB (10^6 bytes) per second."""
        return self.bytes / 1e6 / self.encode_seconds if self.encode_seconds > 0 else float("inf")

    def renyi(self, *, alpha: float = DEFAULT_ALPHA, vocab: str = "observed") -> float:
        """Rényi efficiency; ``vocab="observed"`` (types seen, tokenization-scorer's default) or
        ``"vocabulary"`` (the tokenizer's regular vocabulary size)."""
        if vocab not in ("observed", "vocabulary"):
            raise InputError(f"vocab={vocab!r} is not 'observed' or 'vocabulary'")
        v = self.regular_vocab if vocab == "vocabulary" else None
        return renyi_efficiency(self.type_counts, alpha=alpha, vocab=v)


def premium(stats: CorpusStats, reference: CorpusStats) -> float:
    """Tokenization premium (Petrov et al. 2023) on parallel text: ``Σ N(s_L) / Σ N(s_ref)``,
    the corpus ratio; ≈ 1 means parity."""
    return stats.tokens / reference.tokens


def premium_mean(stats: CorpusStats, reference: CorpusStats) -> Optional[float]:
    """Mean per-line premium ``mean_s N(s_L) / N(s_ref)``; ``None`` unless both corpora have the
    same number of non-empty lines (then line i of one is taken as the translation of line i)."""
    a, b = stats.line_tokens, reference.line_tokens
    if len(a) != len(b) or len(a) == 0 or np.any(b == 0):
        return None
    return float(np.mean(a / b))


def nsl(stats: CorpusStats, reference: CorpusStats) -> float:
    """Normalised sequence length ``N_T / N_ref`` (same text, reference tokenizer)."""
    return stats.tokens / reference.tokens


def _utf8(texts: list[str]) -> tuple[bytes, list[str]]:
    """The documents' UTF-8, concatenated, and the documents (lone surrogates replaced by
    U+FFFD, as the encoder does)."""
    try:
        return "".join(texts).encode("utf-8"), texts
    except UnicodeEncodeError:
        texts = [t.encode("utf-16", "surrogatepass").decode("utf-16", "replace") for t in texts]
        return "".join(texts).encode("utf-8"), texts


def _chunks(tok: Tokenizer, doc: str, size: int) -> list[str]:
    """Cut ``doc`` where the encoding cannot depend on what follows (the model's stream cut), so
    that the chunks' ids concatenated equal the ids of the whole document."""
    out = []
    start = 0
    while len(doc) - start > size:
        cut = tok.model.stream_cut(doc[start : start + size])
        if cut <= 0:  # no safe point in this window: take a larger one
            cut = tok.model.stream_cut(doc[start : start + 4 * size]) or len(doc) - start
        out.append(doc[start : start + cut])
        start += cut
    if start < len(doc):
        out.append(doc[start:])
    return out


def measure(
    tokenizer: Any,
    texts: Sequence[str],
    *,
    language: Optional[str] = None,
    num_threads: Optional[int] = None,
    info: Optional[VocabInfo] = None,
) -> CorpusStats:
    """Encode ``texts`` (each one document) and count everything the corpus metrics need.

    Args:
        tokenizer: anything :meth:`Tokenizer.coerce` takes.
        texts: the documents of one language.
        language: ISO 639-1 code (zh, ja, th, lo, km, my switch fertility to per character).
        num_threads: encoder threads (default all cores).
        info: :class:`VocabInfo` of the tokenizer, when measuring many corpora with it.
    """
    tok = Tokenizer.coerce(tokenizer)
    if isinstance(texts, str):
        raise InputError("texts must be a list of documents, not one string")
    texts = [t for t in texts if t]
    if not texts:
        raise InputError("empty corpus: no text to measure")
    info = info if info is not None else VocabInfo.of(tok)
    t0 = time.perf_counter()
    data, texts = _utf8(texts)
    chunks: list[str] = []
    for t in texts:
        if len(t) <= CHUNK_CHARS:
            chunks.append(t)
        else:
            chunks.extend(_chunks(tok, t, CHUNK_CHARS))
    t1 = time.perf_counter()
    # the model's own batch call: the text is already valid, no special tokens are allowed
    ids, _ = tok.model.encode_batch_numpy(chunks, [], num_threads)
    encode_seconds = time.perf_counter() - t1
    n = len(ids)
    if n == 0:
        raise InputError("empty corpus: the text encodes to no tokens")
    c = _core.stream_counts(data, [len(t) for t in texts], ids, info.lengths, info.flags)
    counts = np.bincount(ids, minlength=len(info.lengths))
    return CorpusStats(
        language=language,
        tokens=n,
        words=c.words,
        bytes=len(data),
        chars=c.chars,
        continued_words=c.continued_words,
        partial_tokens=c.partial_tokens,
        byte_fallback_tokens=c.byte_fallback_tokens,
        split_chars=c.split_chars,
        unk_tokens=int(counts[info.unk_id]) if info.unk_id is not None else 0,
        unk_id=info.unk_id,
        type_counts=counts,
        regular_vocab=info.regular_size,
        special=info.special,
        line_tokens=c.line_tokens,
        encode_seconds=encode_seconds,
        seconds=time.perf_counter() - t0,
        threads=num_threads,
    )
