"""The :class:`Tokenizer` users hold: train, save, load, encode, decode; and the adapter that
turns foreign tokenizers (tiktoken, HF) into one."""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Callable, Optional, Union

from . import _core, lib_model
from .counts import PieceCounts, count_pieces
from .errors import InputError
from .inputs import PathLike, str_list, write_atomic
from .inputs import expand_files as expand_files  # re-exported for metrics, mixture
from .lib_model import LibConfig

ProgressCallback = Callable[[str, int, int], Optional[bool]]

__all__ = ["Tokenizer"]

#: foreign tokenizer objects adapted by :meth:`Tokenizer.coerce`: id -> (object, Tokenizer)
_ADAPTED: OrderedDict[int, tuple[object, Tokenizer]] = OrderedDict()

SpecialSet = Union[str, "set[str]", "frozenset[str]", Sequence[str]]


def _fix_surrogates(text: str) -> str:
    """Lone surrogates cannot be UTF-8: replace them by U+FFFD, as tiktoken does."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class Tokenizer:
    """The one tokenizer type of tokforge, whatever the model behind it: byte-level BPE
    (GPT-2 / GPT-4 / Llama-3 style: trained here, or loaded from ``tokenizer.json``,
    ``.tiktoken`` and tekken files) or LiB (Less-is-Better, :mod:`tokforge.lib_model`);
    :attr:`kind` tells which. It is also the adapter for foreign tokenizers:
    :meth:`coerce` turns a ``tiktoken.Encoding`` or a HF tokenizer into one, with identical
    ids, and every tokforge function that takes a tokenizer goes through it.

    Encoding follows tiktoken's special-token rules; the native model (:attr:`model`, a
    ``tokforge._core.TokenModel``) does the work with the GIL released.

    >>> tok = Tokenizer.train(texts=["low lower lowest " * 50], vocab_size=262, pattern="gpt2")
    >>> tok.kind, tok.vocab_size
    ('bpe', 262)
    >>> tok.decode(tok.encode_ordinary("lowest low"))
    'lowest low'
    """

    def __init__(self, model: _core.TokenModel, *, merge_counts: Sequence[int] = ()) -> None:
        if not isinstance(model, _core.TokenModel):
            raise InputError(
                f"Tokenizer(model) takes a tokforge._core.TokenModel, not {type(model).__name__}; "
                "use Tokenizer.coerce(...) for other tokenizers and files"
            )
        self._model = model
        self._merge_counts = list(merge_counts)

    # ---- training -------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        files: PathLike | Iterable[PathLike] | None = None,
        *,
        texts: Iterable[str] | None = None,
        vocab_size: int | None,
        algorithm: str = "bpe",
        lib: LibConfig | None = None,
        pattern: str = "cl100k",
        documents: str = "file",
        column: str = "text",
        special_tokens: Sequence[str] = (),
        min_frequency: int = 0,
        tie_order: str = "hf",
        errors: str = "strict",
        progress: ProgressCallback | None = None,
        num_threads: int | None = None,
    ) -> Tokenizer:
        """Learn a vocabulary: byte-level BPE (default) or LiB (``algorithm="lib"``).

        BPE training is :func:`tokforge.counts.count_pieces` followed by
        :meth:`train_from_counts` (docs/distributed.md §1); :mod:`tokforge.distributed` runs
        the counting on a Ray cluster with the same result.

        Args:
            files: text files (UTF-8) or directories of them, read in blocks; Parquet and JSONL
                shards (the ``column`` of strings; each row a document).
            texts: any iterable of strings (or of dicts, ``row[column]``, e.g. HF ``datasets``
                rows), consumed lazily in batches.
            vocab_size: final size, counting the 256 byte tokens and ``special_tokens``.
            pattern: ``"gpt2"``, ``"cl100k"``, ``"o200k"`` or any regex (``fancy-regex``
                syntax; text between matches becomes pieces too, as HF ``Split("Isolated")``).
            documents: ``"file"``: each file, row or string is one document (pieces never cross
                documents); ``"line"``: each line (with its ``\\n``) is one, as HF
                ``tokenizers``' ``train([file])`` reads files: use it to reproduce HF's merges
                from files exactly.
            column: the field of Parquet / JSONL shards and dict rows holding the text.
            special_tokens: given ids ``0..k-1`` in order (HF layout); never merged.
            min_frequency: stop when the best pair occurs fewer times.
            tie_order: ``"hf"`` (HF ``BpeTrainer``: smallest pair in GPT-2 alphabet order wins
                ties) or ``"bytes"`` (rustbpe: byte-value order).
            errors: invalid UTF-8 in files: ``"strict"`` (raise, naming file and byte offset),
                ``"replace"`` or ``"ignore"``.
            progress: called as ``progress(stage, done, total)`` with stage ``"count"`` (bytes
                read), ``"pairs"`` (once, ``0, 0``: indexing the pairs) or ``"merge"`` (merges
                done); return ``False`` or raise to stop.
            num_threads: worker threads (default: all cores). Results do not depend on it.
            algorithm: ``"bpe"`` or ``"lib"`` (Less-is-Better, see :mod:`tokforge.lib_model`:
                one lexicon of subwords, words and multiword units; ``lib`` holds its
                :class:`~tokforge.lib_model.LibConfig`; ``vocab_size=None`` keeps LiB's
                emergent lexicon; ``pattern``, ``documents``, ``column``, ``min_frequency``,
                ``tie_order`` and ``num_threads`` do not apply, LiB reads lines and trains on
                one thread).

        >>> tok = Tokenizer.train(texts=["of the cat, of the dog"] * 30, vocab_size=None,
        ...                       algorithm="lib", lib=LibConfig(steps=40))
        >>> tok.decode(tok.encode("of the bird")) == "of the bird"
        True
        """
        if files is None and texts is None:
            raise InputError("give files=... or texts=... to train on")
        if algorithm == "lib":
            model, _ = lib_model.train(
                files,
                texts=texts,
                vocab_size=vocab_size,
                special_tokens=special_tokens,
                config=lib,
                progress=progress,
            )
            return cls(model)
        if algorithm != "bpe":
            raise InputError(f"algorithm={algorithm!r} is not 'bpe' or 'lib'")
        if lib is not None:
            raise InputError("lib=LibConfig(...) applies to algorithm='lib' only")
        if vocab_size is None:
            raise InputError("BPE needs a vocab_size (None is for algorithm='lib')")
        # settings first: a bad vocab_size fails before the corpus is read
        _core.check_train_settings(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=str_list(special_tokens, "special_tokens"),
            tie_order=tie_order,
        )
        table = count_pieces(
            files,
            texts=texts,
            column=column,
            pattern=pattern,
            documents=documents,
            errors=errors,
            progress=progress,
            num_threads=num_threads,
        )
        return cls.train_from_counts(
            table,
            vocab_size=vocab_size,
            special_tokens=special_tokens,
            min_frequency=min_frequency,
            tie_order=tie_order,
            progress=progress,
            num_threads=num_threads,
        )

    @classmethod
    def train_from_counts(
        cls,
        counts: PieceCounts,
        *,
        vocab_size: int,
        special_tokens: Sequence[str] = (),
        min_frequency: int = 0,
        tie_order: str = "hf",
        progress: ProgressCallback | None = None,
        num_threads: int | None = None,
    ) -> Tokenizer:
        """Learn BPE merges from a piece-count table (:func:`tokforge.counts.count_pieces`,
        :meth:`PieceCounts.load <tokforge.counts.PieceCounts.load>`, or tables merged from many
        workers by :mod:`tokforge.distributed`); the pattern is the table's. Options as in
        :meth:`train`; the merges equal :meth:`train`'s on the same documents.

        >>> from tokforge.counts import count_pieces
        >>> table = count_pieces(texts=["low lower lowest " * 50], pattern="gpt2")
        >>> tok = Tokenizer.train_from_counts(table, vocab_size=262)
        >>> tok.merges == Tokenizer.train(texts=["low lower lowest " * 50], vocab_size=262,
        ...                               pattern="gpt2").merges
        True
        """
        if not isinstance(counts, PieceCounts):
            raise InputError(
                f"counts must be a tokforge.counts.PieceCounts, not {type(counts).__name__}"
            )
        model, merge_counts = _core.train_from_counts(
            counts.native,
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=str_list(special_tokens, "special_tokens"),
            tie_order=tie_order,
            progress=progress,
            num_threads=num_threads,
        )
        return cls(model, merge_counts=merge_counts)

    # ---- adapting other tokenizers --------------------------------------------------------
    @property
    def model(self) -> _core.TokenModel:
        """The native model behind this tokenizer (immutable, thread-safe): what tokforge's
        native functions take. Use the :class:`Tokenizer` methods for everything else."""
        return self._model

    @property
    def kind(self) -> str:
        """``"bpe"`` or ``"lib"``: the model family (BPE-only members such as :attr:`merges`
        raise :class:`InputError` on a LiB tokenizer)."""
        return self._model.kind

    @classmethod
    def from_ranks(
        cls,
        ranks: dict[bytes, int] | Iterable[tuple[bytes, int]],
        *,
        pattern: str,
        special_tokens: dict[str, int] | None = None,
    ) -> Tokenizer:
        """A tiktoken-style tokenizer from ``bytes -> rank`` (id = rank; whole pieces looked up
        first, any split of a token may merge with the token's rank as priority)."""
        items = ranks.items() if isinstance(ranks, dict) else ranks
        pairs = [(bytes(t), r) for t, r in items]
        specials = _special_dict(special_tokens or {})
        return cls(_core.TokenModel.from_ranks(pairs, pattern, specials))

    @classmethod
    def from_tiktoken_encoding(cls, encoding: Any) -> Tokenizer:
        """The same tokenizer as a ``tiktoken.Encoding`` (ranks, pattern and special tokens
        copied; ids identical)."""
        try:
            ranks = encoding._mergeable_ranks
            pattern = encoding._pat_str
            specials = encoding._special_tokens
        except AttributeError:
            raise InputError(
                f"{type(encoding).__name__} is not a tiktoken Encoding"
            ) from None
        return cls.from_ranks(ranks, pattern=pattern, special_tokens=specials)

    @classmethod
    def from_hf(cls, tokenizer: Any) -> Tokenizer:
        """The same tokenizer as a HF ``tokenizers.Tokenizer`` (or a ``transformers`` fast
        tokenizer), through its ``tokenizer.json``; parts tokforge cannot reproduce exactly
        raise :class:`FormatError` naming them."""
        backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
        to_str = getattr(backend, "to_str", None)
        if to_str is None:
            raise InputError(f"{type(tokenizer).__name__} is not a HF tokenizers.Tokenizer")
        return cls.from_json_str(to_str())

    @classmethod
    def from_json_str(cls, text: str) -> Tokenizer:
        """Load from JSON text: HF ``tokenizer.json`` or tokforge's LiB JSON (what
        :meth:`to_json` writes)."""
        return cls(_core.TokenModel.from_json_str(text))

    @classmethod
    def coerce(cls, obj: Any) -> Tokenizer:
        """A :class:`Tokenizer` for anything tokforge can use as one: a ``Tokenizer`` (returned
        as is), a path to a tokenizer file (see :meth:`from_file`), a ``tiktoken.Encoding``, a HF
        ``tokenizers.Tokenizer`` or ``transformers`` fast tokenizer. Every module that takes a
        tokenizer goes through here; adapted foreign objects are cached (8 most recent).

        >>> tok = Tokenizer.train(texts=["ab ab"], vocab_size=257, pattern="gpt2")
        >>> Tokenizer.coerce(tok) is tok
        True
        """
        if isinstance(obj, Tokenizer):
            return obj
        if isinstance(obj, _core.TokenModel):
            return cls(obj)
        if isinstance(getattr(obj, "tokenizer", None), Tokenizer):  # tokforge.tiktoken.Encoding
            return obj.tokenizer
        if isinstance(obj, (str, os.PathLike)):
            return cls.from_file(obj)
        key = id(obj)
        hit = _ADAPTED.get(key)
        if hit is not None and hit[0] is obj:
            _ADAPTED.move_to_end(key)
            return hit[1]
        if hasattr(obj, "_mergeable_ranks") and hasattr(obj, "_pat_str"):
            tok = cls.from_tiktoken_encoding(obj)
        elif hasattr(getattr(obj, "backend_tokenizer", obj), "to_str"):
            tok = cls.from_hf(obj)
        else:
            raise InputError(
                f"cannot use {type(obj).__name__} as a tokenizer: pass a tokforge Tokenizer, a "
                "path to a tokenizer file, a tiktoken Encoding or a HF tokenizers.Tokenizer"
            )
        _ADAPTED[key] = (obj, tok)
        while len(_ADAPTED) > 8:
            _ADAPTED.popitem(last=False)
        return tok

    # ---- files ----------------------------------------------------------------------------
    @classmethod
    def from_file(
        cls,
        path: PathLike,
        *,
        pattern: str | None = None,
        special_tokens: dict[str, int] | None = None,
    ) -> Tokenizer:
        """Load a tokenizer file, its format detected from the content: HF ``tokenizer.json``
        (byte-level or SentencePiece-style BPE), a tiktoken ``.tiktoken`` rank file, a Mistral
        tekken JSON file, a SentencePiece ``.model`` file (BPE), a llama.cpp GGUF file
        (:meth:`from_gguf`) or tokforge's LiB JSON.

        Rank files carry no pattern and no special tokens: give them (``pattern`` = a preset
        name or a regex, ``special_tokens`` = ``{text: id}``), or name the file like OpenAI's
        (``gpt2``, ``r50k_base``, ``cl100k_base``, ``o200k_base``) to use theirs. Ids of a rank
        file are its ranks; tekken ids are ``rank + num_special`` (special tokens first), as
        mistral-common's ``Tekkenizer`` numbers them. Giving ``pattern`` or ``special_tokens``
        for another format raises :class:`InputError`.
        """
        specials = None if special_tokens is None else _special_dict(special_tokens)
        return cls(_core.TokenModel.from_file(os.fspath(path), pattern, specials))

    @classmethod
    def from_tiktoken(
        cls,
        path: PathLike,
        *,
        pattern: str | None = None,
        special_tokens: dict[str, int] | None = None,
    ) -> Tokenizer:
        """Load a tiktoken ``.tiktoken`` rank file: :meth:`from_file` under tiktoken's name."""
        return cls.from_file(path, pattern=pattern, special_tokens=special_tokens)

    @classmethod
    def from_sentencepiece(cls, path: PathLike) -> Tokenizer:
        """Load a SentencePiece ``.model`` file of type BPE (Llama-2, Mistral), read without the
        ``sentencepiece`` package; ids equal ``SentencePieceProcessor.encode``. Unigram models
        and precompiled normalization maps raise :class:`FormatError` naming them. See
        docs/bpe.md §11."""
        return cls(_core.TokenModel.from_sentencepiece(os.fspath(path)))

    @classmethod
    def from_gguf(cls, path: PathLike) -> Tokenizer:
        """Load the tokenizer of a llama.cpp GGUF file, reading its metadata and never its
        tensors: ``tokenizer.ggml.model`` ``gpt2`` (byte-level BPE, split by llama.cpp's
        regexes for ``tokenizer.ggml.pre``), ``llama`` or ``gemma4`` (SentencePiece-style BPE). Control
        and user-defined tokens are special tokens; ``encode(text, allowed_special=USER_DEFINED)``
        gives llama.cpp's ``llama_tokenize(add_special=false, parse_special=false)``. WordPiece
        (``bert``), Unigram (``t5``) and unknown pre-tokenizer names raise :class:`FormatError`
        naming them. See docs/bpe.md §12.

        >>> import tempfile, pathlib
        >>> from tokforge.errors import FormatError
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "empty.gguf"
        >>> _ = path.write_bytes(b"GGUF" + bytes([3, 0, 0, 0]) + bytes(16))  # no keys at all
        >>> try:
        ...     Tokenizer.from_gguf(path)
        ... except FormatError as e:
        ...     print(str(e).split(": ", 1)[1])
        GGUF key "tokenizer.ggml.model": missing: the file has no tokenizer
        """
        return cls(_core.TokenModel.from_gguf(os.fspath(path)))

    @classmethod
    def from_tekken(cls, path: PathLike) -> Tokenizer:
        """Load a Mistral tekken JSON file (``mistral_common/data/tekken_*.json``):
        :meth:`from_file` under mistral-common's name."""
        return cls.from_file(path)

    def save_tiktoken(self, path: PathLike, *, overwrite: bool = False) -> Path:
        """Write the regular tokens as a ``.tiktoken`` rank file (rank = id; BPE only). The
        format has no room for the pattern or special tokens: keep :attr:`pattern` and
        :attr:`special_tokens` with it."""
        self._need_bpe("a .tiktoken rank file")
        return write_atomic(path, self._model.to_tiktoken(), overwrite)

    def to_json(self) -> str:
        """The tokenizer as HF ``tokenizer.json`` text (loadable by ``tokenizers``); a LiB
        tokenizer gives tokforge's LiB JSON (its segmentation has no ``tokenizer.json`` form)."""
        return self._model.to_json()

    def save(self, path: PathLike, *, overwrite: bool = False) -> Path:
        """Write :meth:`to_json` atomically (``tokenizer.json`` for BPE, tokforge's LiB JSON for
        LiB). An existing file is kept unless ``overwrite``."""
        return write_atomic(path, self.to_json(), overwrite)

    # ---- vocabulary -----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._model.vocab_size

    @property
    def pattern(self) -> str:
        """The pre-tokenization regex (LiB: lines and newlines, segmented independently)."""
        return self._model.pattern

    @property
    def pattern_name(self) -> str:
        """Short name of :attr:`pattern`: a preset (``gpt2``, ``cl100k``, ``o200k``),
        ``"custom"`` or ``"lib"``."""
        return self._model.pattern_name

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self._model.special_tokens)

    @property
    def merges(self) -> list[tuple[bytes, bytes]]:
        """Merges in priority order, as byte strings (BPE only)."""
        merges = self._model.merges
        if merges is None:
            self._need_bpe("a merge list")
        tb = self._model.token_bytes
        return [(tb(a), tb(b)) for a, b in merges or ()]

    def _need_bpe(self, what: str) -> None:
        """The one error for BPE-only members of a LiB tokenizer."""
        if self.kind != "bpe":
            raise InputError(
                f"{what} exists only for BPE tokenizers, and this is a {self.kind!r} tokenizer "
                "(LiB chooses units by larger-first segmentation, not merges); save() writes it "
                "as tokforge's LiB JSON"
            )

    @property
    def merge_counts(self) -> list[int]:
        """Pair frequency of each merge when it was learned (empty for loaded tokenizers)."""
        return list(self._merge_counts)

    @property
    def n_vocab(self) -> int:
        """tiktoken's name for :attr:`vocab_size`."""
        return self.vocab_size

    @property
    def eot_token(self) -> int | None:
        """Id of ``<|endoftext|>``, if the tokenizer has it."""
        return self.special_tokens.get("<|endoftext|>")

    def id_to_token(self, id: int) -> bytes:
        return self._model.token_bytes(id)

    def token_to_id(self, token: bytes | str) -> int | None:
        return self._model.token_id(token)

    def pretokenize(self, text: str) -> list[str]:
        """The pieces BPE works on."""
        return _core.pretokenize(self.pattern, text)

    # ---- encoding -------------------------------------------------------------------------
    def _special_ids(
        self, allowed_special: SpecialSet, disallowed_special: SpecialSet
    ) -> tuple[list[int], list[int]]:
        """tiktoken's special-token policy as ``(allowed, refused)`` ids: the specials the
        encoder turns into their ids, and those whose text it refuses (an :class:`InputError`
        naming the token and where it is; the encoder checks each text as it encodes it, on the
        batch's own threads)."""
        if _plain(allowed_special, disallowed_special):
            # the answer below without building the special-token dict, which cost several
            # times a short text's native call
            return [], []
        if disallowed_special == "all" and _empty(allowed_special):
            return [], self._all_special_ids
        specials = self.special_tokens
        if allowed_special == "all":
            allowed = set(specials)
        else:
            allowed = _special_set(allowed_special, "allowed_special")
        unknown = allowed - set(specials)
        if unknown:
            raise InputError(f"allowed_special names unknown special tokens: {sorted(unknown)}")
        if disallowed_special == "all":
            disallowed = set(specials) - allowed
        else:
            disallowed = _special_set(disallowed_special, "disallowed_special")
        refused = sorted(specials[t] for t in disallowed if t in specials)
        return sorted(specials[t] for t in allowed), refused

    @functools.cached_property
    def _all_special_ids(self) -> list[int]:
        """The ids of every special token: those refused by default."""
        return sorted(self.special_tokens.values())

    def encode(
        self,
        text: str,
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> list[int]:
        """Token ids of ``text`` with tiktoken's special-token rules: special-token text raises
        :class:`InputError` unless allowed (then it becomes its id) or not disallowed (then it
        is plain text).

        >>> tok = Tokenizer.train(texts=["a b"], vocab_size=258, special_tokens=["<|eot|>"])
        >>> tok.encode("a<|eot|>", allowed_special="all")[-1]
        0
        """
        if _plain(allowed_special, disallowed_special):
            return self.encode_ordinary(text)
        return self._encode_one(self._model.encode, text, allowed_special, disallowed_special)

    def encode_numpy(
        self,
        text: str,
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> Any:  # a numpy uint32 array (numpy is imported by the native module)
        """:meth:`encode` as a ``uint32`` numpy array: no Python int per token (faster than the
        list). The array is numpy's own, the ids copied in once from a buffer the encoder keeps
        per thread (a text of 1 MiB or more: the encoder's own buffer, not a copy).

        >>> tok = Tokenizer.train(texts=["a b"], vocab_size=258)
        >>> tok.encode_numpy("a b", disallowed_special=()).tolist() == tok.encode_ordinary("a b")
        True
        """
        if _plain(allowed_special, disallowed_special):
            # `disallowed_special=()`, the common call for plain text: no special-token list
            # to pass (a short text's call is a few hundred nanoseconds)
            try:
                return self._model.encode_ordinary_numpy(text)
            except UnicodeEncodeError:
                return self._model.encode_ordinary_numpy(_fix_surrogates(text))
        return self._encode_one(
            self._model.encode_numpy, text, allowed_special, disallowed_special
        )

    def _encode_one(
        self,
        native: Callable[[str, Any, Any], Any],
        text: str,
        allowed_special: SpecialSet,
        disallowed_special: SpecialSet,
    ) -> Any:
        """``native(text, allowed ids, refused ids)``, retried once with lone surrogates replaced
        when the native call refuses them (the special-token check runs on the text that is
        encoded)."""
        allowed, refused = self._special_ids(allowed_special, disallowed_special)
        try:
            return native(text, allowed, refused)
        except UnicodeEncodeError:
            return native(_fix_surrogates(text), allowed, refused)

    def cache_info(self) -> dict[str, int] | None:
        """Size of the encoder's piece table (docs/bpe.md §13), summed over its per-thread
        tables: ``tables``, ``entries`` (pieces stored), ``seed`` (short tokens preloaded per
        table), ``slots``, ``bytes`` and ``limit`` (most entries per table); ``None`` for a
        model without one (LiB, SentencePiece-style). A model's first batch on several threads
        merges its threads' tables into one after it returns, on a thread of its own; this
        (like the next encode) waits for that merge.

        >>> tok = Tokenizer.train(texts=["a b"], vocab_size=258)
        >>> _ = tok.encode_ordinary("a b a")
        >>> info = tok.cache_info()
        >>> info["tables"], info["entries"] >= info["seed"] > 0
        (1, True)
        """
        return self._model.cache_info()

    def set_cache_limit(self, entries: int) -> None:
        """Most pieces one table of the encoder may hold (default 786,432: about 32 MiB per
        encoding thread; 0 turns the table off). Memory and speed change, ids never do."""
        self._model.set_cache_limit(entries)

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text``; special-token text is encoded as plain text.

        Lists of ids (here and from :meth:`encode` and :meth:`encode_batch`) hold only ints, so
        they are not tracked by the cycle collector (``gc.is_tracked`` is false): a collection
        does not walk the ids of every list kept. A cycle made later through such a list is
        not collected."""
        try:
            return self._model.encode_ordinary(text)
        except UnicodeEncodeError:
            return self._model.encode_ordinary(_fix_surrogates(text))

    def encode_batch(
        self,
        texts: Sequence[str],
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
        num_threads: int | None = None,
    ) -> list[list[int]]:
        """:meth:`encode` of many texts, in parallel with the GIL released.

        ``num_threads`` threads encode (default: one per core). With two or more, the calling
        thread is one of them: between the texts under 1 MiB it encodes itself, it turns the
        finished ones into lists (holding the GIL only for that).
        """
        texts = str_list(texts, "texts")
        allowed, refused = self._special_ids(allowed_special, disallowed_special)
        try:
            return self._model.encode_batch(texts, allowed, num_threads, refused)
        except UnicodeEncodeError:  # a lone surrogate somewhere: rare, so fixed only then
            texts = [_fix_surrogates(t) for t in texts]
            return self._model.encode_batch(texts, allowed, num_threads, refused)

    def encode_batch_numpy(
        self,
        texts: Sequence[str],
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
        num_threads: int | None = None,
    ) -> tuple[Any, Any]:
        """Encode many texts into one flat ``uint32`` array and ``int64`` offsets, so that
        ``ids[offsets[i]:offsets[i + 1]]`` are the ids of ``texts[i]``. No Python object is made
        per token: made for feeding training pipelines.

        A loop over batches does not ask the system for fresh memory on every call: when numpy
        frees a flat array of 1-256 MiB its memory is kept (at most 512 MiB of it, the oldest
        freed first) for the next call on texts of about the same size (an array is given room
        for one id per byte of text, and only the pages its ids fill are written).
        :func:`tokforge.batch_output_info` reports that memory and
        :func:`tokforge.release_batch_output` frees it."""
        texts = str_list(texts, "texts")
        allowed, refused = self._special_ids(allowed_special, disallowed_special)
        try:
            return self._model.encode_batch_numpy(texts, allowed, num_threads, refused)
        except UnicodeEncodeError:  # a lone surrogate somewhere: rare, so fixed only then
            texts = [_fix_surrogates(t) for t in texts]
            return self._model.encode_batch_numpy(texts, allowed, num_threads, refused)

    def encode_with_offsets(
        self,
        text: str,
        *,
        unit: str = "bytes",
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
    ) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and the ``[start, end)`` span of each token in ``text``.

        ``unit="bytes"`` gives offsets into ``text.encode()``; ``unit="chars"`` into the str. A
        token that ends inside a multi-byte character ends after that character, and one that
        starts inside it starts at it (so spans of adjacent tokens may share a character).
        """
        if unit not in ("bytes", "chars"):
            raise InputError(f"unit={unit!r} is not 'bytes' or 'chars'")
        text = _fix_surrogates(text)
        allowed, refused = self._special_ids(allowed_special, disallowed_special)
        ids, spans = self._model.encode_with_spans(text, allowed, refused)
        if unit == "chars":
            data = text.encode("utf-8")
            # char index of every byte offset (continuation bytes belong to their character)
            char_at = [0] * (len(data) + 1)
            c = -1
            for i, b in enumerate(data):
                if b & 0xC0 != 0x80:
                    c += 1
                char_at[i] = c
            char_at[len(data)] = len(text)
            spans = [(char_at[s], char_at[e - 1] + 1 if e > s else char_at[s]) for s, e in spans]
        return ids, spans

    def encode_stream(
        self,
        chunks: Iterable[str],
        *,
        allowed_special: SpecialSet = frozenset(),
        min_chunk: int = 1 << 16,
    ) -> Iterator[list[int]]:
        """Encode text that arrives in pieces (lines of a large file, a socket...). The ids,
        concatenated, equal ``encode(''.join(chunks))``: text is held back until a point where
        pre-tokenization cannot depend on what follows.

        Memory is bounded (about ``min_chunk`` characters plus the longest run without such a
        point) for the ``gpt2``, ``cl100k`` and ``o200k`` patterns, including a regex spelled
        exactly like one of them, and for LiB tokenizers (which cut after a newline). A custom
        regex has no provably safe cut (look-arounds, matches such as ``.+`` that span
        anything), so with one the whole text is held and encoded at the end.

        Special tokens in ``allowed_special`` are recognised; other special-token text is
        encoded as plain text.

        >>> tok = Tokenizer.train(texts=["the cat sat on the mat"] * 9, vocab_size=270)
        >>> chunks = ["the c", "at sat ", "on the", " mat"]
        >>> [i for ids in tok.encode_stream(chunks, min_chunk=4) for i in ids] == tok.encode(
        ...     "".join(chunks))
        True
        """
        allowed, _ = self._special_ids(allowed_special, ())
        buf = ""
        for chunk in chunks:
            buf += chunk
            if len(buf) < min_chunk:
                continue
            cut = self._stream_cut(buf, allowed)
            if cut:
                yield self._model.encode(_fix_surrogates(buf[:cut]), allowed)
                buf = buf[cut:]
        if buf:
            yield self._model.encode(_fix_surrogates(buf), allowed)

    def _stream_cut(self, buf: str, allowed: list[int]) -> int:
        """Characters of ``buf`` that can be encoded now with the ids of the whole stream.

        Text is split at allowed special tokens before pre-tokenization, so the end of a special
        token is always a safe cut, and inside the text after it the pre-tokenizer's own rule
        applies. A special token that starts at or before ``len(buf) - longest`` cannot grow or
        be replaced by one that reaches past the buffer; later text may still begin one, so it
        is held back."""
        if not allowed:
            return self._model.stream_cut(buf)
        length = {i: len(t) for t, i in self.special_tokens.items() if i in allowed}
        limit = len(buf) - max(length.values()) + 1  # a match starting before this is final
        seg_start = pos = 0
        while pos < limit:
            hit = self._model.find_special(buf[pos:], allowed)
            if hit is None or pos + hit[0] >= limit:
                break
            pos = seg_start = pos + hit[0] + length[hit[1]]
        if limit <= seg_start:
            return seg_start
        return seg_start + self._model.stream_cut(buf[seg_start:limit])

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """Bytes of ``ids`` (special tokens give their text)."""
        return self._model.decode_bytes(list(ids))

    def decode(self, ids: Sequence[int], errors: str = "replace") -> str:
        """Text of ``ids``; ``errors`` applies to invalid UTF-8 (``strict|replace|ignore``)."""
        if errors not in ("strict", "replace", "ignore", "backslashreplace"):
            raise InputError(
                f"errors={errors!r} is not strict, replace, ignore or backslashreplace"
            )
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def decode_batch(self, batch: Sequence[Sequence[int]], errors: str = "replace") -> list[str]:
        return [self.decode(ids, errors) for ids in batch]

    def __repr__(self) -> str:
        return (
            f"Tokenizer(kind={self.kind!r}, vocab_size={self.vocab_size}, "
            f"pattern={self.pattern_name!r})"
        )


# Collection types `_plain` may answer without a look when empty (a str is refused, so it is
# not one of them).
_EMPTY_OK = (frozenset, set, tuple, list)


def _empty(special: SpecialSet) -> bool:
    """Whether ``special`` is an empty collection, known without a look at its items."""
    return type(special) in _EMPTY_OK and not special


def _plain(allowed_special: SpecialSet, disallowed_special: SpecialSet) -> bool:
    """Whether no special token is allowed and none is to be checked for (``allowed_special``
    empty, ``disallowed_special=()``): the text is encoded as ordinary text."""
    return _empty(allowed_special) and _empty(disallowed_special)


def _special_set(value: SpecialSet, name: str) -> set[str]:
    """``allowed_special`` / ``disallowed_special`` other than ``"all"``: a collection of special
    token texts. A str is refused (``set("<s>")`` would be its characters)."""
    return set(str_list(value, name))


def _special_dict(value: dict[str, int]) -> list[tuple[str, int]]:
    """``special_tokens={text: id}`` as sorted pairs (the ids are checked natively)."""
    if not isinstance(value, dict):
        raise InputError(
            f"special_tokens must be a dict {{text: id}}, not {type(value).__name__}"
        )
    return sorted(zip(str_list(value.keys(), "special_tokens"), value.values()))
