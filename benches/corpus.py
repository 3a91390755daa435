"""Build the BPE-training benchmark corpus from pinned Debian packages.

The corpus is real, multilingual text and source code: the Debian Reference in nine languages,
the Debian Administrator's Handbook in 26 languages (HTML stripped to text), translated man pages
(German, French, Russian, Japanese, Chinese, Polish, Spanish, Italian, Portuguese, Ukrainian,
Dutch, Swedish, Turkish and English), the Python 3.11 documentation sources, and the source code
of Go, Rust, C++ (Boost), Perl and TypeScript.

Every package is pinned to an exact version and fetched with ``apt-get download PKG=VERSION``
into a cache folder, then unpacked with ``dpkg-deb -x``. Files are read in sorted order, decoded
as strict UTF-8 (files that are not UTF-8, or hold NUL bytes, are skipped), normalized to ``\\n``
line ends, and interleaved across the sources by a byte-balanced round robin (always the source
that has contributed the fewest bytes for its weight so far, ties by the fixed source order), so
that any size gets the same mix (the code sources get a double share). Documents are separated by
one blank line. The same size gives the same bytes on every run; the SHA-256 is printed and kept
beside the corpus.

    python benches/corpus.py --mb 60          # writes benches/data/bench-corpus.txt

The corpus is never committed (``benches/data/`` is ignored).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import heapq
import html.parser
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA_DIR = HERE / "data"
CORPUS_NAME = "bench-corpus.txt"
MIB = 1 << 20

# Pinned on Debian 12 (bookworm), read with `apt-cache policy` when this file was written. All
# of them come from the bookworm release itself (not bookworm-security / -updates), so they only
# change at a point release. If one disappears from the archive, build_corpus() says which and
# what is available; update the pin (and expect a new corpus SHA-256).
PACKAGES: dict[str, str] = {
    "debian-reference-de": "2.100",
    "debian-reference-en": "2.100",
    "debian-reference-es": "2.100",
    "debian-reference-fr": "2.100",
    "debian-reference-it": "2.100",
    "debian-reference-ja": "2.100",
    "debian-reference-pt": "2.100",
    "debian-reference-zh-cn": "2.100",
    "debian-reference-zh-tw": "2.100",
    "debian-handbook": "11.20220922",
    "manpages": "6.03-2",
    "manpages-dev": "6.03-2",
    "manpages-de": "4.18.1-1",
    "manpages-es": "4.18.1-1",
    "manpages-fr": "4.18.1-1",
    "manpages-it": "4.18.1-1",
    "manpages-ja": "0.5.0.0.20221215+dfsg-1",
    "manpages-nl": "4.18.1-1",
    "manpages-pl": "1:4.18.1-1",
    "manpages-pt-br": "4.18.1-1",
    "manpages-ru": "4.18.1-1",
    "manpages-sv": "4.18.1-1",
    "manpages-tr": "2.0.6-2",
    "manpages-uk": "4.18.1-1",
    "manpages-zh": "1.6.4.0-1",
    "python3.11-doc": "3.11.2-6+deb12u8",
    "golang-1.19-src": "1.19.8-2",
    "rust-src": "1.63.0+dfsg1-2",
    "libboost1.81-dev": "1.81.0-5+deb12u1",
    "perl-modules-5.36": "5.36.0-7+deb12u3",
    "node-typescript": "4.8.4+ds1-2",
}

_MAN = (
    ".1",
    ".2",
    ".3",
    ".4",
    ".5",
    ".6",
    ".7",
    ".8",
    ".1p",
    ".3p",
    ".3pm",
    ".3type",
    ".3const",
    ".3head",
    ".2type",
    ".1ssl",
    ".3ssl",
    ".5ssl",
    ".7ssl",
    ".8ssl",
)
_SRC_GO = (".go", ".s")
_SRC_RUST = (".rs", ".md")
_SRC_CPP = (".hpp", ".ipp", ".h")
_SRC_PERL = (".pm", ".pl", ".pod")
_SRC_TS = (".ts", ".js", ".lcl")

# (source name, package, folder inside the package, file suffixes (after removing .gz), kind).
# A folder ending in "/*" stands for one source per sub-folder (sorted): the Handbook gets one
# source per language, so that each language weighs the same as one Debian Reference language.
SOURCES: list[tuple[str, str, str, tuple[str, ...], str]] = [
    *[
        (
            f"debian-reference-{lang}",
            f"debian-reference-{lang}",
            "usr/share/debian-reference",
            (".txt",),
            "text",
        )
        for lang in ("de", "en", "es", "fr", "it", "ja", "pt", "zh-cn", "zh-tw")
    ],
    (
        "debian-handbook",
        "debian-handbook",
        "usr/share/doc/debian-handbook/html/*",
        (".html",),
        "html",
    ),
    *[
        (name, name, "usr/share/man", _MAN, "man")
        for name in sorted(PACKAGES)
        if name.startswith("manpages")
    ],
    (
        "python3.11-doc",
        "python3.11-doc",
        "usr/share/doc/python3.11/html/_sources",
        (".txt",),
        "text",
    ),
    ("go-src", "golang-1.19-src", "usr/share/go-1.19/src", _SRC_GO, "text"),
    ("rust-library", "rust-src", "usr/src/rustc-1.63.0/library", _SRC_RUST, "text"),
    ("rust-compiler", "rust-src", "usr/src/rustc-1.63.0/compiler", _SRC_RUST, "text"),
    ("boost", "libboost1.81-dev", "usr/include/boost", _SRC_CPP, "text"),
    ("perl", "perl-modules-5.36", "usr/share/perl/5.36.0", _SRC_PERL, "text"),
    ("typescript", "node-typescript", "usr/share/nodejs/typescript", _SRC_TS, "text"),
]

# Relative share of a source (default 1): the code sources get twice a language's share, so that
# about a quarter of the corpus is source code.
WEIGHTS = {
    "go-src": 2,
    "rust-library": 2,
    "rust-compiler": 2,
    "boost": 2,
    "perl": 2,
    "typescript": 2,
    "python3.11-doc": 2,
}

MAX_DOC_BYTES = 256 * 1024  # longer files become several documents (see _split_long)
RECIPE_VERSION = 1  # bump when the text extraction changes (the corpus bytes change with it)


class CorpusError(RuntimeError):
    pass


# ---- fetching ------------------------------------------------------------------------------
def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, text=True, capture_output=True, **kw)


def _deb_path(debs: Path, name: str, version: str) -> Path | None:
    for p in sorted(debs.glob(f"{name}_*.deb")):
        r = _run(["dpkg-deb", "-f", str(p), "Package", "Version"])
        fields = dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)
        if fields.get("Package") == name and fields.get("Version") == version:
            return p
    return None


def _available_versions(name: str) -> list[str]:
    r = _run(["apt-cache", "madison", name])
    return [line.split("|")[1].strip() for line in r.stdout.splitlines() if "|" in line]


def fetch_packages(cache: Path, *, log=print, names: list[str] | None = None) -> dict[str, Path]:
    """The pinned ``.deb`` files (all of ``PACKAGES``, or only ``names``), downloaded into
    ``cache/debs`` when missing."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise CorpusError("building the corpus needs apt-get and dpkg-deb (a Debian system)")
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    pins = {n: PACKAGES[n] for n in (names if names is not None else PACKAGES)}
    have = {n: _deb_path(debs, n, v) for n, v in pins.items()}
    missing = [n for n, p in have.items() if p is None]
    if missing:
        log(f"corpus: downloading {len(missing)} pinned Debian packages into {debs}")
        specs = [f"{n}={PACKAGES[n]}" for n in missing]
        # -o APT::Sandbox::User=root: the cache folder need not be readable by _apt.
        cmd = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *specs]
        r = _run(cmd, cwd=debs)
        if r.returncode != 0 and (
            "Unable to locate" in r.stderr or "not found" in r.stderr or "Can't select" in r.stderr
        ):
            log("corpus: apt-get download failed; running apt-get update once")
            _run(["apt-get", "update", "-q"])
            r = _run(cmd, cwd=debs)
        if r.returncode != 0:
            gone = []
            for n in missing:
                if PACKAGES[n] not in _available_versions(n):
                    gone.append(
                        f"  {n}={PACKAGES[n]} (the archive has: "
                        f"{', '.join(_available_versions(n)) or 'nothing'})"
                    )
            detail = (
                (
                    "\npinned versions no longer in the archive:\n"
                    + "\n".join(gone)
                    + "\nupdate PACKAGES in benches/corpus.py"
                )
                if gone
                else ""
            )
            raise CorpusError(f"apt-get download failed:\n{r.stderr.strip()}{detail}")
        have = {n: _deb_path(debs, n, v) for n, v in pins.items()}
        still = [n for n, p in have.items() if p is None]
        if still:
            raise CorpusError(f"apt-get download gave no .deb of the pinned version for {still}")
    return have  # type: ignore[return-value]


def extract_packages(cache: Path, debs: dict[str, Path], *, log=print) -> dict[str, Path]:
    """Unpack each ``.deb`` once into ``cache/extract/NAME_VERSION``."""
    roots = {}
    for name, deb in debs.items():
        safe = f"{name}_{PACKAGES[name]}".replace(":", "%3a")
        root = cache / "extract" / safe
        stamp = root / ".done"
        if not stamp.exists():
            if root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True)
            r = _run(["dpkg-deb", "-x", str(deb), str(root)])
            if r.returncode != 0:
                raise CorpusError(f"dpkg-deb -x {deb} failed: {r.stderr.strip()}")
            stamp.write_text("ok\n")
        roots[name] = root
    return roots


# ---- text extraction -----------------------------------------------------------------------
_BLOCK = {
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "tr",
    "table",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "hr",
    "title",
    "figure",
    "figcaption",
    "td",
    "th",
    "nav",
}
_SKIP = {"script", "style", "head", "noscript", "svg"}


class _HtmlText(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        if tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data):
        if self.skip:
            return
        if self.pre:
            self.parts.append(data)
        else:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(src: str) -> str:
    p = _HtmlText()
    p.feed(src)
    p.close()
    lines = [line.strip() for line in "".join(p.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def man_to_text(src: str) -> str:
    # roff source as it is (a benchmark corpus needs no rendering), minus comment lines
    return "\n".join(
        line for line in src.split("\n") if not line.startswith(('.\\"', "'\\\"", ".\\#"))
    )


def _read_doc(path: Path, kind: str) -> str | None:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            return None
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if kind == "html":
        text = html_to_text(text)
    elif kind == "man":
        text = man_to_text(text)
    text = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    return text if text.strip() else None


def _split_long(text: str) -> list[str]:
    """``text`` as documents of at most ``MAX_DOC_BYTES`` (more or less), cut at blank lines
    where there are some, else at line ends."""
    if len(text) * 4 <= MAX_DOC_BYTES or len(text.encode("utf-8")) <= MAX_DOC_BYTES:
        return [text]
    out: list[str] = []
    cur: list[str] = []
    size = 0
    for para in re.split(r"\n\n+", text):
        n = len(para.encode("utf-8")) + 2
        if cur and size + n > MAX_DOC_BYTES:
            out.append("\n\n".join(cur))
            cur, size = [], 0
        if n > MAX_DOC_BYTES:  # one huge paragraph: cut at line ends
            lines: list[str] = []
            lsize = 0
            for line in para.split("\n"):
                m = len(line.encode("utf-8")) + 1
                if lines and lsize + m > MAX_DOC_BYTES:
                    out.append("\n".join(lines))
                    lines, lsize = [], 0
                lines.append(line)
                lsize += m
            para, n = "\n".join(lines), lsize
        cur.append(para)
        size += n
    if cur:
        out.append("\n\n".join(cur))
    return [d for d in out if d.strip()]


def _source_files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    out = []
    for p in root.rglob("*"):
        if not p.is_file() or p.is_symlink():
            continue
        if p.name.removesuffix(".gz").endswith(suffixes):
            out.append(p)
    # sorted by the path's bytes below the source root: the same order on every system
    return sorted(out, key=lambda q: q.relative_to(root).as_posix().encode("utf-8"))


def _sources(roots: dict[str, Path]) -> list[tuple[str, list[Path], str]]:
    out = []
    for name, pkg, sub, suffixes, kind in SOURCES:
        base = roots[pkg]
        if sub.endswith("/*"):
            parent = base / sub[:-2]
            subs = sorted((d for d in parent.iterdir() if d.is_dir()), key=lambda d: d.name)
            for d in subs:
                files = _source_files(d, suffixes)
                if files:
                    out.append((f"{name}/{d.name}", files, kind))
        else:
            files = _source_files(base / sub, suffixes)
            if not files:
                raise CorpusError(f"source {name}: no files under {sub} in {pkg}")
            out.append((name, files, kind))
    return out


def _docs(files: list[Path], kind: str) -> Iterator[bytes]:
    for f in files:
        text = _read_doc(f, kind)
        if text is not None:
            for doc in _split_long(text):
                yield doc.strip("\n").encode("utf-8")


def _recipe_id() -> str:
    blob = json.dumps([RECIPE_VERSION, PACKAGES, SOURCES, WEIGHTS, MAX_DOC_BYTES], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def build_corpus(
    dest_dir: str | Path = DEFAULT_DATA_DIR,
    min_mb: float = 60,
    *,
    cache_dir: str | Path | None = None,
    force: bool = False,
    log=print,
) -> Path:
    """Write ``dest_dir/bench-corpus.txt`` of at least ``min_mb`` MiB and return its path.

    Reuses an existing corpus built by the same recipe at the same size (its SHA-256 is
    checked). ``cache_dir`` (default ``dest_dir``) keeps the downloaded and unpacked packages.
    Also writes ``bench-corpus.json`` (size, documents, per-source bytes, SHA-256).
    """
    dest = Path(dest_dir)
    cache = Path(cache_dir) if cache_dir is not None else dest
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / CORPUS_NAME
    meta_path = dest / "bench-corpus.json"
    target = int(min_mb * MIB)
    if out.exists() and meta_path.exists() and not force:
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = {}
        if (
            meta.get("recipe") == _recipe_id()
            and meta.get("min_mb") == min_mb
            and meta.get("bytes") == out.stat().st_size
            and _sha256(out) == meta.get("sha256")
        ):
            log(
                f"corpus: reusing {out} ({meta['bytes'] / MIB:.1f} MiB, "
                f"{meta['documents']} documents) sha256 {meta['sha256']}"
            )
            return out

    debs = fetch_packages(cache, log=log)
    roots = extract_packages(cache, debs, log=log)
    sources = _sources(roots)
    iters = [_docs(files, kind) for _, files, kind in sources]
    per_source = [0] * len(sources)
    weights = [WEIGHTS.get(name.split("/")[0], 1) for name, _, _ in sources]
    heap = [(0, i) for i in range(len(sources))]
    heapq.heapify(heap)
    total = docs = 0
    h = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=".corpus.")
    try:
        with open(fd, "wb") as tmp:
            while heap and total < target:
                _, i = heapq.heappop(heap)
                doc = next(iters[i], None)
                if doc is None:
                    continue  # source exhausted
                chunk = (b"\n\n" if total else b"") + doc
                tmp.write(chunk)
                h.update(chunk)
                total += len(chunk)
                docs += 1
                per_source[i] += len(chunk)
                heapq.heappush(heap, (per_source[i] / weights[i], i))
            tmp.write(b"\n")
            h.update(b"\n")
            total += 1
        if total < target:
            raise CorpusError(
                f"all sources together give only {total / MIB:.1f} MiB (< {min_mb} MiB requested)"
            )
        Path(tmp_name).replace(out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    digest = h.hexdigest()
    meta = {
        "recipe": _recipe_id(),
        "min_mb": min_mb,
        "bytes": total,
        "documents": docs,
        "sha256": digest,
        "sources": {name: n for (name, _, _), n in zip(sources, per_source) if n},
    }
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    log(
        f"corpus: wrote {out} ({total / MIB:.1f} MiB, {docs} documents from "
        f"{len(meta['sources'])} sources) sha256 {digest}"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=60, help="minimum size in MiB (default 60)")
    ap.add_argument(
        "--dest", type=Path, default=DEFAULT_DATA_DIR, help="output folder (default benches/data)"
    )
    ap.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="where packages are downloaded and unpacked (default: --dest)",
    )
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    ap.add_argument("--sources", action="store_true", help="print bytes per source")
    args = ap.parse_args(argv)
    try:
        path = build_corpus(args.dest, args.mb, cache_dir=args.cache, force=args.force)
    except CorpusError as e:
        print(f"corpus: error: {e}", file=sys.stderr)
        return 1
    meta = json.loads((path.parent / "bench-corpus.json").read_text())
    if args.sources:
        for name, n in meta["sources"].items():
            print(f"  {name:28s} {n / MIB:7.2f} MiB")
    print(f"{meta['sha256']}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
