"""LiB (Less-is-Better) v2023 training and segmentation in plain Python: the readable reference.

Written from docs/lib.md §2-§4 (Yang 2024, code of 2023-07-14), loop for loop, with Python's own
``random`` (MT19937) and dicts, so that it reproduces the golden vectors TV5 and TV6 of
docs/lib.md §11 byte for byte. tokforge's Rust trainer (``rust/src/lib_model/``) must give the
same lexicon with ``LibConfig.reference()`` settings (protection off, docs/lib.md §8.2);
``benches/lib_model.py`` times the two.

Cost: a position dict gives a unit's index in O(1) (rank sums, moves); a move rewrites the
positions of the units it shifts, O(step); forgetting rebuilds the list once per article,
O(|L|). Prefix look-ups try the prefixes up to the longest unit ever stored. This is what a
careful Python author would write; the original v2023 code finds ranks with ``list.index``
(O(|L|) each) and gives the same lexicons.

>>> m = LibRef(in_rate=0.25, out_rate=0.01, life=3, update_rate=0.1, seed=0)
>>> m.train(["the cat sat on the mat", "the dog sat on the log"], steps=3, article_len=2)
>>> m.apply("the cat") != []
True
"""

from __future__ import annotations

import math
import random


class LibRef:
    """State of one LiB learner: lexicon ``L`` (priority order), probation ``P``."""

    def __init__(
        self,
        *,
        in_rate: float = 0.25,
        out_rate: float = 0.0001,
        life: int = 10,
        update_rate: float = 0.1,
        max_chunk_len: int | None = None,
        inspect_context: bool = True,
        seed: int = 0,
    ) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.life = life
        self.update_rate = update_rate
        self.max_chunk_len = max_chunk_len
        self.inspect_context = inspect_context
        self.rng = random.Random(seed)
        self.L: list[str] = []
        self.pos: dict[str, int] = {}  # unit -> its index in L
        self.longest = 0  # length of the longest unit ever stored
        self.P: dict[str, list] = {}  # chunk -> [life, context or None]
        self.R: list[tuple[str, int]] = []
        self.cursor = 0

    # ---- primitives (docs/lib.md §2) -------------------------------------------------------
    def prefixes(self, s: str) -> list[str]:
        """Entries of L that are prefixes of s, shortest first."""
        pos = self.pos
        return [s[:k] for k in range(1, min(len(s), self.longest) + 1) if s[:k] in pos]

    def match(self, s: str) -> str:
        p = self.prefixes(s)
        return p[-1] if p else ""

    def match2(self, s: str) -> tuple[str, str]:
        p = self.prefixes(s)
        return (p[-2] if len(p) > 1 else "", p[-1] if p else "")

    def force_match(self, s: str) -> str:
        return self.match(s) or s[:1]

    def ranksum(self, path: list[str]) -> int:
        pos = self.pos
        return sum(pos[c] for c in path if c in pos)

    def memorize(self, x: str, context) -> None:
        if self.max_chunk_len and len(x) > self.max_chunk_len:
            return
        if x != "" and x not in self.pos:
            self.pos[x] = len(self.L)
            self.L.append(x)
            self.longest = max(self.longest, len(x))
            self.P[x] = [self.life, context]

    # ---- reading (docs/lib.md §3) ----------------------------------------------------------
    def evaluate(self, E: dict, sent: str, loc: int) -> None:
        for c in list(E):
            alt_end, D, A = E[c]
            while alt_end < loc:
                m = self.match(sent[alt_end:]) or sent[alt_end]
                A.append(m)
                alt_end += len(m)
            if alt_end == loc:
                if len(D) > len(A) or (len(D) == len(A) and self.ranksum(D) > self.ranksum(A)):
                    self.R.append((A[0], -1))
                    self.R.append((c, 1))
                else:
                    self.R.append((c, -1))
                del E[c]
            else:
                E[c] = (alt_end, D, A)

    def probation_check(self, c: str, prev: str, prev2: str, sent: str, loc: int) -> None:
        ctx = self.P[c][1]
        if ctx is None or not self.inspect_context:
            del self.P[c]
            return
        lo, ro = ctx
        lc = prev
        after = loc + len(c)
        rc = self.force_match(sent[after:])
        if lo == "" and ro == "" and lc == "" and rc == "":
            return
        left = (lo != "" and lc.endswith(lo)) or (lc != "" and lo.endswith(lc))
        right = (ro != "" and rc.startswith(ro)) or (rc != "" and ro.startswith(rc))
        if left:
            self.memorize(lc + c, (prev2, rc))
        if right:
            self.memorize(c + rc, (lc, self.force_match(sent[after + len(rc) :])))
        if not left and not right:
            self.R.append((c, -1))
            del self.P[c]

    def read_sentence(self, sent: str) -> None:
        chunks: list[str] = []
        E: dict = {}
        loc = 0
        while loc < len(sent):
            self.evaluate(E, sent, loc)
            c2, c = self.match2(sent[loc:])
            for entry in E.values():
                entry[1].append(c if c else sent[loc])
            prev = chunks[-1] if chunks else ""
            prev2 = chunks[-2] if len(chunks) > 1 else ""
            if c in self.P:
                self.probation_check(c, prev, prev2, sent, loc)
            if c:
                if len(c) > 1 and c2:
                    E[c] = (loc + len(c2), [c], [c2])
                if self.rng.random() < self.in_rate:
                    self.memorize(prev + c, (prev2, self.force_match(sent[loc + len(c) :])))
            else:
                c = sent[loc]
                self.memorize(c, (prev, self.force_match(sent[loc + 1 :])))
            chunks.append(c)
            loc += len(c)

    def move(self, x: str, e: int) -> None:
        L, pos = self.L, self.pos
        i = pos.get(x)
        if i is None or i == 0:
            return
        step = math.floor(i * self.update_rate) + 1
        del L[i]
        if e < 0:
            lo, hi = max(0, i - step), i + 1
            L.insert(lo, x)
        elif i + step >= len(L) + 1:
            del pos[x]  # demoted past the end: active forgetting
            lo, hi = i, len(L)
        else:
            lo, hi = i, i + step + 1
            L.insert(i + step, x)
        for k in range(lo, hi):
            pos[L[k]] = k

    def end_of_article(self) -> None:
        forgotten = set()
        for x in list(self.P):
            self.P[x][0] -= 1
            if self.P[x][0] < 1:
                del self.P[x]
                forgotten.add(x)
        if forgotten:
            self.L = [u for u in self.L if u not in forgotten]
            self.pos = {u: k for k, u in enumerate(self.L)}
        for x, e in self.R:
            if x not in forgotten:
                self.move(x, e)
        self.R = []
        n = len(self.L)
        for idx in range(math.floor((1 - self.out_rate) * n), n):
            if self.L[idx] not in self.P:
                self.P[self.L[idx]] = [self.life, None]

    def learn(self, sentences: list[str], article_len: int) -> None:
        article = sentences[self.cursor : self.cursor + article_len]
        self.cursor += len(article)
        if self.cursor >= len(sentences):
            self.cursor = 0
        for sent in article:
            self.read_sentence(sent)
        self.end_of_article()

    def train(self, sentences: list[str], *, steps: int, article_len: int) -> None:
        for _ in range(steps):
            self.learn(sentences, article_len)

    def clean_lexicon(self) -> list[str]:
        """The lexicon without the units still on probation (the reference demo's last step)."""
        return [u for u in self.L if u not in self.P]

    # ---- segmentation (docs/lib.md §4) -----------------------------------------------------
    def apply(self, sent: str, *, lexicon: list[str] | None = None) -> list[str]:
        """Segment ``sent`` with the larger-first rule and counterfactual comparison (quirk
        of the reference kept: a lone multi-character match whose first char is unknown emits
        that char)."""
        if lexicon is not None:
            saved = self.L, self.pos, self.longest
            self.L = list(lexicon)
            self.pos = {u: k for k, u in enumerate(self.L)}
            self.longest = max(map(len, self.L), default=0)
        try:
            out: list[str] = []
            i = 0
            while i < len(sent):
                c2, c = self.match2(sent[i:])
                if len(c) > 1 and c2:
                    D, d_end = [c], i + len(c)
                    A, a_end = [c2], i + len(c2)
                    while d_end != a_end:
                        if a_end < d_end:
                            m = self.match(sent[a_end:]) or sent[a_end]
                            A.append(m)
                            a_end += len(m)
                        else:
                            m = self.match(sent[d_end:]) or sent[d_end]
                            D.append(m)
                            d_end += len(m)
                    if len(A) < len(D) or (len(A) == len(D) and self.ranksum(A) < self.ranksum(D)):
                        out.extend(A)
                    else:
                        out.extend(D)
                    i = d_end
                else:
                    out.append(sent[i])
                    i += 1
            return out
        finally:
            if lexicon is not None:
                self.L, self.pos, self.longest = saved


def read_sentences(text: str) -> list[str]:
    """Sentences as the reference demo makes them: stripped text split on newlines, stripped."""
    return [s.strip() for s in text.strip().split("\n")]
