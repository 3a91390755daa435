"""Long fuzzing of the tokenizer loaders with atheris (libFuzzer's mutator), for ``make fuzz``.

    python tests/fuzz_atheris.py -max_total_time=600 [-jobs=2] [.cache/fuzz/crashes ...]

The seeds are those of ``tests/test_fuzz.py`` (real files cut small, trained tokenizers), written
to ``.cache/fuzz/corpus``; an input is one format byte (``0``: JSON, tokenizer.json / tekken /
LiB; ``1``: a ``.tiktoken`` rank file) and the file's content. The property is test_fuzz's: the
file loads and keeps the model's promises on fixed probe texts, or raises a ``TokforgeError``
naming the file; any other exception (a panic included) is a crash, which libFuzzer saves as
``crash-<sha1>`` (copy it to ``tests/fuzz_regressions/`` with the name it needs).

``make fuzz`` first builds the Rust core with LLVM sanitizer coverage (8-bit counters, PC
table, comparison tracing) into a copy of the package under ``.cache/fuzz/pkg``, so libFuzzer is
guided by the Rust code's branches; without that copy only the Python layer is instrumented.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / ".cache" / "fuzz" / "corpus"
#: a copy of the package whose native core has sanitizer coverage (made by `make fuzz`)
PKG = ROOT / ".cache" / "fuzz" / "pkg"


def write_corpus() -> Path:
    """The seeds of tests/test_fuzz.py as atheris inputs (format byte + content)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import test_fuzz

    seeds = test_fuzz.seed_files()
    CORPUS.mkdir(parents=True, exist_ok=True)
    for key, (name, content) in seeds.items():
        (CORPUS / key).write_bytes(bytes([name.endswith(".tiktoken")]) + content)
    for f in (ROOT / "tests" / "fuzz_regressions").iterdir():
        if f.suffix != ".md":
            (CORPUS / f.name).write_bytes(bytes([f.name.endswith(".tiktoken")]) + f.read_bytes())
    return CORPUS


def main() -> None:
    import atheris

    env: dict = {}

    def one_input(data: bytes) -> None:
        if not data:
            return
        tokforge, tmp = env["tokforge"], env["tmp"]
        name = "gpt2.tiktoken" if data[0] & 1 else "tokenizer.json"
        p = tmp / name
        p.write_bytes(data[1:])
        try:
            tok = (tokforge.Tokenizer.from_file(p, pattern="gpt2") if data[0] & 1
                   else tokforge.Tokenizer.from_file(p))
        except tokforge.TokforgeError as e:
            if str(p) not in str(e):
                raise AssertionError(f"{type(e).__name__} does not name the file: {e}") from e
            return
        env["check_model"](tok, tmp, env["probes"])

    atheris.Setup([sys.argv[0], *sys.argv[1:], str(CORPUS)], one_input)
    if (PKG / "tokforge").is_dir() and "libfuzzer" in os.environ.get("LD_PRELOAD", ""):
        # the native core built with sanitizer coverage (`make fuzz`), whose coverage callbacks
        # come from the libFuzzer preloaded by the Makefile
        sys.path.insert(0, str(PKG))
    with atheris.instrument_imports():
        import tokforge
    print(f"fuzzing {tokforge.__file__}", file=sys.stderr)
    write_corpus()
    from test_fuzz import PROBES, check_model

    env.update(tokforge=tokforge, tmp=Path(tempfile.mkdtemp(prefix="tokforge-fuzz-")),
               check_model=check_model, probes=PROBES)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
