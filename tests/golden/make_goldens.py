"""Goldens of tokforge's own outputs, saved before the one-model refactor (issue 10): ids,
merges, vocabularies, LiB lexicons, dynamic-merging logs and next-byte probabilities.

Each ``case_*`` function computes one JSON-able record through the public API only
(``tokforge.Tokenizer``, ``tokforge.lib_model``, ``tokforge.dynamic``, ``tokforge.byte_probs``);
``tests/test_goldens.py`` runs the same functions and compares with the stored files, so the
goldens and the test can never compute different things.

Regenerate (only when a behaviour change is intended, and say so in the commit)::

    .venv/bin/python tests/golden/make_goldens.py

Conventions: token bytes are hex strings; long id lists are stored as ``{"n", "sha256",
"head"}`` (sha256 of the ids as comma-separated decimal text); probabilities are rounded to
12 decimals and compared to within 1e-12.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPORA = ROOT / "corpora"
sys.path.insert(0, str(HERE.parent))  # tests/ (vocabularies.py)

#: bytes of each corpora/ file that the trained tokenizers encode (cut on a character boundary)
CUT = 3000
#: files the small BPE and LiB tokenizers learn from
TRAIN_FILES = ("en", "de", "ru", "zh", "code-python")
BPE_SETTINGS = {
    # name: (pattern, vocab_size, tie_order)
    "gpt2": ("gpt2", 600, "hf"),
    "cl100k": ("cl100k", 600, "hf"),
    "o200k": ("o200k", 600, "bytes"),
}
SPECIAL = "<|endoftext|>"
REAL_FILES = ("en", "zh", "ar", "code-rust", "hi")
#: files whose ids are stored in full (the others as length, sha256 and head)
FULL_IDS = ("en", "zh", "ru", "code-python")
PROB_ROUND = 12


# ---- helpers --------------------------------------------------------------------------------
def corpus_names() -> list[str]:
    return sorted(p.stem for p in CORPORA.glob("*.txt"))


def corpus_text(name: str, cut: int | None = CUT) -> str:
    text = (CORPORA / f"{name}.txt").read_text(encoding="utf-8")
    if cut is None:
        return text
    return text.encode("utf-8")[:cut].decode("utf-8", "ignore")


def hexs(b: bytes) -> str:
    return bytes(b).hex()


def ids_digest(ids: Any) -> str:
    return hashlib.sha256(",".join(str(int(i)) for i in ids).encode()).hexdigest()


def summary(ids: Any, head: int = 32) -> dict[str, Any]:
    """A long id list as its length, sha256 and first ``head`` ids."""
    ids = [int(i) for i in ids]
    return {"n": len(ids), "sha256": ids_digest(ids), "head": ids[:head]}


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def probs(p: Any) -> list[float]:
    return [round(float(x), PROB_ROUND) for x in np.asarray(p, dtype=np.float64)]


def special_text(a: str, b: str, special: str) -> str:
    """Two texts joined by a special token, with the special's text glued to words."""
    return a[:400] + special + b[:400] + " x" + special + "y"


# ---- (1) trained BPE ------------------------------------------------------------------------
_TRAINED: dict[str, Any] = {}


def trained_bpe(name: str):
    from tokforge import Tokenizer

    if name not in _TRAINED:
        pattern, vocab_size, tie = BPE_SETTINGS[name]
        _TRAINED[name] = Tokenizer.train(
            [CORPORA / f"{f}.txt" for f in TRAIN_FILES],
            vocab_size=vocab_size,
            pattern=pattern,
            special_tokens=[SPECIAL],
            tie_order=tie,
            num_threads=1,
        )
    return _TRAINED[name]


def case_bpe_model(name: str) -> dict[str, Any]:
    """Vocabulary, merges and merge counts of a trained BPE, and its saved file."""
    tok = trained_bpe(name)
    return {
        "settings": dict(zip(("pattern", "vocab_size", "tie_order"), BPE_SETTINGS[name]),
                         train_files=list(TRAIN_FILES), special=SPECIAL),
        "vocab_size": tok.vocab_size,
        "pattern": tok.pattern,
        "special_tokens": tok.special_tokens,
        "vocab": [hexs(tok.id_to_token(i)) for i in range(tok.vocab_size)],
        "merges": [[hexs(a), hexs(b)] for a, b in tok.merges],
        "merge_counts": tok.merge_counts,
        "to_json_sha256": text_digest(tok.to_json()),
    }


def case_bpe_encode(name: str) -> dict[str, Any]:
    """Ids of every corpora/ file (first 3 KB) and of texts with the special token."""
    tok = trained_bpe(name)
    names = corpus_names()
    texts = [corpus_text(n) for n in names]
    out: dict[str, Any] = {
        "ids": {n: tok.encode(t) if n in FULL_IDS else summary(tok.encode(t))
                for n, t in zip(names, texts)}
    }
    flat, offs = tok.encode_batch_numpy(texts, num_threads=1)
    out["batch_numpy_sha256"] = ids_digest(flat.tolist()) + ":" + ids_digest(offs.tolist())
    spans = [tok.encode_with_offsets(t, unit=u)[1] for t in texts[:8] for u in ("bytes", "chars")]
    out["spans_sha256"] = ids_digest(x for s in spans for se in s for x in se)
    mixed = special_text(corpus_text("en"), corpus_text("de"), SPECIAL)
    out["special_allowed"] = tok.encode(mixed, allowed_special="all")
    out["special_as_text"] = tok.encode(mixed, disallowed_special=())
    out["ordinary"] = tok.encode_ordinary(mixed)
    out["pretokenize_en"] = tok.pretokenize(corpus_text("en", 600))
    return out


# ---- (2) real vocabularies ------------------------------------------------------------------
REAL_VOCABS = ("gpt2.tiktoken", "cl100k_base.tiktoken", "tekken_240911.json")
_REAL: dict[str, Any] = {}


def real_tokenizer(fname: str):
    from tokforge import Tokenizer
    from vocabularies import fetch

    if fname not in _REAL:
        _REAL[fname] = Tokenizer.from_file(fetch(fname))
    return _REAL[fname]


def case_real(fname: str) -> dict[str, Any]:
    """Ids of whole corpora files (summaries), the vocabulary's sha256, special handling."""
    tok = real_tokenizer(fname)
    from tokforge import TokforgeError

    table = hashlib.sha256()
    holes = []
    for i in range(tok.vocab_size):
        try:
            t = tok.id_to_token(i)
        except TokforgeError as e:  # an unused id between the ranks and the specials
            holes.append([i, type(e).__name__])
            continue
        table.update(len(t).to_bytes(4, "little") + t)
    specials = sorted(tok.special_tokens.items(), key=lambda kv: kv[1])[:3]
    mixed = "".join(f"a{s} b{s}" for s, _ in specials) + corpus_text("fr", 300)
    return {
        "vocab_size": tok.vocab_size,
        "pattern": tok.pattern,
        "n_special": len(tok.special_tokens),
        "token_table_sha256": table.hexdigest(),
        "holes": holes,
        "ids": {n: summary(tok.encode(corpus_text(n, None))) for n in REAL_FILES},
        "special_allowed": tok.encode(mixed, allowed_special="all"),
        "special_as_text": tok.encode(mixed, disallowed_special=()),
    }


# ---- (3) LiB --------------------------------------------------------------------------------
def lib_sentences(names: tuple[str, ...] = ("en", "fr"), lines: int = 60) -> list[str]:
    from tokforge import lib_model

    out: list[str] = []
    for n in names:
        out.extend(lib_model.read_sentences(texts=[corpus_text(n, None)])[:lines])
    return out


def case_lib_learn(name: str) -> dict[str, Any]:
    """The raw learner's (L, P, clean L) and the three segmenters on its lexicon."""
    from tokforge import lib_model
    from tokforge.lib_model import LibConfig

    configs = {
        "reference": (LibConfig.reference(seed=3, article_len=10), 40),
        "default": (LibConfig(seed=11, article_len=10), 40),
        "no_supra": (LibConfig(seed=5, article_len=8, pretokenize="gpt2"), 30),
    }
    cfg, steps = configs[name]
    sents = lib_sentences()
    L, P, clean = lib_model.learn(sents, steps=steps, config=cfg)
    probe = lib_sentences(("en",), 70)[60:70]
    return {
        "L": L,
        "P": P,
        "clean": clean,
        "apply": {
            seg: lib_model.apply(clean, probe, segmenter=seg)
            for seg in ("lib", "reference", "greedy")
        },
    }


_LIB: dict[str, Any] = {}


def lib_tokenizer(name: str):
    from tokforge import Tokenizer
    from tokforge.lib_model import LibConfig

    settings = {
        "emergent": (None, LibConfig(steps=60, seed=5, article_len=20)),
        "sized_greedy_gpt2": (
            700,
            LibConfig(steps=60, seed=9, article_len=20, segmenter="greedy", pretokenize="gpt2"),
        ),
    }
    if name not in _LIB:
        vocab_size, cfg = settings[name]
        _LIB[name] = Tokenizer.train(
            [CORPORA / f"{f}.txt" for f in TRAIN_FILES],
            vocab_size=vocab_size,
            algorithm="lib",
            lib=cfg,
            special_tokens=[SPECIAL],
        )
    return _LIB[name]


def case_lib_tokenizer(name: str) -> dict[str, Any]:
    """A trained LiB tokenizer: its tokens by id, its file, its ids on every corpora file."""
    from tokforge import lib_model
    from tokforge.report import compression_report

    tok = lib_tokenizer(name)
    names = corpus_names()
    texts = [corpus_text(n) for n in names]
    mixed = special_text(corpus_text("en"), corpus_text("ru"), SPECIAL)
    [stats] = compression_report(tok, {"first six": texts[:6]})
    return {
        "vocab_size": tok.vocab_size,
        "vocab": [hexs(tok.id_to_token(i)) for i in range(tok.vocab_size)],
        "to_json_sha256": text_digest(tok.to_json()),
        "ids": {n: summary(tok.encode(t)) for n, t in zip(names, texts)},
        "ids_en": tok.encode(texts[names.index("en")]),
        "batch": [summary(x) for x in tok.encode_batch(texts[:6], num_threads=1)],
        "special_allowed": tok.encode(mixed, allowed_special="all"),
        "spans_sha256": ids_digest(
            x for se in tok.encode_with_offsets(corpus_text("en"))[1] for x in se
        ),
        "multiword_share": round(lib_model.multiword_share(tok.model), PROB_ROUND),
        "corpus_stats": {
            "tokens": stats.tokens,
            "types": stats.types,
            "bytes": stats.bytes,
            "tokens_per_byte": stats.tokens_per_byte,
        },
    }


# ---- (4) dynamic merging --------------------------------------------------------------------
def dynamic_texts() -> list[str]:
    lines: list[str] = []
    for n in ("en", "de", "code-python"):
        lines.extend(x for x in corpus_text(n, 2500).split("\n") if x.strip())
    return lines[:24]


DYNAMIC_OPTIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "min_count_1": {"min_count": 1},
    "whitespace": {"word_boundaries": "whitespace", "min_count": 1},
    "hyphen_bytes": {"word_boundaries": "whitespace_hyphen", "identity": "bytes"},
    "none_max_merges": {"word_boundaries": "none", "max_merges": 40},
    "per_sample": {"per_sample": True, "min_count": 1, "max_unit_constituents": 3},
    "word_level_half": {"target_reduction": 0.5, "relative_to": "word_level", "min_count": 1},
    "keep_last_length": {"keep_last": 2, "min_count": 1, "target_length": 400},
}


def merge_record(r) -> dict[str, Any]:
    def key(k):
        return hexs(k) if isinstance(k, bytes) else list(k)

    ub = r.unit_bytes
    return {
        "merges": [[key(m.left), key(m.right), key(m.new), m.count, m.applied, m.sample]
                   for m in r.merges],
        "sequences": [s.tolist() for s in r.sequences()],
        "units": [list(u) for u in r.units],
        "unit_bytes": None if ub is None else [hexs(b) for b in ub],
        "spans_sha256": ids_digest(r.spans.ravel().tolist()),
        "word_ids_sha256": ids_digest(r.word_ids.tolist()),
        "lengths": [r.len_initial, r.len_final, r.len_word_level],
    }


def case_dynamic(name: str) -> dict[str, Any]:
    """Merge log and output of ``merge_batch_texts`` (trained BPE), with each option set."""
    from tokforge.dynamic import merge_batch_texts

    r = merge_batch_texts(dynamic_texts(), trained_bpe("gpt2"), num_threads=1,
                          **DYNAMIC_OPTIONS[name])
    return merge_record(r)


def case_dynamic_foreign(name: str) -> dict[str, Any]:
    """The same through foreign tokenizer objects and through raw ids with ``word_ids``."""
    from tokforge.dynamic import merge_batch, merge_batch_texts

    texts = dynamic_texts()[:12]
    if name == "tiktoken_gpt2":
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe
        from vocabularies import fetch

        enc = tiktoken.Encoding(
            name="gpt2_golden",
            pat_str=trained_bpe("gpt2").pattern,
            mergeable_ranks=load_tiktoken_bpe(str(fetch("gpt2.tiktoken"))),
            special_tokens={SPECIAL: 50256},
        )
        r = merge_batch_texts(texts, enc, min_count=1)
    elif name == "hf_tokenizers":
        from tokenizers import Tokenizer as HFTokenizer

        hf = HFTokenizer.from_str(trained_bpe("cl100k").to_json())
        r = merge_batch_texts(texts, hf, min_count=1, identity="bytes")
    elif name == "raw_word_ids":
        tok = trained_bpe("o200k")
        batch = [tok.encode_ordinary(t) for t in texts]
        word_ids = [[i // 3 for i in range(len(b))] for b in batch]
        r = merge_batch(batch, word_ids=word_ids, min_count=2)
    else:
        raise KeyError(name)
    return merge_record(r)


# ---- (5) byte probabilities -----------------------------------------------------------------
BYTE_PREFIXES = (b"", b"The", b"The Un", b"human rights ", b"of the", b"  ", b"everyone")


def _lines(name: str, n: int) -> list[str]:
    return [x for x in corpus_text(name, None).split("\n") if x.strip()][:n]


_BYTE: dict[str, Any] = {}


def byte_models(name: str):
    """(ByteLM, tokenizer) of a small trained tokenizer and an n-gram LM fitted on its ids."""
    from tokforge import ByteLM, Tokenizer
    from tokforge.lm import NGramLM

    if name not in _BYTE:
        texts = _lines("en", 80)
        if name == "pieces_gpt2":
            tok = Tokenizer.train(texts=texts, vocab_size=330, pattern="gpt2")
            mode = "exact"
        elif name == "pieces_cl100k_fast":
            tok = Tokenizer.train(texts=texts, vocab_size=300, pattern="cl100k")
            mode = "fast"
        elif name.startswith("pair_"):
            # one pre-token piece per string: BPE is prefix-closed, validity is the pair rule
            tok = Tokenizer.train(texts=texts, vocab_size=300, pattern=r"[\s\S]+")
            mode = name.split("_", 1)[1]
        else:
            raise KeyError(name)
        ids = [tok.encode_ordinary(t) for t in texts]
        lm = NGramLM(vocab_size=tok.vocab_size + 1, eos_id=tok.vocab_size, order=3).fit(ids)
        _BYTE[name] = (ByteLM(lm, tok, mode=mode), tok)
    return _BYTE[name]


BYTE_CASES = ("pieces_gpt2", "pieces_cl100k_fast", "pair_exact", "pair_mask", "pair_fast")


def case_byte_lm(name: str) -> dict[str, Any]:
    """Next-byte distributions (start and step-by-step), covers, log-probs, completions."""
    from tokforge.byte_probs import complete_bytes, complete_naive, complete_token_healing

    blm, _ = byte_models(name)
    out: dict[str, Any] = {"validity": blm.validity, "lmax": blm.lmax, "next": {}}
    for x in BYTE_PREFIXES:
        out["next"][x.decode()] = probs(blm.next_byte_probs(blm.start(x)))
    st = blm.start(b"")
    path = []
    for ch in b"The right":
        st = blm.advance(st, ch)
        path.append(probs(blm.next_byte_probs(st)))
    out["path_the_right"] = path
    out["covers_of_the"] = [
        [ids, hexs(o), round(p, PROB_ROUND)] for ids, o, p in blm.covers(blm.start(b"of the"))
    ]
    out["logprob"] = {
        s: round(blm.logprob(s.encode()), 9) for s in ("The right", "of the people", "zz")
    }
    out["complete"] = {
        "bytes": hexs(complete_bytes(blm, b"All human be", 12)),
        "naive": hexs(complete_naive(blm, b"All human be", 12)),
        "healing": hexs(complete_token_healing(blm, b"All human be", 12)),
    }
    return out


def case_byte_section10() -> dict[str, Any]:
    """The worked example (rank toy, one piece per string, TableLM) in the three modes."""
    from tokforge import ByteLM, Tokenizer
    from tokforge.byte_probs import healing_next_byte_probs, naive_next_byte_probs
    from tokforge.lm import TableLM

    a, b, c, bc, abc, eos = 97, 98, 99, 256, 257, 258
    ranks = [(bytes([i]), i) for i in range(256)] + [(b"bc", bc), (b"abc", abc)]
    tok = Tokenizer.from_ranks(ranks, pattern=r"[\s\S]+", special_tokens={"<eos>": eos})
    rows = {(): {a: .2, b: .1, c: .1, bc: .1, abc: .4, eos: .1},
            (a,): {a: .2, b: .4, c: .1, abc: .1, eos: .2},
            (b,): {a: .3, b: .1, bc: .2, abc: .2, eos: .2}}
    rest = {a: .2, b: .2, c: .2, bc: .1, abc: .1, eos: .2}
    out: dict[str, Any] = {}
    for mode in ("exact", "mask", "fast"):
        lm = TableLM(lambda k: rows.get(k, rest), vocab_size=259, eos_id=eos, order=1)
        blm = ByteLM(lm, tok, mode=mode)
        out[mode] = {x.decode(): probs(blm.next_byte_probs(blm.start(x))[[a, b, c, 256]])
                     for x in (b"", b"a", b"ab", b"abc", b"abca")}
        out[mode + "_naive_ab"] = probs(naive_next_byte_probs(blm, b"ab")[[a, b, c, 256]])
        out[mode + "_healing_ab"] = probs(healing_next_byte_probs(blm, b"ab")[[a, b, c, 256]])
    return out


def case_byte_ensemble() -> dict[str, Any]:
    """A two-vocabulary ensemble (uniform and posterior weights)."""
    from tokforge import ByteEnsemble

    m1, _ = byte_models("pieces_gpt2")
    m2, _ = byte_models("pair_exact")
    out: dict[str, Any] = {}
    for key, ens in (("uniform", ByteEnsemble([m1, m2])),
                     ("posterior", ByteEnsemble([m1, m2], [0.3, 0.7], posterior=True))):
        st = ens.start(b"All human")
        rows = []
        for ch in b" beings":
            rows.append(probs(ens.next_byte_probs(st)))
            st = ens.advance(st, ch)
        out[key] = {"rows": rows, "logprob": round(ens.logprob(b"of the"), 9)}
    return out


# ---- the catalogue --------------------------------------------------------------------------
def catalogue() -> dict[str, dict[str, Callable[[], Any]]]:
    """file stem -> case name -> function computing the record."""

    def bind(f, *args):
        return lambda: f(*args)

    return {
        "bpe_models": {n: bind(case_bpe_model, n) for n in BPE_SETTINGS},
        "bpe_encode": {n: bind(case_bpe_encode, n) for n in BPE_SETTINGS},
        "real_vocabularies": {n: bind(case_real, n) for n in REAL_VOCABS},
        "lib_learn": {n: bind(case_lib_learn, n) for n in ("reference", "default", "no_supra")},
        "lib_tokenizer": {n: bind(case_lib_tokenizer, n)
                          for n in ("emergent", "sized_greedy_gpt2")},
        "dynamic": {
            **{n: bind(case_dynamic, n) for n in DYNAMIC_OPTIONS},
            **{n: bind(case_dynamic_foreign, n)
               for n in ("tiktoken_gpt2", "hf_tokenizers", "raw_word_ids")},
        },
        "byte_probs": {
            **{n: bind(case_byte_lm, n) for n in BYTE_CASES},
            "section10": case_byte_section10,
            "ensemble": case_byte_ensemble,
        },
    }


def normalise(x: Any) -> Any:
    """What a record looks like after a JSON round trip (tuples become lists, keys str)."""
    return json.loads(json.dumps(x))


def main() -> None:
    total = 0
    for stem, cases in catalogue().items():
        data = {name: normalise(f()) for name, f in cases.items()}
        path = HERE / f"{stem}.json"
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
        path.write_text(text + "\n", encoding="utf-8")
        total += path.stat().st_size
        print(f"{path.relative_to(ROOT)}: {len(cases)} cases, {path.stat().st_size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
