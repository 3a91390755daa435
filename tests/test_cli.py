"""The CLI is a thin layer over the API: run it as a user would. One test per trap of issue 18
(the CLI behaving like spm_encode / git): special tokens, presets, repeated -t, line-oriented
streaming tokenize/decode, exit codes, progress, vocabulary warnings, invalid UTF-8, help."""

from __future__ import annotations

import json
import re
import select
import signal
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tokforge import InputError, Tokenizer
from tokforge.cli import build_parser
from tokforge.cli_tokenize import format_ids


def run(*args, cwd=None, input=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "tokforge", *args],
        capture_output=True,
        text=isinstance(input, str) or input is None,
        cwd=cwd,
        input=input,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def small_tok(tmp_path_factory, corpora_dir):
    """A 600-token BPE with <|endoftext|> trained through the CLI."""
    out = tmp_path_factory.mktemp("tok") / "tok.json"
    r = run("train", "--vocab-size", "600", "--special", "<|endoftext|>", "-q", "-o", str(out),
            str(corpora_dir / "en.txt"), str(corpora_dir / "ru.txt"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out


def test_train_then_analyze_on_given_files(tmp_path, corpora_dir):
    out = tmp_path / "tok.json"
    files = [str(corpora_dir / "en.txt"), str(corpora_dir / "ru.txt")]
    r = run("train", "--vocab-size", "600", "--pattern", "gpt2", "--special", "<|endoftext|>",
            "-o", str(out), "--json", *files)  # fmt: skip
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["vocab_size"] == 600 and info["files"] == 2 and info["reached"] is True
    assert Tokenizer.from_file(out).special_tokens == {"<|endoftext|>": 0}
    r = run("analyze", "-t", str(out), "--json", *files)
    assert r.returncode == 0, r.stderr
    rows = [r for r in json.loads(r.stdout)["rows"] if r["metric"] == "bytes_per_token"]
    assert [row["language"] for row in rows] == ["en", "ru"]
    assert all(row["value"] > 1.0 for row in rows)


def test_train_defaults_to_the_shipped_corpora_and_writes_the_demo_run(tmp_path, corpora_dir):
    r = run("train", "--vocab-size", "300", "-q", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["files"] == len(list(corpora_dir.glob("*.txt")))
    assert (tmp_path / "runs" / "demo" / "tokenizer.json").is_file()
    r = run("tokenize", cwd=tmp_path, input="hello world\n")  # -t demo is that run
    assert r.returncode == 0, r.stderr
    tok = Tokenizer.from_file(tmp_path / "runs" / "demo" / "tokenizer.json")
    assert r.stdout == " ".join(map(str, tok.encode_ordinary("hello world"))) + "\n"


def test_special_option_takes_one_token_and_leaves_the_file_alone(tmp_path, corpora_dir):
    """`--special "<s>" corpora/en.txt` used to swallow the file as a second special token."""
    out = tmp_path / "t.json"
    r = run("train", "--vocab-size", "400", "--special", "<s>", str(corpora_dir / "en.txt"),
            "-q", "--json", "-o", str(out), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["files"] == 1
    assert Tokenizer.from_file(out).special_tokens == {"<s>": 0}
    r = run("train", "--special", "<s>", "--special", "</s>", "--vocab-size", "400", "-q",
            "-o", str(out), "--force", str(corpora_dir / "en.txt"))  # fmt: skip
    assert Tokenizer.from_file(out).special_tokens == {"<s>": 0, "</s>": 1}


def test_unknown_pattern_preset_is_a_usage_error_listing_the_presets(tmp_path, corpora_dir):
    r = run("train", "--pattern", "gpt4", "-o", str(tmp_path / "o.json"),
            str(corpora_dir / "en.txt"))  # fmt: skip
    assert r.returncode == 2
    assert "gpt4" in r.stderr and all(p in r.stderr for p in ("gpt2", "cl100k", "o200k"))
    assert not (tmp_path / "o.json").exists()
    r = run("train", "--pattern", r"\w+|\s+", "--vocab-size", "300", "-q", "-o",
            str(tmp_path / "o.json"), str(corpora_dir / "en.txt"))  # fmt: skip
    assert r.returncode == 0, r.stderr  # a regex is still a regex


def test_repeated_t_compares_every_tokenizer_in_analyze(tmp_path, corpora_dir, small_tok):
    other = tmp_path / "other.json"
    assert run("train", "--vocab-size", "300", "-q", "-o", str(other),
               str(corpora_dir / "en.txt")).returncode == 0  # fmt: skip
    r = run("analyze", "-t", str(small_tok), "-t", str(other), "--json", "-q",
            str(corpora_dir / "en.txt"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert {row["tokenizer"] for row in json.loads(r.stdout)["rows"]} - {"*"} == {"tok", "other"}


def test_repeated_t_where_one_tokenizer_is_used_is_a_usage_error(small_tok):
    r = run("tokenize", "-t", str(small_tok), "-t", str(small_tok), input="x\n")
    assert r.returncode == 2 and "more than once" in r.stderr


def test_tokenize_prints_one_line_of_ids_per_input_line(small_tok):
    lines = ["hello world", "", "Всеобщая декларация", "the <|endoftext|> end"]
    r = run("tokenize", "-t", str(small_tok), input="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    tok = Tokenizer.from_file(small_tok)
    expected = [" ".join(map(str, tok.encode_ordinary(line))) for line in lines]
    assert r.stdout.split("\n") == [*expected, ""]
    r = run("tokenize", "-t", str(small_tok), "--allow-special", input=lines[3])
    assert r.stdout == " ".join(map(str, tok.encode(lines[3], allowed_special="all"))) + "\n"


def test_tokenize_by_file_gives_one_json_record_with_the_ids_of_the_whole_file(
    tmp_path, corpora_dir, small_tok
):
    big = tmp_path / "big.txt"
    text = "".join((corpora_dir / n).read_text() for n in ["code-rust.txt", "ja.txt", "en.txt"])
    big.write_text(text * 2)  # several 1 MB reads, a record per file, not per block
    small = tmp_path / "small.txt"
    small.write_text("hello\nworld")
    r = run("tokenize", "-t", str(small_tok), "--by", "file", "--format", "json", str(big),
            str(small))  # fmt: skip
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    tok = Tokenizer.from_file(small_tok)
    assert [rec["file"] for rec in recs] == [str(big), str(small)]
    assert recs[0]["ids"] == tok.encode_ordinary(text * 2)
    assert recs[1]["ids"] == tok.encode_ordinary("hello\nworld")
    assert len(recs[1]["pieces"]) == len(recs[1]["ids"])


def test_tokenize_then_decode_gives_the_text_back(tmp_path, corpora_dir, small_tok):
    src = tmp_path / "in.txt"
    data = (corpora_dir / "ja.txt").read_bytes() + b"\n\nend without newline"
    src.write_bytes(data)
    for by, expected in [("line", data + b"\n"), ("file", data)]:
        ids = run("tokenize", "-t", str(small_tok), "--by", by, str(src)).stdout
        r = run("decode", "-t", str(small_tok), "--by", by, input=ids.encode())
        assert r.returncode == 0, r.stderr
        assert r.stdout == expected
    js = run("tokenize", "-t", str(small_tok), "--format", "json", str(src)).stdout
    r = run("decode", "-t", str(small_tok), "--format", "json", input=js.encode())
    assert r.stdout == data + b"\n"


def test_decode_names_the_line_of_a_bad_id(small_tok):
    r = run("decode", "-t", str(small_tok), input="1 2 3\n4 x 5\n")
    assert r.returncode == 1 and "line 2" in r.stderr and "'x'" in r.stderr
    r = run("decode", "-t", str(small_tok), input="99999999\n")
    assert r.returncode == 1 and "line 1" in r.stderr and "Traceback" not in r.stderr


def test_tokenize_pieces_show_spaces_and_bytes_visibly(small_tok):
    r = run("tokenize", "-t", str(small_tok), "--format", "pieces", input="a b\tc\n")
    pieces = r.stdout.rstrip("\n").split(" ")
    assert "".join(pieces).replace("\u2581", " ").replace("<0x09>", "\t") == "a b\tc"


def test_tokenize_streams_output_before_its_input_ends(small_tok):
    """A line typed into stdin comes out as ids at once, not at EOF or after 64 KB."""
    cmd = [sys.executable, "-m", "tokforge", "tokenize", "-t", str(small_tok)]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as p:  # fmt: skip
        p.stdin.write(b"hello world\n")
        p.stdin.flush()
        ready, _, _ = select.select([p.stdout], [], [], 120)
        assert ready, "no output while stdin is still open"
        line = p.stdout.readline().decode()
        tok = Tokenizer.from_file(small_tok)
        assert line == " ".join(map(str, tok.encode_ordinary("hello world"))) + "\n"
        assert p.poll() is None  # still waiting for more input
        p.stdin.close()
        assert p.wait(timeout=60) == 0


def test_ctrl_c_exits_130_without_a_traceback(small_tok):
    cmd = [sys.executable, "-m", "tokforge", "tokenize", "-t", str(small_tok)]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as p:  # fmt: skip
        p.stdin.write(b"hello\n")
        p.stdin.flush()
        assert select.select([p.stdout], [], [], 120)[0]  # running, waiting for more input
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and err.decode().strip() == "tokforge: interrupted"


def test_exit_codes_tell_usage_errors_from_failures(tmp_path, small_tok):
    assert run("--version").returncode == 0
    assert run("tokenize", "--no-such-option").returncode == 2
    assert run("train", "--vocab-size", "0").returncode == 2
    assert run("train", "--vocab-size", "many").returncode == 2
    assert run("analyze", "-t", str(small_tok), "--corpus", str(tmp_path), "x.txt").returncode == 2
    r = run("tokenize", "-t", str(tmp_path / "missing.json"), input="x")
    assert r.returncode == 1 and r.stderr.startswith("tokforge: error: ")


def test_train_refuses_to_overwrite(tmp_path, corpora_dir):
    out = tmp_path / "keep.json"
    out.write_text("precious")
    r = run("train", "--vocab-size", "300", "-o", str(out), str(corpora_dir / "en.txt"))
    assert r.returncode == 1 and "exists" in r.stderr and "--force" in r.stderr
    assert out.read_text() == "precious"


def test_errors_are_one_line_not_tracebacks(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe")
    r = run("train", "--vocab-size", "300", "-o", str(tmp_path / "o.json"), str(bad))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "byte offset 0" in r.stderr


def test_unreachable_vocab_size_is_warned_about(tmp_path, corpora_dir):
    r = run("train", "--vocab-size", "1000000", "-q", "--json", "-o", str(tmp_path / "t.json"),
            str(corpora_dir / "yo.txt"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["reached"] is False and info["vocab_size"] < 1_000_000
    assert f"stopped at {info['vocab_size']:,} of the 1,000,000 requested" in r.stderr


def test_invalid_utf8_on_stdin_is_an_error_unless_replace_is_asked(small_tok):
    data = b"good line\nbad \xff byte\n"
    r = run("tokenize", "-t", str(small_tok), input=data)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "stdin: invalid UTF-8 at byte offset 14 (line 2)" in err and "--errors replace" in err
    r = run("tokenize", "-t", str(small_tok), "--errors", "replace", input=data)
    assert r.returncode == 0
    tok = Tokenizer.from_file(small_tok)
    assert r.stdout.decode().split("\n")[1] == " ".join(
        map(str, tok.encode_ordinary("bad \ufffd byte")))


def test_demo_run_missing_says_how_to_create_it(tmp_path):
    r = run("tokenize", cwd=tmp_path, input="x\n")
    assert r.returncode == 1
    assert "demo" in r.stderr and "tokforge train" in r.stderr and "Traceback" not in r.stderr


def test_progress_in_logs_shows_stages_and_integer_merge_counts(tmp_path, corpora_dir):
    r = run("train", "--vocab-size", "500", "-o", str(tmp_path / "t.json"),
            str(corpora_dir / "en.txt"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith("count: ") and "indexing pairs..." in lines
    merges = [re.match(r"merge: (\d+)/(\d+) merges \((\d+)%\) \[.*merges/s\]$", x) for x in lines]
    merges = [m.groups() for m in merges if m]
    assert merges[0][:2] == ("0", "244") and merges[-1] == ("244", "244", "100")


def test_fim_shows_progress(corpora_dir):
    r = run("fim", "--prefix", "def pa", "--vocab-size", "300", "--order", "2", "--max-bytes",
            "4", "--train", str(corpora_dir / "code-python.txt"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "training a 300-token tokenizer" in r.stderr and "fitting the 2-gram LM" in r.stderr
    assert "merge: 44/44 merges (100%)" in r.stderr


def test_every_subcommand_has_help_with_defaults_and_examples():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0]  # the subcommands
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "examples:" in text, name
        assert "``" not in text and ":class:" not in text, name
        for action in p._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    assert "(default: 8000 for bpe" in sub.choices["train"].format_help()
    assert "(default: cl100k)" in sub.choices["train"].format_help()


def test_completion_script_names_the_subcommands():
    r = run("completion", "bash")
    assert r.returncode == 0, r.stderr
    assert "tokforge" in r.stdout and all(c in r.stdout for c in ("tokenize", "decode", "analyze"))


def test_corpora_lists_and_copies_the_shipped_text(tmp_path, corpora_dir):
    r = run("corpora", "--json")
    files = json.loads(r.stdout)["files"]
    assert {f["name"] for f in files} == {p.stem for p in corpora_dir.glob("*.txt")}
    r = run("corpora", "--copy", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c" / "en.txt").read_bytes() == (corpora_dir / "en.txt").read_bytes()
    assert run("corpora", "--copy", str(tmp_path / "c")).returncode == 1  # exists: --force


def test_unknown_tokenizer_is_a_clear_error():
    r = run("tokenize", "-t", "no-such-run", input="x")
    assert r.returncode == 1 and "no-such-run" in r.stderr


def test_plugin_modules_are_registered_with_their_run(monkeypatch):
    """A `cli_<name>.py` module plugs in with one line in PLUGINS."""
    import types

    from tokforge import cli

    mod = types.ModuleType("tokforge.cli_hello")
    mod.add_parser = lambda sub: sub.add_parser("hello", help="say hello")  # type: ignore[attr-defined]
    mod.run = lambda args: 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tokforge.cli_hello", mod)
    monkeypatch.setattr(cli, "PLUGINS", [*cli.PLUGINS, "cli_hello"])
    assert cli.main(["hello"]) == 7


@given(st.lists(st.lists(st.integers(0, 2**32 - 1), max_size=6), max_size=8))
def test_native_id_formatting_equals_joining_str_of_each_id(docs):
    ids = np.array([i for d in docs for i in d], dtype=np.uint32)
    offsets = np.cumsum([0] + [len(d) for d in docs]).astype(np.int64)
    expected = "".join(" ".join(map(str, d)) + "\n" for d in docs).encode()
    assert format_ids(ids, offsets) == expected


def test_native_id_formatting_refuses_offsets_that_do_not_cover_the_ids():
    ids = np.array([1, 2, 3], dtype=np.uint32)
    for offsets in ([0, 2], [1, 3], [0, 2, 1, 3], []):
        with pytest.raises(InputError, match="offsets must rise from 0 to len"):
            format_ids(ids, np.array(offsets, dtype=np.int64))
