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
class StoppedError(TokforgeError):
    """Work stopped by the progress callback (it returned False)."""

class TokenModel:
    """A tokenizer model: byte-level BPE, SentencePiece-style BPE or LiB behind one set of methods (rust/src/model.rs).
    Immutable and thread-safe; encoding releases the GIL. Members of one family are ``None``
    on the other (``merges``, ``units``...) or raise :class:`InputError` (``to_tiktoken``,
    ``with_segmenter``). ``tokforge.Tokenizer`` wraps it; ``Tokenizer.model`` returns it."""

    @staticmethod
    def from_file(
        path: str,
        pattern: Optional[str] = None,
        special_tokens: Optional[list[tuple[str, int]]] = None,
    ) -> TokenModel:
        """Load a tokenizer file, its format detected from the content: HF ``tokenizer.json``,
        ``.tiktoken`` (``pattern`` / ``special_tokens`` for it, else OpenAI's by file name),
        tekken JSON or tokforge's LiB JSON."""
    @staticmethod
    def from_gguf(path: str) -> TokenModel:
        """Load the tokenizer of a llama.cpp GGUF file (its metadata only, never the tensors)."""
    @staticmethod
    def from_sentencepiece(path: str) -> TokenModel:
        """Load a SentencePiece ``.model`` file of type BPE (no ``sentencepiece`` needed)."""
    @staticmethod
    def from_json_str(text: str) -> TokenModel:
        """Load from JSON text: HF ``tokenizer.json``, tekken JSON or tokforge's LiB JSON."""
    @staticmethod
    def from_ranks(
        ranks: list[tuple[bytes, int]], pattern: str, special_tokens: list[tuple[str, int]]
    ) -> TokenModel:
        """A tiktoken-style BPE model from ``(bytes, rank)`` pairs."""
    @staticmethod
    def from_units(
        units: list[str], special_tokens: list[str] = ..., segmenter: str = "lib"
    ) -> TokenModel:
        """A LiB model from units in priority order (ids: specials, 256 bytes, units)."""
    def to_json(self) -> str:
        """HF ``tokenizer.json`` text (BPE) or tokforge's LiB JSON."""
    def to_tiktoken(self) -> str:
        """``.tiktoken`` text, rank = id (BPE only; :class:`InputError` for LiB)."""
    @property
    def kind(self) -> str:
        """``"bpe"``, ``"lib"`` or ``"sentencepiece"`` (SentencePiece-style BPE)."""
    @property
    def vocab_size(self) -> int: ...
    @property
    def pattern(self) -> str:
        """The regex whose pieces are encoded independently (LiB: lines and newlines)."""
    @property
    def pattern_name(self) -> str:
        """A preset name, ``"custom"`` or ``"lib"``."""
    @property
    def pretokenize(self) -> Optional[str]:
        """The pre-tokenizer (preset name or regex): BPE's, or LiB's "no-supra" mode."""
    @property
    def special_tokens(self) -> list[tuple[str, int]]:
        """``(text, id)`` of the special tokens, by id."""
    @property
    def merges(self) -> Optional[list[tuple[int, int]]]:
        """BPE: ``(left_id, right_id)`` in priority order; LiB: ``None``."""
    @property
    def ignore_merges(self) -> Optional[bool]:
        """BPE: whether a piece that is a token is emitted whole; LiB: ``None``."""
    @property
    def priority(self) -> Optional[str]:
        """BPE: ``"merges"`` (HF) or ``"ranks"`` (tiktoken); LiB: ``None``."""
    @property
    def units(self) -> Optional[list[str]]:
        """LiB: units in id order; BPE: ``None``."""
    @property
    def segmenter(self) -> Optional[str]:
        """LiB: ``"lib"``, ``"reference"`` or ``"greedy"``; BPE: ``None``."""
    @property
    def training(self) -> Optional[str]:
        """LiB: the training settings stored with the model (JSON text); BPE: ``None``."""
    def with_segmenter(self, segmenter: str) -> TokenModel:
        """The same LiB units with another segmentation rule (LiB only)."""
    def token_bytes(self, id: int) -> bytes:
        """Bytes of ``id`` (a special token's text); :class:`VocabError` if unknown."""
    def token_id(self, token: bytes | str) -> Optional[int]:
        """Id of a regular token (bytes) or of a special token (str, else its UTF-8 bytes)."""
    def is_special(self, id: int) -> bool: ...
    def stream_cut(self, text: str) -> int:
        """Characters of the longest prefix whose ids cannot depend on what follows (0: none)."""
    def encode_ordinary(self, text: str) -> list[int]:
        """Ids of ``text``; special-token text is plain text."""
    def encode(self, text: str, allowed: list[int], refused: list[int] = ...) -> list[int]:
        """Ids of ``text``; the special tokens with ids in ``allowed`` are recognised, and the
        text of those in ``refused`` raises ``InputError``."""
    def encode_numpy(self, text: str, allowed: list[int], refused: list[int] = ...) -> Any:
        """:meth:`encode` as a ``uint32`` array (from 1 MiB of text the encoder's buffer, not
        copied)."""
    def encode_ordinary_numpy(self, text: str) -> Any:
        """:meth:`encode_ordinary` as a ``uint32`` numpy array."""
    def cache_info(self) -> Optional[dict[str, int]]:
        """Size of the encoder's piece table; ``None`` for a model without one."""
    def set_cache_limit(self, entries: int) -> None:
        """Most pieces one table of the encoder may hold; ids never depend on it."""
    def find_special(self, text: str, ids: list[int]) -> Optional[tuple[int, int]]:
        """First ``(char_start, id)`` of one of the special tokens ``ids`` in ``text``."""
    def encode_with_spans(
        self, text: str, allowed: list[int], refused: list[int] = ...
    ) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and the UTF-8 byte span ``(start, end)`` of each."""
    def encode_batch(
        self,
        texts: list[str],
        allowed: list[int],
        num_threads: Optional[int] = None,
        refused: list[int] = ...,
    ) -> list[list[int]]:
        """:meth:`encode` of each text, in parallel; lists built while workers encode."""
    def encode_batch_numpy(
        self,
        texts: list[str],
        allowed: list[int],
        num_threads: Optional[int] = None,
        refused: list[int] = ...,
    ) -> tuple[Any, Any]:
        """Flat ``uint32`` ids and ``int64`` offsets of each text's ids, in parallel."""
    def decode_bytes(self, ids: list[int]) -> bytes:
        """Concatenated bytes of ``ids``; :class:`VocabError` names an unknown id."""



def count_pieces(
    *,
    files: Optional[list[str]] = None,
    texts: Optional[Iterable[str]] = None,
    pattern: str = "cl100k",
    documents: str = "file",
    errors: str = "strict",
    max_pieces: Optional[int] = None,
    prune: bool = False,
    progress: Optional[Callable[[str, int, int], Any]] = None,
    num_threads: Optional[int] = None,
) -> PieceCounts:
    """Count the pre-tokenized pieces of files and strings (see ``tokforge.counts``)."""
def check_train_settings(
    *,
    vocab_size: int,
    min_frequency: int = 0,
    special_tokens: list[str] = ...,
    tie_order: str = "hf",
) -> None:
    """Raise what ``train_from_counts`` would for these settings."""
def train_from_counts(
    counts: PieceCounts,
    *,
    vocab_size: int,
    min_frequency: int = 0,
    special_tokens: list[str] = ...,
    tie_order: str = "hf",
    progress: Optional[Callable[[str, int, int], Any]] = None,
    num_threads: Optional[int] = None,
) -> tuple[TokenModel, list[int]]:
    """Learn byte-level BPE merges from a table; returns the model and each merge's count."""

class PieceCounts:
    """Unique pieces with u64 counts and the pattern that cut them (docs/distributed.md §2)."""

    @staticmethod
    def from_bytes(data: bytes, name: str = "<bytes>") -> PieceCounts: ...
    def to_bytes(self) -> bytes: ...
    def merge(
        self, others: list[PieceCounts], *, max_pieces: Optional[int] = None, prune: bool = False
    ) -> PieceCounts: ...
    def get(self, piece: bytes) -> int: ...
    def most_common(self, n: int) -> list[tuple[bytes, int]]: ...
    @property
    def pattern(self) -> str: ...
    @property
    def pattern_name(self) -> str: ...
    @property
    def docs(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def pruned_below(self) -> int: ...
    @property
    def total(self) -> int: ...
    def __len__(self) -> int: ...

def pretokenize(pattern: str, text: str) -> list[str]: ...
def preset_pattern(name: str) -> str: ...
def tiktoken_preset(stem: str) -> Optional[tuple[str, list[tuple[str, int]]]]:
    """Pre-tokenizer preset and ``[(text, id)]`` special tokens of an OpenAI rank file, by
    file stem (``gpt2``, ``r50k_base``, ``cl100k_base``, ``o200k_base``); ``None`` otherwise."""
def hf_pattern(pattern: str) -> str: ...
def byte_level_decode(text: str) -> Optional[bytes]: ...
def format_ids(ids: NDArray[np.uint32], offsets: NDArray[np.int64], line_end: int = 10) -> bytes:
    """Ids as decimal text: each document's ids space-separated, then ``line_end`` (a byte)."""
def batch_output_info() -> dict[str, int]:
    """Memory kept for ``encode_batch_numpy``'s next call: freed flat arrays (``buffers``,
    ``bytes``, ``limit``: the largest kept)."""
def release_batch_output() -> int:
    """Free the memory kept for ``encode_batch_numpy``'s next call; the bytes freed."""

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
    tokens: Optional[TokenModel | TokenTable] = None,
    num_threads: Optional[int] = None,
) -> MergeResult:
    """Merge a flat batch (``tokforge.dynamic.merge_batch`` converts its arguments into
    these): ``word_boundaries`` is a mode name or ``(flags, lengths)``, ``word_ids`` is
    ``(values, lengths)``, one length per sequence. Every value is checked in Rust."""

def retokenize(
    model: TokenModel, units: list[bytes]
) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """Each byte string encoded with the model's merges only (no pre-tokenizer), as
    ``(flat ids, offsets)``."""

# ---- LiB, Less-is-Better (rust/src/python/lib_model.rs) -------------------------------------
class LibTrainSummary:
    """What a LiB training run did (returned by :func:`train_lib` with the model)."""

    @property
    def steps(self) -> int:
        """Articles read."""
    @property
    def sentences(self) -> int:
        """Training sentences (lines) read."""
    @property
    def lexicon_size(self) -> int:
        """Size of the lexicon at the end, probation included."""
    @property
    def probation_size(self) -> int:
        """Units on probation at the end."""
    @property
    def clean_size(self) -> int:
        """Units after the clean-up (before cutting to the vocabulary size)."""
    @property
    def units(self) -> int:
        """Units kept in the model."""
    @property
    def unused_on_train(self) -> int:
        """Kept units the model never emits on the training sentences."""
    @property
    def multiword_share(self) -> float:
        """Share of kept units with whitespace inside."""

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
) -> tuple[TokenModel, LibTrainSummary]:
    """Train a LiB model on sentences (lines without ``\\n``); ``progress(step, steps,
    lexicon_size, probation_size, tokens_per_byte)`` may return ``False`` to stop."""
def lib_learn(
    *,
    sentences: list[str] | str,
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
    lines: Optional[int] = None,
) -> tuple[list[str], list[str], list[str]]: ...
def lib_apply(
    units: list[str], sentences: list[str], *, segmenter: str = "reference"
) -> list[list[str]]: ...
def is_multiword(unit: str) -> bool:
    """Whether ``unit`` has whitespace (Unicode ``White_Space``) strictly inside."""
def multiword_share(units: list[str]) -> float:
    """Share of ``units`` that are multiword (0.0 for none)."""

# byte_probs (rust/src/python/byte_probs.rs): the engine under tokforge.ByteLM
class StartPlan:
    """Stems of a prompt (``CoverIndex.plan``): canonical encodings of the prompt's prefixes
    whose remaining bytes start some token."""
    @property
    def stems(self) -> list[list[int]]: ...
    @property
    def common(self) -> int:
        """Longest common prefix (in tokens) of all stems: LM rows start there."""
    @property
    def star(self) -> list[int]:
        """``encode(prompt)``."""

class LMRow:
    """One LM row of log-probabilities, masked by the mode and cumulated in trie order."""
    @property
    def z(self) -> float:
        """Valid mass (regular tokens that passed the mask, plus EOS) before scaling."""
    @property
    def eos(self) -> float: ...

class CoverState:
    """Cover set of a byte prefix (immutable; ``CoverIndex.advance`` returns a new one)."""
    @property
    def stars(self) -> list[list[int]]:
        """Empty-overhang covers (context included), largest weight first; their LM rows are
        what ``next_byte_probs`` / ``advance`` take, in this order."""
    @property
    def star_weights(self) -> list[float]: ...
    @property
    def log_q(self) -> float: ...
    @property
    def n_bytes(self) -> int: ...
    @property
    def n_groups(self) -> int: ...

class CoverIndex:
    """Trie, validity rows and mode for one tokenizer and one LM vocabulary.

    ``mode``: ``"exact"`` | ``"mask"`` | ``"fast"``; ``validity``: ``"pair"`` (BPE local rule,
    prefix-closed tokenizers) or ``"pieces"`` (regex pre-tokenizers: settled prefix + open
    tail); bad values raise :class:`tokforge.InputError`.
    """
    def __init__(
        self,
        model: TokenModel,
        vocab_size: int,
        eos_id: int,
        mode: str = ...,
        validity: str = ...,
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
    @property
    def token_order(self) -> Any: ...
    def encode(self, data: bytes) -> list[int]:
        """Canonical ids of arbitrary bytes."""
    def is_valid(self, ids: list[int], full: bool = ...) -> bool: ...
    def plan(self, prompt: bytes) -> StartPlan: ...
    def start(
        self, plan: StartPlan, context: list[int], rows: list[Any], trie_order: bool = ...
    ) -> CoverState: ...
    def prepare(self, logprobs: Any, stem: list[int], trie_order: bool = ...) -> LMRow: ...
    def token_prob(self, row: LMRow, id: int) -> float: ...
    def next_byte_probs(self, state: CoverState, rows: list[LMRow]) -> tuple[Any, float]: ...
    def advance(self, state: CoverState, rows: list[LMRow], b: int) -> CoverState: ...
    def covers(self, state: CoverState, ctx_len: int) -> list[tuple[list[int], bytes, float]]: ...

# ---- mixture inference (rust/src/python/mixture.rs) ------------------------------------------
class MixtureCounts:
    @property
    def categories(self) -> list[str]: ...
    @property
    def num_steps(self) -> int: ...
    @property
    def num_pairs(self) -> int: ...
    @property
    def top_k(self) -> int: ...
    @property
    def merges_dropped(self) -> int: ...
    @property
    def num_changes(self) -> int: ...
    @property
    def memory_bytes(self) -> int: ...
    @property
    def pairs_total(self) -> Any: ...
    @property
    def sample_bytes(self) -> Any: ...
    @property
    def chosen(self) -> Any: ...
    @property
    def merge_pair(self) -> Any: ...
    @property
    def top_pairs(self) -> Any: ...
    @property
    def top_counts(self) -> Any: ...
    def missing_steps(self) -> Any: ...
    def merges(self) -> list[tuple[bytes, bytes]]: ...
    def pair_tokens(self, p: int) -> tuple[bytes, bytes]: ...
    def pair_id(self, left: bytes, right: bytes) -> Optional[int]: ...
    def counts_at(self, steps: Any, pairs: Any) -> Any: ...
    def changes(self, category: int, step: int) -> tuple[Any, Any]: ...
    def snapshot(self, category: int) -> tuple[Any, Any]: ...
    def violated_rows(
        self,
        alpha: Any,
        v_step: Any,
        v_pair_ids: Any,
        v_pair_values: Any,
        row_steps: Any,
        row_pairs: Any,
        *,
        scale: float,
        tol: float,
        k: int,
        max_add: int,
    ) -> Any: ...
    def all_rows(self, *, limit: int = 20000000) -> Any: ...

def replay_merges(
    merges: list[tuple[bytes, bytes]],
    pattern: str,
    categories: list[tuple[str, Optional[str], list[str]]],
    *,
    merge_order: str = "auto",
    num_merges: Optional[int] = None,
    limit: Optional[int] = None,
    top_k: int = 10,
    errors: str = "strict",
    progress: Optional[Callable[[str, int, int], Any]] = None,
    num_threads: Optional[int] = None,
) -> MixtureCounts: ...

# ---- corpus metrics (rust/src/python/metrics.rs) --------------------------------------------
class StreamCounts:
    """What one pass over a corpus and its ids counted (returned by :func:`stream_counts`)."""

    @property
    def words(self) -> int: ...
    @property
    def continued_words(self) -> int: ...
    @property
    def chars(self) -> int: ...
    @property
    def split_chars(self) -> int: ...
    @property
    def partial_tokens(self) -> int: ...
    @property
    def byte_fallback_tokens(self) -> int: ...
    @property
    def line_tokens(self) -> NDArray[np.uint32]: ...

def stream_counts(
    text: bytes, doc_chars: list[int], ids: Any, lengths: Any, flags: Any
) -> StreamCounts: ...
