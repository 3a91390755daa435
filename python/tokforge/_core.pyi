"""Type stubs of the native module ``tokforge._core`` (kept in step with rust/src/python/)."""

from collections.abc import Iterable
from typing import Any, Callable, Optional

import numpy as np
from numpy.typing import NDArray

__version__: str

class TokforgeError(ValueError): ...
class FormatError(TokforgeError): ...
class PatternError(TokforgeError): ...
class TrainingError(TokforgeError): ...
class VocabError(TokforgeError): ...
class InputError(TokforgeError): ...
class InterruptedError(TokforgeError): ...

class BpeModel:
    @staticmethod
    def from_json_file(path: str) -> BpeModel: ...
    @staticmethod
    def from_json_str(text: str) -> BpeModel: ...
    def to_json(self) -> str: ...
    def to_tiktoken(self) -> str: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def pattern(self) -> str: ...
    @property
    def pattern_name(self) -> str: ...
    @property
    def special_tokens(self) -> list[tuple[str, int]]: ...
    @property
    def merges(self) -> list[tuple[int, int]]: ...
    @property
    def ignore_merges(self) -> bool: ...
    def token_bytes(self, id: int) -> bytes: ...
    def token_id(self, token: bytes | str) -> Optional[int]: ...
    def is_special(self, id: int) -> bool: ...
    @property
    def priority(self) -> str: ...
    def stream_cut(self, text: str) -> int: ...
    def encode_ordinary(self, text: str) -> list[int]: ...
    def encode(self, text: str, allowed: list[int]) -> list[int]: ...
    def find_special(self, text: str, ids: list[int]) -> Optional[tuple[int, int]]: ...
    def encode_with_spans(
        self, text: str, allowed: list[int]
    ) -> tuple[list[int], list[tuple[int, int]]]: ...
    def encode_batch(
        self, texts: list[str], allowed: list[int], num_threads: Optional[int] = None
    ) -> list[list[int]]: ...
    def encode_batch_numpy(
        self, texts: list[str], allowed: list[int], num_threads: Optional[int] = None
    ) -> tuple[Any, Any]: ...
    @staticmethod
    def from_tiktoken_file(
        path: str, pattern: str, special_tokens: list[tuple[str, int]]
    ) -> BpeModel: ...
    @staticmethod
    def from_ranks(
        ranks: list[tuple[bytes, int]], pattern: str, special_tokens: list[tuple[str, int]]
    ) -> BpeModel: ...
    def decode_bytes(self, ids: list[int]) -> bytes: ...

def train_bpe(
    *,
    files: Optional[list[str]] = None,
    texts: Optional[Iterable[str]] = None,
    vocab_size: int,
    min_frequency: int = 0,
    special_tokens: list[str] = ...,
    pattern: str = "cl100k",
    tie_order: str = "hf",
    errors: str = "strict",
    progress: Optional[Callable[[str, int, int], Any]] = None,
    num_threads: Optional[int] = None,
) -> tuple[BpeModel, list[int]]: ...
def pretokenize(pattern: str, text: str) -> list[str]: ...
def preset_pattern(name: str) -> str: ...
def hf_pattern(pattern: str) -> str: ...
def byte_level_decode(text: str) -> Optional[bytes]: ...

# ---- dynamic merging (rust/src/python/dynamic.rs) ------------------------------------------
BOUNDARY_PATTERNS: dict[str, str]
"""Regexes of the boundary modes ``whitespace`` and ``whitespace_hyphen``."""

class TokenTable:
    """An id -> bytes table for vocabularies tokforge cannot load as a tokenizer."""

    def __init__(self, tokens: list[Optional[bytes]], special_ids: list[int] = ...) -> None:
        """``tokens[id]`` = bytes of ``id`` (``None`` for a hole); ``special_ids`` never merge
        (each must be an id of the table)."""
    def __len__(self) -> int: ...

class MergeResult:
    """Output of :func:`merge_batch`: immutable; each array getter returns a new array.
    ``tokforge.dynamic.MergeResult`` wraps it."""

    @property
    def unit_ids(self) -> NDArray[np.int32]:
        """``int32[N']`` batch-local unit index of each output position."""
    @property
    def seq_offsets(self) -> NDArray[np.int64]:
        """``int64[B+1]`` offsets of the sequences in ``unit_ids``."""
    @property
    def spans(self) -> NDArray[np.int32]:
        """``int32[N', 2]`` ``[start, end)`` of each output position in its sequence."""
    @property
    def word_ids(self) -> NDArray[np.int32]:
        """``int32[N']`` word id of each output position (``-1`` = never merged)."""
    @property
    def unit_key(self) -> NDArray[np.int32]:
        """``int32[U]`` key of each unit (an index into ``key_offsets``)."""
    @property
    def unit_offsets(self) -> NDArray[np.int64]:
        """``int64[U+1]`` offsets of each unit's base ids in ``unit_constituents``."""
    @property
    def unit_constituents(self) -> NDArray[np.int32]:
        """Base ids of each unit (of its first appearance)."""
    @property
    def unit_base_id(self) -> NDArray[np.int32]:
        """``int32[U]`` the base id of a single-token unit, else ``-1``."""
    @property
    def key_offsets(self) -> NDArray[np.int64]:
        """``int64[K+1]`` offsets of each key's base ids in ``key_constituents``."""
    @property
    def key_constituents(self) -> NDArray[np.int32]:
        """Base ids of each key (of its first creation)."""
    @property
    def key_bytes(self) -> Optional[list[bytes]]:
        """Bytes of each key; ``None`` when no token bytes were given."""
    @property
    def merge_log(self) -> NDArray[np.int64]:
        """``int64[M, 6]``: left key, right key, new key, count, applied, sample (-1 unless
        ``per_sample``) of each merge, in order."""
    @property
    def num_merges(self) -> int: ...
    @property
    def len_initial(self) -> int: ...
    @property
    def len_final(self) -> int: ...
    @property
    def len_word_level(self) -> int: ...

def merge_batch(
    ids: NDArray[np.int64],
    offsets: NDArray[np.int64],
    *,
    word_boundaries: Optional[str | tuple[NDArray[np.int64], NDArray[np.int64]]] = None,
    word_ids: Optional[tuple[NDArray[np.int64], NDArray[np.int64]]] = None,
    keep_last: Optional[int | NDArray[np.int64]] = None,
    max_merges: Optional[int] = None,
    min_count: int = 2,
    target_reduction: Optional[float] = None,
    relative_to: str = "input",
    target_length: Optional[int] = None,
    per_sample: bool = False,
    max_unit_constituents: Optional[int] = None,
    identity: str = "ids",
    tokens: Optional[BpeModel | TokenTable] = None,
    num_threads: Optional[int] = None,
) -> MergeResult:
    """Merge a flat batch (``tokforge.dynamic.merge_batch`` converts its arguments into
    these): ``word_boundaries`` is a mode name or ``(flags, lengths)``, ``word_ids`` is
    ``(values, lengths)``, one length per sequence. Every value is checked in Rust."""

def retokenize(
    model: BpeModel, units: list[bytes]
) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """Each byte string encoded with the model's merges only (no pre-tokenizer), as
    ``(flat ids, offsets)``."""

# ---- LiB, Less-is-Better (rust/src/python/lib_model.rs) -------------------------------------
class LibModel:
    @staticmethod
    def from_json_file(path: str) -> LibModel: ...
    @staticmethod
    def from_json_str(text: str) -> LibModel: ...
    @staticmethod
    def from_units(
        units: list[str], special_tokens: list[str] = ..., segmenter: str = "lib"
    ) -> LibModel: ...
    def to_json(self) -> str: ...
    def to_tiktoken(self) -> str: ...
    @property
    def merges(self) -> list[tuple[int, int]]: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def pattern(self) -> str: ...
    @property
    def pattern_name(self) -> str: ...
    @property
    def segmenter(self) -> str: ...
    @property
    def pretokenize(self) -> Optional[str]: ...
    def with_segmenter(self, segmenter: str) -> LibModel: ...
    @property
    def units(self) -> list[str]: ...
    @property
    def training(self) -> str: ...
    @property
    def special_tokens(self) -> list[tuple[str, int]]: ...
    def token_bytes(self, id: int) -> bytes: ...
    def token_id(self, token: bytes | str) -> Optional[int]: ...
    def is_special(self, id: int) -> bool: ...
    def stream_cut(self, text: str) -> int: ...
    def encode_ordinary(self, text: str) -> list[int]: ...
    def encode(self, text: str, allowed: list[int]) -> list[int]: ...
    def find_special(self, text: str, ids: list[int]) -> Optional[tuple[int, int]]: ...
    def encode_with_spans(
        self, text: str, allowed: list[int]
    ) -> tuple[list[int], list[tuple[int, int]]]: ...
    def encode_batch(
        self, texts: list[str], allowed: list[int], num_threads: Optional[int] = None
    ) -> list[list[int]]: ...
    def encode_batch_numpy(
        self, texts: list[str], allowed: list[int], num_threads: Optional[int] = None
    ) -> tuple[Any, Any]: ...
    def decode_bytes(self, ids: list[int]) -> bytes: ...

def train_lib(
    *,
    sentences: list[str],
    steps: int,
    vocab_size: Optional[int] = None,
    special_tokens: list[str] = ...,
    in_rate: float = 0.25,
    out_rate: float = 0.0001,
    life: int = 10,
    update_rate: float = 0.1,
    max_chunk_len: Optional[int] = 16,
    inspect_context: bool = True,
    article_len: int = 200,
    seed: int = 0,
    protect_chars: bool = True,
    segmenter: str = "lib",
    pretokenize: Optional[str] = None,
    progress: Optional[Callable[[int, int, int, int, float], Any]] = None,
) -> tuple[LibModel, dict[str, Any]]: ...
def lib_learn(
    *,
    sentences: list[str],
    steps: int,
    in_rate: float = 0.25,
    out_rate: float = 0.0001,
    life: int = 10,
    update_rate: float = 0.1,
    max_chunk_len: Optional[int] = None,
    inspect_context: bool = True,
    article_len: int = 500,
    seed: int = 0,
    protect_chars: bool = False,
    pretokenize: Optional[str] = None,
) -> tuple[list[str], list[str], list[str]]: ...
def lib_apply(
    units: list[str], sentences: list[str], *, segmenter: str = "reference"
) -> list[list[str]]: ...

# byte_probs (rust/src/python/byte_probs.rs)
class StartPlan:
    @property
    def stems(self) -> list[list[int]]: ...
    @property
    def common(self) -> int: ...
    @property
    def star(self) -> list[int]: ...

class LMRow:
    @property
    def z(self) -> float: ...
    @property
    def eos(self) -> float: ...

class CoverState:
    @property
    def stars(self) -> list[list[int]]: ...
    @property
    def star_weights(self) -> list[float]: ...
    @property
    def log_q(self) -> float: ...
    @property
    def n_bytes(self) -> int: ...
    @property
    def n_groups(self) -> int: ...

class ByteIndex:
    def __init__(
        self,
        model: BpeModel,
        vocab_size: int,
        eos_id: int,
        mode: str = ...,
        validity: str = ...,
        context_bytes: int = ...,
        row_cache: int = ...,
    ) -> None: ...
    @property
    def validity(self) -> str: ...
    @property
    def lmax(self) -> int: ...
    @property
    def n_tokens(self) -> int: ...
    @property
    def mode(self) -> str: ...
    @property
    def cached_rows(self) -> int: ...
    def encode(self, data: bytes) -> list[int]: ...
    def is_valid(self, ids: list[int], full: bool = ...) -> bool: ...
    def plan(self, prompt: bytes) -> StartPlan: ...
    def start(self, plan: StartPlan, context: list[int], rows: list[Any]) -> CoverState: ...
    def prepare(self, logprobs: Any, stem: list[int]) -> LMRow: ...
    def token_prob(self, row: LMRow, id: int) -> float: ...
    def next_byte_probs(self, state: CoverState, rows: list[LMRow]) -> tuple[Any, float]: ...
    def advance(self, state: CoverState, rows: list[LMRow], b: int) -> CoverState: ...
    def covers(self, state: CoverState, ctx_len: int) -> list[tuple[list[int], bytes, float]]: ...
