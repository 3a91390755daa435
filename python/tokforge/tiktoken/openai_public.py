"""OpenAI's encodings: the rank file, pattern and special tokens of each, as tiktoken builds
them (``tiktoken_ext.openai_public``). Each constructor returns the keyword arguments of
:class:`~tokforge.tiktoken.Encoding`; rank files are found offline by :mod:`.load`.

>>> sorted(o200k_harmony_special_tokens().items())[:2]
[('<|call|>', 200012), ('<|channel|>', 200005)]
"""

from __future__ import annotations

from typing import Any, Callable

from .._core import preset_pattern, tiktoken_preset
from .load import (
    BASE_URL,
    R50K_SHA256,
    RankFileNotFoundError,
    data_gym_to_mergeable_bpe_ranks,
    load_tiktoken_bpe,
)

ENDOFTEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
ENDOFPROMPT = "<|endofprompt|>"

#: tiktoken's ``r50k_pat_str`` (GPT-2 / r50k / p50k): tokforge's ``gpt2`` preset is that string.
r50k_pat_str = preset_pattern("gpt2")

#: SHA-256 tiktoken expects for each published file.
SHA256 = {
    "r50k_base.tiktoken": R50K_SHA256,
    "p50k_base.tiktoken": "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
    "cl100k_base.tiktoken": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base.tiktoken": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}

GPT2_VOCAB_BPE = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe"
GPT2_ENCODER_JSON = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json"
GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"


def _specials(stem: str) -> dict[str, int]:
    """The special tokens tokforge's rank-file loader gives OpenAI's file ``stem``."""
    preset = tiktoken_preset(stem)
    if preset is None:  # pragma: no cover - the table names every stem used here
        raise KeyError(stem)
    return dict(preset[1])


def _ranks(file: str) -> dict[bytes, int]:
    return load_tiktoken_bpe(BASE_URL + file, expected_hash=SHA256[file])


def gpt2() -> dict[str, Any]:
    """GPT-2 from its data-gym files when they are in tiktoken's cache; otherwise from
    ``r50k_base.tiktoken``, which holds the same ranks (rebuilding the data-gym files from it
    gives exactly the bytes whose SHA-256 tiktoken expects: ``tests/test_tiktoken_compat.py``)."""
    try:
        ranks = data_gym_to_mergeable_bpe_ranks(
            vocab_bpe_file=GPT2_VOCAB_BPE,
            encoder_json_file=GPT2_ENCODER_JSON,
            vocab_bpe_hash=GPT2_VOCAB_BPE_SHA256,
            encoder_json_hash=GPT2_ENCODER_JSON_SHA256,
        )
    except RankFileNotFoundError:
        ranks = _ranks("r50k_base.tiktoken")
    return {
        "name": "gpt2",
        "explicit_n_vocab": 50257,
        "pat_str": r50k_pat_str,
        "mergeable_ranks": ranks,
        "special_tokens": {ENDOFTEXT: 50256},
    }


def r50k_base() -> dict[str, Any]:
    return {
        "name": "r50k_base",
        "explicit_n_vocab": 50257,
        "pat_str": r50k_pat_str,
        "mergeable_ranks": _ranks("r50k_base.tiktoken"),
        "special_tokens": {ENDOFTEXT: 50256},
    }


def p50k_base() -> dict[str, Any]:
    return {
        "name": "p50k_base",
        "explicit_n_vocab": 50281,
        "pat_str": r50k_pat_str,
        "mergeable_ranks": _ranks("p50k_base.tiktoken"),
        "special_tokens": {ENDOFTEXT: 50256},
    }


def p50k_edit() -> dict[str, Any]:
    fim = {FIM_PREFIX: 50281, FIM_MIDDLE: 50282, FIM_SUFFIX: 50283}
    return {
        "name": "p50k_edit",
        "pat_str": r50k_pat_str,
        "mergeable_ranks": _ranks("p50k_base.tiktoken"),
        "special_tokens": {ENDOFTEXT: 50256, **fim},
    }


def cl100k_base() -> dict[str, Any]:
    return {
        "name": "cl100k_base",
        "pat_str": preset_pattern("cl100k"),
        "mergeable_ranks": _ranks("cl100k_base.tiktoken"),
        "special_tokens": _specials("cl100k_base"),
    }


def o200k_base() -> dict[str, Any]:
    return {
        "name": "o200k_base",
        "pat_str": preset_pattern("o200k"),
        "mergeable_ranks": _ranks("o200k_base.tiktoken"),
        "special_tokens": _specials("o200k_base"),
    }


def o200k_harmony_special_tokens() -> dict[str, int]:
    """gpt-oss's special tokens: o200k's, the harmony chat tokens, and reserved ids up to
    201087."""
    named = {
        "<|startoftext|>": 199998,
        ENDOFTEXT: 199999,
        "<|return|>": 200002,
        "<|constrain|>": 200003,
        "<|channel|>": 200005,
        "<|start|>": 200006,
        "<|end|>": 200007,
        "<|message|>": 200008,
        "<|call|>": 200012,
    }
    # as in tiktoken, <|reserved_200018|> names the id of <|endofprompt|> too
    reserved = [200000, 200001, 200004, 200009, 200010, 200011, *range(200013, 201088)]
    specials = _specials("o200k_base")
    specials.update(named)
    specials.update({f"<|reserved_{i}|>": i for i in reserved})
    return specials


def o200k_harmony() -> dict[str, Any]:
    base = o200k_base()
    return {
        "name": "o200k_harmony",
        "pat_str": base["pat_str"],
        "mergeable_ranks": base["mergeable_ranks"],
        "special_tokens": o200k_harmony_special_tokens(),
    }


#: Name -> constructor, in tiktoken's order (``list_encoding_names`` keeps it).
ENCODING_CONSTRUCTORS: dict[str, Callable[[], dict[str, Any]]] = {
    "gpt2": gpt2,
    "r50k_base": r50k_base,
    "p50k_base": p50k_base,
    "p50k_edit": p50k_edit,
    "cl100k_base": cl100k_base,
    "o200k_base": o200k_base,
    "o200k_harmony": o200k_harmony,
}
