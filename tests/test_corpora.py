"""Checks on the shipped corpora/ folder (stdlib + pytest only)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "corpora"
MANIFEST = CORPORA / "MANIFEST.json"

# Everything in corpora/ that is not a corpus file listed in MANIFEST.json.
NOT_CORPUS = {"MANIFEST.json", "README.md", "build.py", "LICENSES"}
REQUIRED_LANGUAGES = ["en", "tr", "de", "ru", "zh", "ja", "ar", "hi", "es", "fr", "ko", "vi"]
MAX_TOTAL_BYTES = 5 * 1024 * 1024
COMMENT = {"python": "#", "ruby": "#"}  # all other code corpora use //


@pytest.fixture(scope="module")
def manifest() -> dict:
    assert MANIFEST.is_file(), "corpora/MANIFEST.json is missing"
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def files(manifest) -> dict[str, dict]:
    return manifest["files"]


def corpus_paths() -> list[Path]:
    return sorted(p for p in CORPORA.iterdir()
                  if p.name not in NOT_CORPUS and p.name != "__pycache__")


def test_manifest_lists_exactly_the_files_present(files):
    present = {p.name for p in corpus_paths()}
    assert all(p.is_file() for p in corpus_paths()), "unexpected folder in corpora/"
    assert set(files) == present, (
        f"only in MANIFEST: {sorted(set(files) - present)}; "
        f"only on disk: {sorted(present - set(files))}")


def test_bytes_and_sha256_match(files):
    for name, entry in files.items():
        data = (CORPORA / name).read_bytes()
        assert len(data) == entry["bytes"], name
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name


def test_total_bytes_field(manifest, files):
    assert manifest["total_bytes"] == sum(e["bytes"] for e in files.values())


def test_every_file_is_nonempty_utf8():
    for path in corpus_paths():
        data = path.read_bytes()
        assert data, f"{path.name} is empty"
        text = data.decode("utf-8")  # raises on invalid UTF-8
        assert text.strip(), f"{path.name} is blank"
        assert not text.startswith("\ufeff"), f"{path.name} starts with a BOM"


def test_natural_languages(files):
    natural = {name[:-4] for name, e in files.items() if e["kind"] == "natural-language"}
    assert len(natural) >= 15, sorted(natural)
    for lang in REQUIRED_LANGUAGES:
        assert lang in natural, f"corpora/{lang}.txt is missing"
    for lang in natural:
        assert re.fullmatch(r"[a-z]{2}", lang), f"{lang}: not an ISO 639-1 file name"
        assert files[f"{lang}.txt"]["language"] == lang


def test_code_files(files):
    code = {name: e for name, e in files.items() if e["kind"] == "code"}
    assert len(code) >= 4, sorted(code)
    for name, entry in code.items():
        assert name == f"code-{entry['language']}.txt"
        first = (CORPORA / name).read_text(encoding="utf-8").split("\n", 1)[0]
        comment = COMMENT.get(entry["language"], "//")
        assert first.startswith(comment + " ==> "), f"{name}: no file header: {first!r}"


def test_total_size_at_most_5mb():
    total = sum(p.stat().st_size for p in CORPORA.rglob("*") if p.is_file()
                and "__pycache__" not in p.parts)
    assert total <= MAX_TOTAL_BYTES, total


def test_sources_and_licences_recorded(manifest, files):
    for name, entry in files.items():
        assert entry["licence"], name
        assert entry["sources"], name
        for src in entry["sources"]:
            for key in ("name", "registry", "version", "paths", "licence"):
                assert src.get(key), f"{name}: source lacks {key}"
        for lic in entry["licence_files"]:
            assert (CORPORA / lic).is_file(), f"{name}: {lic} is missing"
    texts = manifest["licence_texts"]
    on_disk = {"LICENSES/" + p.name for p in (CORPORA / "LICENSES").iterdir()}
    assert set(texts) == on_disk
    for rel, digest in texts.items():
        assert hashlib.sha256((CORPORA / rel).read_bytes()).hexdigest() == digest, rel
