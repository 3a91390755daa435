"""The CLI is a thin layer over the API: run it as a user would."""

from __future__ import annotations

import json
import subprocess
import sys

from tokforge import Tokenizer


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "tokforge", *args], capture_output=True, text=True, cwd=cwd
    )


def test_train_then_analyze_on_given_files(tmp_path, corpora_dir):
    out = tmp_path / "tok.json"
    files = [str(corpora_dir / "en.txt"), str(corpora_dir / "ru.txt")]
    r = run(
        "train",
        "--vocab-size",
        "600",
        "--pattern",
        "gpt2",
        "--special",
        "<|endoftext|>",
        "-o",
        str(out),
        "--json",
        *files,
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["vocab_size"] == 600 and info["files"] == 2
    tok = Tokenizer.from_file(out)
    assert tok.special_tokens == {"<|endoftext|>": 0}
    r = run("analyze", "-t", str(out), "--json", *files)
    assert r.returncode == 0, r.stderr
    rows = [r for r in json.loads(r.stdout)["rows"] if r["metric"] == "bytes_per_token"]
    assert [row["language"] for row in rows] == ["en", "ru"]
    assert all(row["value"] > 1.0 for row in rows)


def test_train_defaults_to_the_shipped_corpora(tmp_path, corpora_dir):
    out = tmp_path / "t.json"
    r = run("train", "--vocab-size", "300", "-q", "-o", str(out), "--json", cwd=corpora_dir.parent)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["files"] == len(list(corpora_dir.glob("*.txt")))


def test_train_refuses_to_overwrite(tmp_path, corpora_dir):
    out = tmp_path / "keep.json"
    out.write_text("precious")
    r = run("train", "--vocab-size", "300", "-o", str(out), str(corpora_dir / "en.txt"))
    assert r.returncode == 2 and "exists" in r.stderr
    assert out.read_text() == "precious"


def test_errors_are_one_line_not_tracebacks(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe")
    r = run("train", "--vocab-size", "300", "-o", str(tmp_path / "o.json"), str(bad))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "byte offset 0" in r.stderr


def test_tokenize_streams_files_with_the_ids_of_the_whole(tmp_path, corpora_dir, gpt2_file):
    f = tmp_path / "big.txt"
    text = "".join((corpora_dir / n).read_text() for n in ["code-rust.txt", "ja.txt", "en.txt"])
    f.write_text(text * 2)
    r = run("tokenize", "-t", str(gpt2_file), str(f))
    assert r.returncode == 0, r.stderr
    ids = [int(x) for x in r.stdout.split()]
    assert ids == Tokenizer.from_file(gpt2_file).encode_ordinary(text * 2)


def test_tokenize_json_and_pieces_from_stdin(gpt2_file):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "tokforge",
            "tokenize",
            "-t",
            str(gpt2_file),
            "--json",
            "--pieces",
            "--allow-special",
            "-",
        ],
        input="<|endoftext|>hello world",
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["ids"] == [50256, 31373, 995]
    assert rec["pieces"] == ["<|endoftext|>", "hello", " world"]


def test_tokenize_unknown_tokenizer_is_a_clear_error():
    r = run("tokenize", "-t", "no-such-run")
    assert r.returncode == 2 and "no-such-run" in r.stderr
