"""The :class:`Tokenizer` users hold: train, save, load, encode, decode."""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Union

from . import _core
from .errors import FormatError, InputError

if TYPE_CHECKING:
    from .lib_model import LibConfig

PathLike = Union[str, "os.PathLike[str]"]
ProgressCallback = Callable[[str, int, int], Optional[bool]]

__all__ = ["Tokenizer", "expand_files", "TIKTOKEN_PRESETS"]

#: Pre-tokenizer and special tokens of OpenAI's rank files, as ``tiktoken_ext.openai_public``
#: defines them (the files themselves carry neither). Keyed by the file's stem.
TIKTOKEN_PRESETS: dict[str, tuple[str, dict[str, int]]] = {
    "gpt2": ("gpt2", {"<|endoftext|>": 50256}),
    "r50k_base": ("gpt2", {"<|endoftext|>": 50256}),
    "cl100k_base": (
        "cl100k",
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
    "o200k_base": ("o200k", {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
}

#: Special tokens of Mistral's tekken files that do not list their own (mistral-common's
#: ``Tekkenizer.DEPRECATED_SPECIAL_TOKENS``); the remaining ids are ``<SPECIAL_{id}>``.
TEKKEN_LEGACY_SPECIALS = (
    "<unk> <s> </s> [INST] [/INST] [AVAILABLE_TOOLS] [/AVAILABLE_TOOLS] [TOOL_RESULTS] "
    "[/TOOL_RESULTS] [TOOL_CALLS] [IMG] <pad> [IMG_BREAK] [IMG_END] [PREFIX] [MIDDLE] [SUFFIX] "
    "[SYSTEM_PROMPT] [/SYSTEM_PROMPT] [TOOL_CONTENT]"
).split()

#: foreign tokenizer objects adapted by :meth:`Tokenizer.coerce`: id -> (object, Tokenizer)
_ADAPTED: OrderedDict[int, tuple[object, Tokenizer]] = OrderedDict()

SpecialSet = Union[str, "set[str]", "frozenset[str]", Sequence[str]]


def _fix_surrogates(text: str) -> str:
    """Lone surrogates cannot be UTF-8: replace them by U+FFFD, as tiktoken does."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def expand_files(files: PathLike | Iterable[PathLike]) -> list[Path]:
    """Paths from a path or an iterable of paths; a directory stands for its ``*.txt`` files
    (recursively, sorted). Missing paths raise :class:`FileNotFoundError` before any work."""
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    out: list[Path] = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.txt") if q.is_file())
            if not found:
                raise InputError(f"{p}: the directory has no *.txt files")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return out


class Tokenizer:
    """A byte-level BPE tokenizer (GPT-2 / GPT-4 / Llama-3 style).

    >>> tok = Tokenizer.train(texts=["low lower lowest " * 50], vocab_size=262, pattern="gpt2")
    >>> tok.vocab_size
    262
    >>> tok.decode(tok.encode_ordinary("lowest low"))
    'lowest low'
    """

    def __init__(
        self, model: _core.BpeModel | _core.LibModel, *, merge_counts: Sequence[int] = ()
    ) -> None:
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
        special_tokens: Sequence[str] = (),
        min_frequency: int = 0,
        tie_order: str = "hf",
        errors: str = "strict",
        progress: ProgressCallback | None = None,
        num_threads: int | None = None,
    ) -> Tokenizer:
        """Learn a byte-level BPE vocabulary.

        Args:
            files: text files (UTF-8) or directories of ``*.txt`` files, read in blocks; each
                file is one document.
            texts: any iterable of strings, consumed lazily in batches; each string is one
                document (pieces never cross documents).
            vocab_size: final size, counting the 256 byte tokens and ``special_tokens``.
            pattern: ``"gpt2"``, ``"cl100k"``, ``"o200k"`` or any regex (``fancy-regex``
                syntax; text between matches becomes pieces too, as HF ``Split("Isolated")``).
            special_tokens: given ids ``0..k-1`` in order (HF layout); never merged.
            min_frequency: stop when the best pair occurs fewer times.
            tie_order: ``"hf"`` (HF ``BpeTrainer``: smallest pair in GPT-2 alphabet order wins
                ties) or ``"bytes"`` (rustbpe: byte-value order).
            errors: invalid UTF-8 in files: ``"strict"`` (raise, naming file and byte offset),
                ``"replace"`` or ``"ignore"``.
            progress: called as ``progress(stage, done, total)`` with stage ``"count"`` (bytes
                read) or ``"merge"`` (merges done); return ``False`` or raise to stop.
            num_threads: worker threads (default: all cores). Results do not depend on it.
            algorithm: ``"bpe"`` or ``"lib"`` (Less-is-Better, see :mod:`tokforge.lib_model`:
                one lexicon of subwords, words and multiword units; ``lib`` holds its
                :class:`~tokforge.lib_model.LibConfig`; ``vocab_size=None`` keeps LiB's
                emergent lexicon; ``pattern``, ``min_frequency``, ``tie_order`` and
                ``num_threads`` do not apply, LiB reads lines and trains on one thread).

        >>> from tokforge.lib_model import LibConfig
        >>> tok = Tokenizer.train(texts=["of the cat, of the dog"] * 30, vocab_size=None,
        ...                       algorithm="lib", lib=LibConfig(steps=40))
        >>> tok.decode(tok.encode("of the bird")) == "of the bird"
        True
        """
        if files is None and texts is None:
            raise InputError("give files=... or texts=... to train on")
        if algorithm == "lib":
            from .lib_model import train as train_lib

            tok, _ = train_lib(
                files,
                texts=texts,
                vocab_size=vocab_size,
                special_tokens=special_tokens,
                config=lib,
                progress=progress,
            )
            return tok
        if algorithm != "bpe":
            raise InputError(f"algorithm={algorithm!r} is not 'bpe' or 'lib'")
        if lib is not None:
            raise InputError("lib=LibConfig(...) applies to algorithm='lib' only")
        if vocab_size is None:
            raise InputError("BPE needs a vocab_size (None is for algorithm='lib')")
        paths = [str(p) for p in expand_files(files)] if files is not None else None
        model, counts = _core.train_bpe(
            files=paths,
            texts=texts,
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(special_tokens),
            pattern=pattern,
            tie_order=tie_order,
            errors=errors,
            progress=progress,
            num_threads=num_threads,
        )
        return cls(model, merge_counts=counts)

    # ---- adapting other tokenizers --------------------------------------------------------
    @property
    def model(self) -> _core.BpeModel | _core.LibModel:
        """The native model behind this tokenizer (immutable, thread-safe): what tokforge's
        native functions take. Use the :class:`Tokenizer` methods for everything else."""
        return self._model

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
        pairs = [(bytes(t), int(r)) for t, r in items]
        specials = sorted((str(s), int(i)) for s, i in (special_tokens or {}).items())
        return cls(_core.BpeModel.from_ranks(pairs, pattern, specials))

    @classmethod
    def from_tiktoken_encoding(cls, encoding) -> Tokenizer:
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
    def from_hf(cls, tokenizer) -> Tokenizer:
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
        """Load from ``tokenizer.json`` text."""
        return cls(_core.BpeModel.from_json_str(text))

    @classmethod
    def coerce(cls, obj) -> Tokenizer:
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
        if isinstance(obj, (_core.BpeModel, _core.LibModel)):
            return cls(obj)
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
        """Load a tokenizer file, detecting its format: HF ``tokenizer.json`` (a JSON object) or a
        tiktoken rank file (``base64 rank`` lines; see :meth:`from_tiktoken`)."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such file")
        with p.open("rb") as fh:
            head = fh.read(256).lstrip()
        if head.startswith(b"{") and b'"tokforge-lib"' in head:
            return cls(_core.LibModel.from_json_file(str(p)))
        if head.startswith(b"{") and b'"config"' in head:
            return cls.from_tekken(p)
        if head.startswith(b"{"):
            if pattern is not None or special_tokens is not None:
                raise InputError(
                    "pattern/special_tokens apply to .tiktoken files, not tokenizer.json"
                )
            return cls(_core.BpeModel.from_json_file(str(p)))
        first = head.split(b"\n", 1)[0].split(b" ")
        if len(first) == 2 and first[1].strip().isdigit():
            return cls.from_tiktoken(p, pattern=pattern, special_tokens=special_tokens)
        raise FormatError(f"{p}: neither a tokenizer.json nor a .tiktoken rank file")

    @classmethod
    def from_tiktoken(
        cls,
        path: PathLike,
        *,
        pattern: str | None = None,
        special_tokens: dict[str, int] | None = None,
    ) -> Tokenizer:
        """Load a tiktoken ``.tiktoken`` rank file (ids = ranks; tiktoken's encoding rules).

        The file has no pattern and no special tokens: give them, or name the file like
        OpenAI's (``gpt2``, ``r50k_base``, ``cl100k_base``, ``o200k_base``) to use theirs.
        """
        p = Path(path)
        preset = TIKTOKEN_PRESETS.get(p.stem.split(".")[0])
        if pattern is None:
            if preset is None:
                raise InputError(
                    f"{p}: a .tiktoken file carries no pre-tokenization pattern; pass pattern="
                    "'gpt2' | 'cl100k' | 'o200k' | REGEX"
                )
            pattern = preset[0]
        if special_tokens is None:
            special_tokens = preset[1] if preset is not None else {}
        model = _core.BpeModel.from_tiktoken_file(str(p), pattern, sorted(special_tokens.items()))
        return cls(model)

    @classmethod
    def from_tekken(cls, path: PathLike) -> Tokenizer:
        """Load a Mistral "tekken" JSON file (``mistral_common/data/tekken_*.json``): tiktoken
        ranks with special tokens in front, so regular ids are ``rank + num_special``, as
        mistral-common's ``Tekkenizer`` numbers them."""
        import base64
        import json

        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            cfg = doc["config"]
            n_special = int(cfg["default_num_special_tokens"])
            n_regular = int(cfg["default_vocab_size"]) - n_special
            vocab = doc["vocab"][:n_regular]
            ranks = [(base64.b64decode(t["token_bytes"]), t["rank"] + n_special) for t in vocab]
            pattern = cfg["pattern"]
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"{p}: not a tekken tokenizer file ({e!r})") from None
        listed = doc.get("special_tokens")
        if listed:
            names = {int(t["rank"]): t["token_str"] for t in listed}
        else:
            names = dict(enumerate(TEKKEN_LEGACY_SPECIALS))
        specials = [(names.get(i, f"<SPECIAL_{i}>"), i) for i in range(n_special)]
        return cls(_core.BpeModel.from_ranks(ranks, pattern, specials))

    def save_tiktoken(self, path: PathLike, *, overwrite: bool = False) -> Path:
        """Write the regular tokens as a ``.tiktoken`` rank file (rank = id). The format has
        no room for the pattern or special tokens: keep :attr:`pattern` and
        :attr:`special_tokens` with it."""
        return _write_atomic(Path(path), self._model.to_tiktoken(), overwrite)

    def to_json(self) -> str:
        """The tokenizer as HF ``tokenizer.json`` text (loadable by ``tokenizers``); a LiB
        tokenizer gives tokforge's LiB JSON (its segmentation has no ``tokenizer.json`` form)."""
        return self._model.to_json()

    def save(self, path: PathLike, *, overwrite: bool = False) -> Path:
        """Write ``tokenizer.json`` atomically. An existing file is kept unless ``overwrite``."""
        return _write_atomic(Path(path), self.to_json(), overwrite)

    # ---- vocabulary -----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._model.vocab_size

    @property
    def pattern(self) -> str:
        """The pre-tokenization regex."""
        return self._model.pattern

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self._model.special_tokens)

    @property
    def merges(self) -> list[tuple[bytes, bytes]]:
        """Merges in priority order, as byte strings."""
        tb = self._model.token_bytes
        return [(tb(a), tb(b)) for a, b in self._model.merges]

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
    def _allowed_ids(self, allowed_special: SpecialSet, disallowed_special: SpecialSet, texts):
        """tiktoken's special-token policy: ids allowed in the text; raise on disallowed ones."""
        specials = self.special_tokens
        allowed = set(specials) if allowed_special == "all" else set(allowed_special)
        unknown = allowed - set(specials)
        if unknown:
            raise InputError(f"allowed_special names unknown special tokens: {sorted(unknown)}")
        if disallowed_special == "all":
            disallowed = set(specials) - allowed
        else:
            disallowed = set(disallowed_special)
        if disallowed:
            ids = [specials[t] for t in sorted(disallowed) if t in specials]
            for i, text in enumerate(texts):
                hit = self._model.find_special(text, ids)
                if hit is not None:
                    token = self._model.token_bytes(hit[1]).decode("utf-8", "replace")
                    where = f"text {i}, " if len(texts) > 1 else ""
                    raise InputError(
                        f"encountered the special token {token!r} ({where}character {hit[0]}), "
                        "which is disallowed. Pass allowed_special={...} or 'all' to encode it as "
                        "a special token, or disallowed_special=() to encode it as plain text."
                    )
        return sorted(specials[t] for t in allowed)

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
        try:
            ids = self._allowed_ids(allowed_special, disallowed_special, [text])
            return self._model.encode(text, ids)
        except UnicodeEncodeError:
            return self.encode(
                _fix_surrogates(text),
                allowed_special=allowed_special,
                disallowed_special=disallowed_special,
            )

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text``; special-token text is encoded as plain text."""
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
        """:meth:`encode` of many texts, in parallel with the GIL released."""
        texts = [_fix_surrogates(t) for t in texts]
        ids = self._allowed_ids(allowed_special, disallowed_special, texts)
        return self._model.encode_batch(texts, ids, num_threads)

    def encode_batch_numpy(
        self,
        texts: Sequence[str],
        *,
        allowed_special: SpecialSet = frozenset(),
        disallowed_special: SpecialSet = "all",
        num_threads: int | None = None,
    ):
        """Encode many texts into one flat ``uint32`` array and ``int64`` offsets, so that
        ``ids[offsets[i]:offsets[i + 1]]`` are the ids of ``texts[i]``. No Python object is made
        per token: made for feeding training pipelines."""
        texts = [_fix_surrogates(t) for t in texts]
        ids = self._allowed_ids(allowed_special, disallowed_special, texts)
        return self._model.encode_batch_numpy(texts, ids, num_threads)

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
        allowed = self._allowed_ids(allowed_special, disallowed_special, [text])
        ids, spans = self._model.encode_with_spans(text, allowed)
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
        allowed = self._allowed_ids(allowed_special, (), [])
        longest = max((len(t) for t in self.special_tokens), default=1)
        buf = ""
        for chunk in chunks:
            buf += chunk
            if len(buf) < min_chunk:
                continue
            cut = self._model.stream_cut(buf)
            # never cut through a special token: hold back the last few characters too
            if allowed:
                cut = min(cut, max(0, len(buf) - longest))
                cut = self._model.stream_cut(buf[:cut]) if cut else 0
            if cut:
                yield self._model.encode(_fix_surrogates(buf[:cut]), allowed)
                buf = buf[cut:]
        if buf:
            yield self._model.encode(_fix_surrogates(buf), allowed)

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
        return f"Tokenizer(vocab_size={self.vocab_size}, pattern={self._model.pattern_name!r})"


def _write_atomic(p: Path, text: str, overwrite: bool) -> Path:
    """Write ``text`` to ``p`` via a temporary file; never clobber ``p`` unless ``overwrite``."""
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=p.name + ".", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
