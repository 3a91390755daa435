"""``tiktoken.Encoding`` on tokforge's native BPE: same ids, same special-token rules, same
exceptions; the encoding work is done by :class:`tokforge.Tokenizer`'s native model.

This class owns only tiktoken's argument handling: the special-token policy (which text is
refused, which becomes a special id), tiktoken's error types and messages, and the "unstable
tail" logic of :meth:`Encoding.encode_with_unstable`, built on the public tokenizer methods.

>>> ranks = {bytes([b]): b for b in range(256)}
>>> ranks.update({b"ab": 256, b"abab": 257})
>>> enc = Encoding("toy", pat_str=r"\\S+|\\s+", mergeable_ranks=ranks,
...                special_tokens={"<|eot|>": 258})
>>> enc.encode("abab ab<|eot|>", allowed_special="all")
[257, 32, 256, 258]
>>> enc.decode([257, 32, 256])
'abab ab'
"""

from __future__ import annotations

import bisect
import functools
import os
import re
from collections.abc import Collection, Iterable, Sequence, Set
from typing import TYPE_CHECKING, Any, Callable, Literal, NoReturn, Optional, Union

from ..tokenizer import Tokenizer

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["Encoding", "raise_disallowed_special_token"]

AllowedSpecial = Union[Literal["all"], Set[str]]
DisallowedSpecial = Union[Literal["all"], Collection[str]]

#: Characters with the Unicode ``White_Space`` property (Rust's ``char::is_whitespace``, which
#: tiktoken's unstable-token logic uses; Python's ``str.isspace`` also accepts U+001C..U+001F).
_WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

#: The largest token id tiktoken can take (ids are ``u32``).
_MAX_ID = 2**32 - 1

#: At most this many special-token sets keep a compiled check (as tiktoken's lru_cache).
_POLICY_CACHE = 128


def _fix_surrogates(text: str) -> str:
    """Pair up surrogates and replace lone ones by U+FFFD, as tiktoken does before encoding."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _threads(num_threads: Optional[int]) -> Optional[int]:
    """Worker count for a batch call: tiktoken's thread-pool limit, capped at the cores (more
    threads than cores only add switching; results never depend on it)."""
    if num_threads is None:
        return None
    if num_threads <= 0:
        raise ValueError("max_workers must be greater than 0")
    return min(num_threads, os.cpu_count() or 1)


def raise_disallowed_special_token(token: str) -> NoReturn:
    """Raise tiktoken's :class:`ValueError` for special-token text that is not allowed."""
    raise ValueError(
        f"Encountered text corresponding to disallowed special token {token!r}.\n"
        "If you want this text to be encoded as a special token, "
        f"pass it to `allowed_special`, e.g. `allowed_special={{{token!r}, ...}}`.\n"
        "If you want this text to be encoded as normal text, disable the check for this token "
        f"by passing `disallowed_special=(enc.special_tokens_set - {{{token!r}}})`.\n"
        "To disable this check for all special tokens, pass `disallowed_special=()`.\n"
    )


def _last_char(data: bytes) -> tuple[Optional[str], int]:
    """The last UTF-8 character of ``data`` and its length, or ``(None, 1)`` if ``data`` does
    not end with a whole valid character."""
    for k in range(1, min(4, len(data)) + 1):
        if data[-k] & 0xC0 != 0x80:
            try:
                ch = data[-k:].decode("utf-8")
            except UnicodeDecodeError:
                return None, 1
            return (ch, k) if len(ch) == 1 else (None, 1)
    return None, 1


class Encoding:
    """A tiktoken encoding: byte-level BPE over ``mergeable_ranks`` (token bytes -> rank = id),
    text split by the regex ``pat_str``, plus ``special_tokens`` (text -> id).

    Args:
        name: the encoding's name (pickling refers to registered encodings by it).
        pat_str: the pre-tokenization regex.
        mergeable_ranks: token bytes -> rank; the rank is the id and the merge priority.
        special_tokens: special-token text -> id.
        explicit_n_vocab: if given, the number of tokens, checked (as tiktoken, with
            ``assert``).
    """

    def __init__(
        self,
        name: str,
        *,
        pat_str: str,
        mergeable_ranks: dict[bytes, int],
        special_tokens: dict[str, int],
        explicit_n_vocab: Optional[int] = None,
    ) -> None:
        self.name = name
        self._pat_str = pat_str
        self._mergeable_ranks = mergeable_ranks
        self._special_tokens = special_tokens
        self.max_token_value = max(
            max(mergeable_ranks.values()), max(special_tokens.values(), default=0)
        )
        if explicit_n_vocab:
            assert len(mergeable_ranks) + len(special_tokens) == explicit_n_vocab
            assert self.max_token_value == explicit_n_vocab - 1
        self._special_token_values = set(special_tokens.values())
        self._specials = dict(special_tokens)
        # Two names may share an id (o200k_harmony: <|endofprompt|> and <|reserved_200018|>).
        # The native model knows the first name of each id (the one tiktoken decodes to); the
        # other names, aliases, are matched here.
        self._special_names: dict[int, str] = {}
        for text, i in self._specials.items():
            self._special_names.setdefault(i, text)
        self._aliases = frozenset(
            t for t, i in self._specials.items() if self._special_names[i] != t
        )
        self._all_special_ids = sorted(self._special_token_values)
        self._tokenizer = Tokenizer.from_ranks(
            mergeable_ranks,
            pattern=pat_str,
            special_tokens={t: i for i, t in self._special_names.items()},
        )
        self._model = self._tokenizer.model
        self._policies: dict[frozenset[str], Callable[[str], Optional[str]]] = {}
        self._allowed: dict[frozenset[str], list[int]] = {}

    def __repr__(self) -> str:
        return f"<Encoding {self.name!r}>"

    @property
    def tokenizer(self) -> Tokenizer:
        """The :class:`tokforge.Tokenizer` doing the work (same ids), for tokforge's own API."""
        return self._tokenizer

    # ---- the special-token policy ---------------------------------------------------------
    def _finder(self, disallowed: frozenset[str]) -> Callable[[str], Optional[str]]:
        """A function text -> the first disallowed text in it (``None`` if there is none)."""
        cached = self._policies.get(disallowed)
        if cached is not None:
            return cached
        native = {t for t in disallowed if t in self._specials and t not in self._aliases}
        others = disallowed - native
        slow = self._regex_finder(disallowed)
        ids = sorted({self._specials[t] for t in native})
        names = self._special_names
        find = self._model.find_special
        fallback = self._regex_finder(others) if others else None

        def finder(text: str) -> Optional[str]:
            try:
                hit = find(text, ids) if ids else None
            except UnicodeEncodeError:
                return slow(text)
            if fallback is None:
                return None if hit is None else names[hit[1]]
            other = fallback(text, start=True)
            if hit is None or (other is not None and other[0] < hit[0]):
                return None if other is None else other[1]
            return names[hit[1]]

        if len(self._policies) >= _POLICY_CACHE:
            self._policies.clear()
        self._policies[disallowed] = finder
        return finder

    @functools.cached_property
    def _default_finder(self) -> Callable[[str], Optional[str]]:
        return self._finder(frozenset(self._specials))

    @staticmethod
    def _regex_finder(texts: frozenset[str]) -> Callable[..., Any]:
        """Leftmost occurrence of any of ``texts`` (the longest one at that position), as its
        text, or ``(character index, text)`` with ``start=True``."""
        alternatives = sorted((t for t in texts if t), key=lambda t: (-len(t), t))
        regex = re.compile("|".join(re.escape(t) for t in alternatives)) if alternatives else None

        def finder(text: str, start: bool = False) -> Any:
            m = regex.search(text) if regex is not None else None
            if m is None:
                return None
            return (m.start(), m.group()) if start else m.group()

        return finder

    def _allowed_ids(self, allowed: Set[str]) -> list[int]:
        """Ids of the special tokens in ``allowed`` (other strings never match: ignored)."""
        if not allowed:
            return []
        if allowed is self.special_tokens_set:
            return self._all_special_ids
        key = allowed if isinstance(allowed, frozenset) else frozenset(allowed)
        ids = self._allowed.get(key)
        if ids is None:
            ids = sorted({self._specials[t] for t in key if t in self._specials})
            if len(self._allowed) >= _POLICY_CACHE:
                self._allowed.clear()
            self._allowed[key] = ids
        return ids

    def _policy(
        self,
        texts: Iterable[str],
        allowed_special: AllowedSpecial,
        disallowed_special: DisallowedSpecial,
    ) -> list[int]:
        """tiktoken's rules: raise on disallowed special-token text in ``texts`` (the first
        text, in order, that has any); return the ids of the allowed special tokens."""
        if disallowed_special == "all" and not allowed_special:
            # the default call: every special token is disallowed, none allowed
            finder = self._default_finder
            for text in texts:
                token = finder(text)
                if token is not None:
                    raise_disallowed_special_token(token)
            return []
        if allowed_special == "all":
            allowed_special = self.special_tokens_set
        if disallowed_special == "all":
            disallowed_special = self.special_tokens_set - allowed_special
        if disallowed_special:
            if not isinstance(disallowed_special, frozenset):
                disallowed_special = frozenset(disallowed_special)
            finder = self._finder(disallowed_special)
            for text in texts:
                token = finder(text)
                if token is not None:
                    raise_disallowed_special_token(token)
        return self._allowed_ids(allowed_special)

    # ---- encoding -------------------------------------------------------------------------
    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text``, special-token text encoded as plain text (as
        ``encode(text, disallowed_special=())``, faster)."""
        return self._tokenizer.encode_ordinary(text)

    def encode(
        self,
        text: str,
        *,
        allowed_special: AllowedSpecial = frozenset(),
        disallowed_special: DisallowedSpecial = "all",
    ) -> list[int]:
        """Token ids of ``text``.

        Text of a special token raises :class:`ValueError` unless it is in ``allowed_special``
        (then it becomes the special id) or left out of ``disallowed_special`` (then it is
        plain text). ``"all"`` means every special token; ``disallowed_special=()`` turns the
        check off.

        >>> enc = Encoding("toy", pat_str=r"\\S+|\\s+",
        ...                mergeable_ranks={bytes([b]): b for b in range(256)},
        ...                special_tokens={"<|eot|>": 256})
        >>> enc.encode("a<|eot|>", allowed_special={"<|eot|>"})
        [97, 256]
        >>> enc.encode("a<|eot|>", disallowed_special=())[:3]
        [97, 60, 124]
        """
        if disallowed_special == "all" and not allowed_special:  # the default, inlined
            token = self._default_finder(text)
            if token is not None:
                raise_disallowed_special_token(token)
            return self._tokenizer.encode_ordinary(text)
        ids = self._policy((text,), allowed_special, disallowed_special)
        try:
            return self._encode(text, ids, allowed_special)
        except UnicodeEncodeError:
            return self._encode(_fix_surrogates(text), ids, allowed_special)

    def _encode(self, text: str, ids: list[int], allowed_special: AllowedSpecial) -> list[int]:
        """Native encode, unless allowed alias names of special tokens occur in ``text``: then
        the text is cut at every allowed special-token text and the parts encoded apart."""
        if not self._aliases or not allowed_special:
            return self._model.encode(text, ids)
        allowed = self._specials.keys() if allowed_special == "all" else allowed_special
        aliases = [a for a in self._aliases if a in allowed and a in text]
        if not aliases:
            return self._model.encode(text, ids)
        find = self._regex_finder(frozenset(t for t in allowed if t in self._specials))
        out: list[int] = []
        while True:
            hit = find(text, start=True)
            if hit is None:
                out.extend(self._model.encode_ordinary(text))
                return out
            at, special = hit
            out.extend(self._model.encode_ordinary(text[:at]))
            out.append(self._specials[special])
            text = text[at + len(special) :]

    def encode_to_numpy(
        self,
        text: str,
        *,
        allowed_special: AllowedSpecial = frozenset(),
        disallowed_special: DisallowedSpecial = "all",
    ) -> npt.NDArray[np.uint32]:
        """:meth:`encode` into a ``uint32`` numpy array (no Python int per token)."""
        ids = self._policy((text,), allowed_special, disallowed_special)
        if self._aliases and allowed_special:
            import numpy as np

            return np.asarray(
                self.encode(text, allowed_special=allowed_special, disallowed_special=()),
                dtype=np.uint32,
            )
        try:
            return self._model.encode_numpy(text, ids)
        except UnicodeEncodeError:
            return self._model.encode_numpy(_fix_surrogates(text), ids)

    def _encode_many(
        self, texts: Sequence[str], ids: list[int], num_threads: Optional[int]
    ) -> list[list[int]]:
        threads = _threads(num_threads)
        try:
            return self._model.encode_batch(list(texts), ids, threads)
        except UnicodeEncodeError:
            return self._model.encode_batch([_fix_surrogates(t) for t in texts], ids, threads)

    def encode_ordinary_batch(
        self, text: Sequence[str], *, num_threads: int = 8
    ) -> list[list[int]]:
        """:meth:`encode_ordinary` of each text, in parallel (native threads, GIL released)."""
        return self._encode_many(list(text), [], num_threads)

    def encode_batch(
        self,
        text: Sequence[str],
        *,
        num_threads: int = 8,
        allowed_special: AllowedSpecial = frozenset(),
        disallowed_special: DisallowedSpecial = "all",
    ) -> list[list[int]]:
        """:meth:`encode` of each text, in parallel (native threads, GIL released)."""
        texts = list(text)
        ids = self._policy(texts, allowed_special, disallowed_special)
        if self._aliases and allowed_special:
            return [
                self.encode(t, allowed_special=allowed_special, disallowed_special=())
                for t in texts
            ]
        return self._encode_many(texts, ids, num_threads)

    def encode_single_token(self, text_or_bytes: Union[str, bytes]) -> int:
        """The id of the token whose text (or bytes) is exactly ``text_or_bytes``, special tokens
        included. Raises :class:`KeyError` if there is none."""
        if isinstance(text_or_bytes, str):
            text_or_bytes = text_or_bytes.encode("utf-8")
        token = self._model.token_id(bytes(text_or_bytes))
        if token is not None:
            return token
        try:
            token = self._specials.get(bytes(text_or_bytes).decode("utf-8"))
        except UnicodeDecodeError:
            token = None
        if token is None:
            raise KeyError(bytes(text_or_bytes))
        return token

    # ---- the unstable tail (encode_with_unstable, _encode_bytes) --------------------------
    def _encode_split_last_piece(self, text: str, allowed: list[int]) -> tuple[list[int], int]:
        """Ids of ``text`` and how many of them come from its last regex piece (0 when the text
        is empty or ends with an allowed special token)."""
        ids, spans = self._model.encode_with_spans(text, allowed)
        special = self._special_token_values
        if not ids or ids[-1] in special:
            return ids, 0
        data = text.encode("utf-8")
        tail = 0
        for i in range(len(ids) - 1, -1, -1):
            if ids[i] in special:
                tail = spans[i][1]
                break
        last_piece = self._tokenizer.pretokenize(data[tail:].decode("utf-8"))[-1]
        last_start = len(data) - len(last_piece.encode("utf-8"))
        n = 0
        while n < len(ids) and spans[len(ids) - 1 - n][0] >= last_start:
            n += 1
        return ids, n

    def _all_space(self, token: int) -> bool:
        if token in self._special_token_values:
            return False
        return all(b in b" \n\t" for b in self._model.token_bytes(token))

    def _extend_over_spaces(self, ids: list[int], n: int) -> int:
        """Widen the unstable tail over whitespace tokens before it: adding text can move a
        regex split among spaces (cl100k's ``\\s*[\\r\\n]``)."""
        if n > 0 and self._all_space(ids[len(ids) - n]):
            while n < len(ids) and self._all_space(ids[len(ids) - n - 1]):
                n += 1
        return n

    @functools.cached_property
    def _sorted_tokens(self) -> tuple[list[bytes], dict[bytes, int]]:
        ranks = {bytes(t): int(r) for t, r in self._mergeable_ranks.items()}
        return sorted(ranks), ranks

    @functools.cached_property
    def _byte_twin(self) -> Tokenizer:
        """The same ranks over Latin-1 text, one piece per text: BPE of arbitrary bytes (even
        invalid UTF-8) through the str-only native encoder. Byte ``b`` becomes ``chr(b)``; each
        such character's UTF-8 bytes merge first (ranks 0..255 = the byte values), then token
        ``t`` has rank ``256 + rank(t)``, so the merges and their order are those of ``t``.
        The raw bytes 0x80..0xFF are tokens too (the native model needs all 256), ranked last:
        they never survive, every one is half of a character that merges first."""
        ranks = {}
        for token, rank in self._sorted_tokens[1].items():
            key = token.decode("latin-1").encode("utf-8")
            ranks[key] = token[0] if len(token) == 1 else 256 + rank
        top = max(ranks.values()) + 1
        ranks.update({bytes([b]): top + b for b in range(0x80, 0x100)})
        return Tokenizer.from_ranks(ranks, pattern=r"(?s).+")

    def _bpe_bytes(self, data: bytes) -> list[int]:
        """BPE of ``data`` as one piece (no regex split): the whole piece if it is a token."""
        single = self._sorted_tokens[1]
        out = self._byte_twin.encode_ordinary(data.decode("latin-1"))
        return [single[bytes([i])] if i < 256 else i - 256 for i in out]

    def encode_with_unstable(
        self,
        text: str,
        *,
        allowed_special: AllowedSpecial = frozenset(),
        disallowed_special: DisallowedSpecial = "all",
    ) -> tuple[list[int], list[list[int]]]:
        """Stable ids of a prefix of ``text`` and the token sequences that may continue them
        once more text arrives (tiktoken: "this API should itself be considered unstable").

        ``decode_bytes(stable)`` is a prefix of ``text``'s bytes and every
        ``decode_bytes(stable + seq)`` starts with them. Completions come sorted.
        """
        allowed = self._policy((text,), allowed_special, disallowed_special)
        ids, n = self._encode_split_last_piece(text, allowed)
        if n == 0:
            return ids, []
        n = self._extend_over_spaces(ids, n)
        unstable = self._model.decode_bytes(ids[len(ids) - n :])
        stable = ids[: len(ids) - n]
        if not unstable:
            return stable, []
        tokens, rank = self._sorted_tokens
        completions: set[tuple[int, ...]] = set()
        # single tokens that start with the unstable bytes
        i = bisect.bisect_left(tokens, unstable)
        while i < len(tokens) and tokens[i].startswith(unstable):
            completions.add((rank[tokens[i]],))
            i += 1
        # a token that straddles the end: the unstable bytes' tail followed by more bytes
        for cut in range(1, len(unstable)):
            prefix, suffix = unstable[:cut], unstable[cut:]
            i = bisect.bisect_left(tokens, suffix)
            while i < len(tokens) and tokens[i].startswith(suffix):
                candidate = prefix + tokens[i]
                try:
                    seq = self.encode_ordinary(candidate.decode("utf-8"))
                except UnicodeDecodeError:
                    seq = self._bpe_bytes(candidate)
                kept, covered = [], 0
                for t in seq:
                    kept.append(t)
                    covered += len(self._model.token_bytes(t))
                    if covered >= len(unstable):
                        break
                completions.add(tuple(kept))
                i += 1
        # trailing whitespace may split off once more text arrives (\s+(?!\S))
        if len(unstable) > 1:
            ch, size = _last_char(unstable)
            if ch is not None and ch in _WHITE_SPACE and len(unstable) > size:
                head, last = unstable[:-size], unstable[-size:]
                completions.add(tuple(self._bpe_bytes(head) + self._bpe_bytes(last)))
        return stable, [list(c) for c in sorted(completions)]

    def _encode_single_piece(self, text_or_bytes: Union[str, bytes]) -> list[int]:
        """BPE of ``text_or_bytes`` as one piece (no regex split, no special tokens)."""
        if isinstance(text_or_bytes, str):
            text_or_bytes = text_or_bytes.encode("utf-8")
        return self._bpe_bytes(bytes(text_or_bytes))

    def _encode_only_native_bpe(self, text: str) -> list[int]:
        """Regex split, then BPE of each piece separately (a cross-check of :meth:`encode_ordinary`)."""
        out: list[int] = []
        for piece in self._tokenizer.pretokenize(text):
            out.extend(self._encode_single_piece(piece))
        return out

    def _encode_bytes(self, text: bytes) -> list[int]:
        """Ids of bytes that may not be valid UTF-8: the valid prefix is encoded as text, then
        its unstable tail and the invalid rest go through BPE together (tiktoken's guess at
        what a model saw for truncated UTF-8)."""
        data = bytes(text)
        try:
            return self.encode_ordinary(data.decode("utf-8"))
        except UnicodeDecodeError as e:
            valid = e.start
        ids, n = self._encode_split_last_piece(data[:valid].decode("utf-8"), [])
        n = self._extend_over_spaces(ids, n)
        if ids and n > 0:
            rest = self._model.decode_bytes(ids[len(ids) - n :]) + data[valid:]
            ids = ids[: len(ids) - n]
        else:
            rest = data[valid:]
        if rest:
            ids.extend(self._bpe_bytes(rest))
        return ids

    # ---- decoding -------------------------------------------------------------------------
    def _decode_error(self, tokens: Iterable[int], *, single: bool = False) -> Exception:
        """tiktoken's error for ids it cannot decode: OverflowError for ids that are not u32,
        else KeyError naming the first unknown id (the bare id for a single token)."""
        tokens = list(tokens)
        for t in tokens:
            if not 0 <= t <= _MAX_ID:
                return OverflowError("out of range integral type conversion attempted")
        for t in tokens:
            try:
                self._model.token_bytes(t)
            except (ValueError, OverflowError):
                return KeyError(str(t) if single else f"Invalid token for decoding: {t}")
        return TypeError(f"cannot decode {type(tokens).__name__} as token ids")

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        """Bytes of ``tokens`` (special tokens give their text).

        >>> enc = Encoding("toy", pat_str=r"\\S+", mergeable_ranks={bytes([b]): b for b in range(256)},
        ...                special_tokens={})
        >>> enc.decode_bytes([104, 105])
        b'hi'
        """
        ids = tokens if isinstance(tokens, list) else list(tokens)
        try:
            return self._model.decode_bytes(ids)
        except (ValueError, OverflowError):
            raise self._decode_error(ids) from None

    def decode(self, tokens: Sequence[int], errors: str = "replace") -> str:
        """Text of ``tokens``. ``errors`` handles invalid UTF-8 (default ``"replace"``: lossy)."""
        ids = tokens if isinstance(tokens, list) else list(tokens)
        try:
            data = self._model.decode_bytes(ids)
        except (ValueError, OverflowError):
            raise self._decode_error(ids) from None
        return data.decode("utf-8", errors=errors)

    def decode_single_token_bytes(self, token: int) -> bytes:
        """Bytes of one token, special tokens included. Raises :class:`KeyError` if unknown."""
        try:
            return self._model.token_bytes(token)
        except (ValueError, OverflowError):
            raise self._decode_error([token], single=True) from None

    def decode_tokens_bytes(self, tokens: Sequence[int]) -> list[bytes]:
        """Bytes of each token (to see how a text was cut)."""
        return [self.decode_single_token_bytes(t) for t in tokens]

    def decode_with_offsets(self, tokens: Sequence[int]) -> tuple[str, list[int]]:
        """Text of ``tokens`` and, per token, the index of the first character it contributes
        bytes to. Raises :class:`UnicodeDecodeError` if the bytes are not valid UTF-8.

        >>> enc = Encoding("toy", pat_str=r"\\S+", mergeable_ranks={bytes([b]): b for b in range(256)},
        ...                special_tokens={})
        >>> enc.decode_with_offsets([104, 0xC3, 0xA9, 33])
        ('hé!', [0, 1, 1, 2])
        """
        pieces = self.decode_tokens_bytes(tokens)
        offsets, chars = [], 0
        for piece in pieces:
            starts_mid_char = 0x80 <= piece[0] < 0xC0
            offsets.append(max(0, chars - starts_mid_char))
            chars += sum(1 for b in piece if not 0x80 <= b < 0xC0)
        return b"".join(pieces).decode("utf-8", errors="strict"), offsets

    def decode_batch(
        self, batch: Sequence[Sequence[int]], *, errors: str = "replace", num_threads: int = 8
    ) -> list[str]:
        """:meth:`decode` of each id list."""
        _threads(num_threads)
        return [self.decode(tokens, errors) for tokens in batch]

    def decode_bytes_batch(
        self, batch: Sequence[Sequence[int]], *, num_threads: int = 8
    ) -> list[bytes]:
        """:meth:`decode_bytes` of each id list."""
        _threads(num_threads)
        return [self.decode_bytes(tokens) for tokens in batch]

    # ---- vocabulary -----------------------------------------------------------------------
    def token_byte_values(self) -> list[bytes]:
        """Bytes of every regular (mergeable) token, sorted."""
        return list(self._sorted_tokens[0])

    @property
    def eot_token(self) -> int:
        """Id of ``<|endoftext|>`` (:class:`KeyError` if the encoding has none)."""
        return self._special_tokens["<|endoftext|>"]

    @functools.cached_property
    def special_tokens_set(self) -> set[str]:
        """Texts of the special tokens."""
        return set(self._special_tokens.keys())

    def is_special_token(self, token: int) -> bool:
        assert isinstance(token, int)
        return token in self._special_token_values

    @property
    def n_vocab(self) -> int:
        """``max_token_value + 1`` (ids may have gaps)."""
        return self.max_token_value + 1

    # ---- pickling: registered encodings by name, others by value --------------------------
    def __getstate__(self) -> object:
        from . import registry

        if self is registry.ENCODINGS.get(self.name):
            return self.name
        return {
            "name": self.name,
            "pat_str": self._pat_str,
            "mergeable_ranks": self._mergeable_ranks,
            "special_tokens": self._special_tokens,
        }

    def __setstate__(self, value: object) -> None:
        from . import registry

        if isinstance(value, str):
            self.__dict__ = registry.get_encoding(value).__dict__
            return
        self.__init__(**value)  # type: ignore[misc,arg-type]
