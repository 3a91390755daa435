"""Citations of the design notes resolve: every "docs/<note>.md §N" in the code, the tests, the
benches, the README and ``docs/spec_references.tsv`` names a numbered heading of that note."""

from __future__ import annotations

import csv
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: "docs/lib.md §3.3", "docs/lib.md §2, §3.1", "docs/lib.md §2-§4", "docs/lib.md, §4"
CITE = re.compile(r"docs/(\w+\.md),?((?:\s*(?:§[\d.]*\d|[,-]|and|section|sections))*)")


def headings(note: str) -> set[str]:
    text = (DOCS / note).read_text(encoding="utf-8")
    return set(re.findall(r"^#+ §([\d.]*\d)\s", text, flags=re.M))


def cited_sections(text: str) -> list[tuple[str, str]]:
    out = []
    for m in CITE.finditer(text):
        out.extend((m.group(1), s) for s in re.findall(r"§([\d.]*\d)", m.group(2)))
    return out


def test_every_note_has_numbered_sections_in_order():
    notes = sorted(p.name for p in DOCS.glob("*.md") if p.name != "README.md")
    assert notes == ["bpe.md", "byte_probs.md", "distributed.md", "dynamic_merging.md", "lib.md",
                     "metrics.md", "mixture_inference.md", "transfer.md"]
    for note in notes:
        text = (DOCS / note).read_text(encoding="utf-8")
        top = [int(n) for n in re.findall(r"^## §(\d+) ", text, flags=re.M)]
        assert top == list(range(len(top))), f"{note}: top-level sections {top}"


def test_spec_reference_table_points_at_existing_sections():
    with open(DOCS / "spec_references.tsv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert rows and all(r["kind"] in ("path", "text", "identifier") for r in rows)
    for r in rows:
        note = r["now_in"].split()[0].removeprefix("docs/")
        assert (DOCS / note).is_file(), r
        have = headings(note)
        for s in re.findall(r"§([\d.]*\d)", r["now_in"]):
            assert s in have, f"{r['file']}:{r['line']} -> {note} §{s} does not exist"


def test_citations_in_code_tests_and_readme_name_existing_sections():
    files = [ROOT / "README.md", *DOCS.glob("*.md")]
    for folder in ("rust", "python", "tests", "benches"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".rs", ".py", ".pyi")]
    bad = []
    for f in files:
        for note, s in cited_sections(f.read_text(encoding="utf-8")):
            if not (DOCS / note).is_file() or s not in headings(note):
                bad.append(f"{f.relative_to(ROOT)}: docs/{note} §{s}")
    assert not bad, bad
