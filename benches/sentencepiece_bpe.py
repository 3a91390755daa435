"""SentencePiece-style and GGUF vocabularies: single-thread encode speed of tokforge against the
peer that defines each vocabulary's ids, ids checked identical in the same run.

Rows (one vocabulary each, the peer named):

- ``llama2.json``: Llama-2's SentencePiece-style ``tokenizer.json`` (wordllama), HF ``tokenizers``;
- ``mistral_v1.model``: Mistral v1's SentencePiece ``.model`` file, the ``sentencepiece`` package;
- ``llama-spm.gguf``: llama.cpp's Llama-2 GGUF vocabulary, HF ``tokenizers`` on ``llama2.json``
  (the same ids, tests/test_gguf.py);
- ``gpt-2.gguf``: llama.cpp's GPT-2 GGUF vocabulary, tiktoken's ``gpt2`` (whisper's rank file);
- ``llama-bpe.gguf``: llama.cpp's Llama-3 GGUF vocabulary, HF ``tokenizers`` on the
  ``tokenizer.json`` tokforge exports from it.

The text is the repo's ``corpora/*.txt`` (1.6 MB: 30 languages and 9 programming languages),
cut into paragraphs, encoded one call per paragraph on one thread; each timing is the median of
``--repeat`` passes after a warm-up pass. MB = 10^6 bytes of UTF-8 input.

    .venv/bin/python benches/sentencepiece_bpe.py               # table on stderr
    .venv/bin/python benches/sentencepiece_bpe.py --json        # JSON lines on stdout too
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ["TOKENIZERS_PARALLELISM"] = "false"

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

from common import format_table, json_line, machine_info  # noqa: E402
from vocabularies import fetch, fetch_llama_cpp_vocab  # noqa: E402

GPT2_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""


def paragraphs() -> list[str]:
    docs = []
    for p in sorted((ROOT / "corpora").glob("*.txt")):
        docs += [d for d in p.read_text(encoding="utf-8").split("\n\n") if d.strip()]
    return docs


def gpt2_tiktoken():
    import tiktoken

    ranks = {}
    for line in fetch("gpt2.tiktoken").read_bytes().splitlines():
        if line:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    return tiktoken.Encoding("gpt2", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


def rows():
    """(vocabulary, peer, tokforge encode, peer encode), each a function of one text."""
    import sentencepiece
    import tokenizers
    from tokforge import Tokenizer

    llama2_json = str(fetch("llama2_tokenizer.json"))
    hf_llama2 = tokenizers.Tokenizer.from_file(llama2_json)

    def hf(t):
        return lambda d: t.encode(d, add_special_tokens=False).ids

    tf = Tokenizer.from_file(llama2_json)
    yield "llama2.json", "tokenizers", lambda d: tf.encode(d, allowed_special="all"), hf(hf_llama2)
    mistral = str(fetch("mistral_v1.model"))
    tm = Tokenizer.from_sentencepiece(mistral)
    sp = sentencepiece.SentencePieceProcessor(model_file=mistral)
    yield "mistral_v1.model", "sentencepiece", lambda d: tm.encode(d, disallowed_special=()), sp.encode
    tg = Tokenizer.from_gguf(fetch_llama_cpp_vocab("llama-spm"))
    yield "llama-spm.gguf", "tokenizers", lambda d: tg.encode(d, allowed_special="all"), hf(hf_llama2)
    t2 = Tokenizer.from_gguf(fetch_llama_cpp_vocab("gpt-2"))
    enc = gpt2_tiktoken()
    yield "gpt-2.gguf", "tiktoken", t2.encode_ordinary, enc.encode_ordinary
    t3 = Tokenizer.from_gguf(fetch_llama_cpp_vocab("llama-bpe"))
    hf3 = tokenizers.Tokenizer.from_str(t3.to_json())
    yield "llama-bpe.gguf", "tokenizers", t3.encode_ordinary, hf(hf3)


def timed(fn, docs, repeat: int) -> tuple[float, list[list[int]]]:
    out = [fn(d) for d in docs]  # warm-up, and the ids
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for d in docs:
            fn(d)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="JSON lines on stdout")
    args = ap.parse_args()
    docs = paragraphs()
    mb = sum(len(d.encode()) for d in docs) / 1e6
    print(f"{len(docs)} paragraphs, {mb:.2f} MB, 1 thread, median of {args.repeat}",
          file=sys.stderr)
    table = []
    for vocab, peer, ours, theirs in rows():
        t_ours, ids_ours = timed(ours, docs, args.repeat)
        t_peer, ids_peer = timed(theirs, docs, args.repeat)
        same = ids_ours == ids_peer
        if not same:
            bad = sum(a != b for a, b in zip(ids_ours, ids_peer))
            print(f"{vocab}: {bad} paragraphs differ from {peer}", file=sys.stderr)
        row = {"vocab": vocab, "peer": peer, "tokforge_mb_s": round(mb / t_ours, 2),
               "peer_mb_s": round(mb / t_peer, 2), "ratio": round(t_peer / t_ours, 2),
               "ids_identical": same}
        if args.json:
            print(json_line({**row, "machine": machine_info()}))
        table.append(list(row.values()))
    print(format_table(["vocabulary", "peer", "tokforge MB/s", "peer MB/s", "speed-up",
                        "ids identical"], table), file=sys.stderr)
    return 0 if all(r[-1] for r in table) else 1


if __name__ == "__main__":
    sys.exit(main())
