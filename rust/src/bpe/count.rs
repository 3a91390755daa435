//! Counting unique pre-tokenized pieces ("words") with their frequencies: the map step of BPE
//! training, a step of its own (docs/distributed.md §1). Input arrives as batches of documents
//! or as files read in blocks, so the corpus is never held as one string.
//!
//! Parallelism: each document is cut into ~1 MiB segments at safe cuts
//! ([`Pretokenizer::segments`]); rayon counts segments into thread-local maps keyed by borrowed
//! slices, which are summed into one owned map. Sums are order-independent, so the result is the
//! same for any thread count, any split of the corpus into tables and any order of
//! [`PieceCounts::merge`]. Cost: O(bytes) for scanning and hashing; memory O(unique pieces).
//!
//! Documents ([`Documents`]): a whole file or string is one document (pieces never cross
//! documents), or every line (with its `\n`) is one, as HF `tokenizers` reads files for
//! `train([file])`. Memory bound ([`Limit`], docs/distributed.md §3): past `max_pieces` unique
//! pieces counting stops with an error, or, only when the caller allows it, rare pieces are
//! pruned (and [`PieceCounts::pruned_below`] records it). A table is written and read in a
//! compact, versioned, checksummed binary format (`crate::formats::piece_counts`,
//! docs/distributed.md §2).

use crate::error::{Error, Result};
use crate::pretokenize::Pretokenizer;
use crate::progress::Progress;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::io::Read;
use std::path::Path;

/// Segment size for parallel pre-tokenization (1 MiB: large enough that per-task overhead is
/// negligible, small enough to spread a 16 MiB block over both cores).
const SEGMENT: usize = 1 << 20;
/// File block size (16 MiB).
const BLOCK: usize = 16 << 20;

/// What to do with bytes that are not UTF-8 in an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Utf8Policy {
    /// stop with an error naming the file and byte offset
    Strict,
    /// replace each invalid sequence by U+FFFD (like Python's `errors="replace"`)
    Replace,
    /// drop invalid bytes
    Ignore,
}

impl Utf8Policy {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "strict" => Ok(Self::Strict),
            "replace" => Ok(Self::Replace),
            "ignore" => Ok(Self::Ignore),
            _ => Err(Error::Input(format!(
                "errors={s:?} is not one of \"strict\", \"replace\", \"ignore\""
            ))),
        }
    }
}

/// What one document is when counting: pieces never cross documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Documents {
    /// a whole file, or a whole string of a batch
    #[default]
    File,
    /// every line, ending after its `\n` (HF `tokenizers` `train([file])` reads files so)
    Line,
}

impl Documents {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "file" => Ok(Self::File),
            "line" => Ok(Self::Line),
            _ => Err(Error::Input(format!(
                "documents={s:?} is not one of \"file\", \"line\""
            ))),
        }
    }
}

/// The memory bound of a table (docs/distributed.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// most unique pieces the table may hold
    pub max_pieces: usize,
    /// past the bound, drop the rarest pieces (approximate counts) instead of failing
    pub prune: bool,
}

/// Frequencies of unique pieces, with totals.
#[derive(Debug, Default)]
pub struct PieceCounts {
    map: FxHashMap<Box<[u8]>, u64>,
    /// documents (files, strings or lines) added
    pub docs: u64,
    /// bytes of text added
    pub bytes: u64,
    /// 0, or the count below which pieces were dropped to keep within the [`Limit`]: counts are
    /// then a lower bound and training on them is approximate
    pub pruned_below: u64,
    documents: Documents,
    limit: Option<Limit>,
}

type LocalMap<'a> = FxHashMap<&'a [u8], u64>;

fn merge_local<'a>(mut a: LocalMap<'a>, mut b: LocalMap<'a>) -> LocalMap<'a> {
    if a.len() < b.len() {
        std::mem::swap(&mut a, &mut b);
    }
    for (k, v) in b {
        *a.entry(k).or_insert(0) += v;
    }
    a
}

impl PieceCounts {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table that splits input into `documents` and keeps within `limit`.
    pub fn with_options(documents: Documents, limit: Option<Limit>) -> Result<Self> {
        if let Some(l) = limit {
            if l.max_pieces == 0 {
                return Err(Error::Input("max_pieces must be at least 1".into()));
            }
        }
        Ok(Self {
            documents,
            limit,
            ..Self::default()
        })
    }

    /// Room for `n` more pieces.
    pub fn reserve(&mut self, n: usize) {
        self.map.reserve(n);
    }

    /// The count of `piece` (0 if absent).
    pub fn get(&self, piece: &[u8]) -> u64 {
        self.map.get(piece).copied().unwrap_or(0)
    }

    /// Pieces sorted by bytes, borrowed: the canonical order of [`Self::into_sorted`].
    pub fn sorted(&self) -> Vec<(&[u8], u64)> {
        let mut v: Vec<_> = self.iter().collect();
        v.par_sort_unstable_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Add `other` into this table (sums counts and totals), then keep within this table's
    /// limit. Addition commutes and associates, so any tree of merges gives the same table.
    pub fn merge(&mut self, other: &PieceCounts) -> Result<()> {
        self.map
            .reserve(other.map.len().saturating_sub(self.map.len()));
        for (k, &v) in &other.map {
            self.add_piece(k, v);
        }
        self.docs += other.docs;
        self.bytes += other.bytes;
        self.pruned_below = self.pruned_below.max(other.pruned_below);
        self.enforce()
    }

    /// Keep within the limit: an error naming the bound, or, when pruning is allowed, drop the
    /// pieces seen fewer than `t` times for `t` = 2, 4, 8, ... (above any earlier threshold)
    /// until at most half the bound is left, so pruning runs O(log) times per doubling of input.
    fn enforce(&mut self) -> Result<()> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        if self.map.len() <= limit.max_pieces {
            return Ok(());
        }
        if !limit.prune {
            return Err(Error::Training(format!(
                "more than max_pieces={} unique pieces after {} bytes of input; raise \
                 max_pieces (memory is about 60 bytes plus the piece length per unique piece), \
                 count fewer documents per table, or allow prune=True (drops rare pieces, so the \
                 merges are no longer exact)",
                limit.max_pieces, self.bytes
            )));
        }
        let mut t = (self.pruned_below.max(1)).saturating_mul(2);
        loop {
            self.map.retain(|_, c| *c >= t);
            self.pruned_below = t;
            if self.map.len() <= limit.max_pieces / 2 || t == u64::MAX {
                break;
            }
            t = t.saturating_mul(2);
        }
        Ok(())
    }

    /// Number of unique pieces.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Iterate `(piece bytes, count)` in unspecified order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> {
        self.map.iter().map(|(k, v)| (&**k, *v))
    }

    /// Pieces sorted by bytes: a canonical order independent of hashing and threads.
    pub fn into_sorted(self) -> Vec<(Box<[u8]>, u64)> {
        let mut v: Vec<_> = self.map.into_iter().collect();
        v.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Add one piece `count` times (for tests and for counts built elsewhere).
    pub fn add_piece(&mut self, piece: &[u8], count: u64) {
        if let Some(c) = self.map.get_mut(piece) {
            *c += count;
        } else {
            self.map.insert(piece.into(), count);
        }
    }

    /// Insert a piece known to be absent (a reader of sorted unique pieces): one hash, one copy.
    pub(crate) fn insert_new(&mut self, piece: &[u8], count: u64) {
        debug_assert!(!self.map.contains_key(piece));
        self.map.insert(piece.into(), count);
    }

    /// Pre-tokenize and count a batch of documents in parallel. Pieces never cross documents.
    pub fn add_docs<S: AsRef<str> + Sync>(
        &mut self,
        pretok: &Pretokenizer,
        docs: &[S],
    ) -> Result<()> {
        let mut segments: Vec<&str> = Vec::new();
        let mut n = 0u64;
        for d in docs {
            n += self.split(pretok, d.as_ref(), &mut segments);
        }
        self.count_segments(pretok, &segments)?;
        self.docs += n;
        self.bytes += docs.iter().map(|d| d.as_ref().len() as u64).sum::<u64>();
        self.enforce()
    }

    /// Append the independent segments of `text` to `out`; returns the documents in it.
    fn split<'a>(&self, pretok: &Pretokenizer, text: &'a str, out: &mut Vec<&'a str>) -> u64 {
        match self.documents {
            Documents::File => {
                out.extend(pretok.segments(text, SEGMENT));
                1
            }
            Documents::Line => {
                let mut n = 0;
                for line in text.split_inclusive('\n') {
                    out.extend(pretok.segments(line, SEGMENT));
                    n += 1;
                }
                n
            }
        }
    }

    /// Count the pieces of independent segments in parallel (totals are the caller's).
    fn count_segments(&mut self, pretok: &Pretokenizer, segments: &[&str]) -> Result<()> {
        let cancel = crate::cancel::current();
        let local = segments
            .par_iter()
            .try_fold(LocalMap::default, |mut m, seg| {
                crate::cancel::scope(&cancel, || {
                    pretok.for_each_piece(seg, |p| *m.entry(p.as_bytes()).or_insert(0) += 1)
                })?;
                Ok::<_, Error>(m)
            })
            .try_reduce(LocalMap::default, |a, b| Ok(merge_local(a, b)))?;
        self.map.reserve(local.len() / 4);
        for (k, v) in local {
            self.add_piece(k, v);
        }
        Ok(())
    }

    /// Stream a file in blocks, cutting between blocks only at safe cuts, so the counts equal
    /// those of the whole file as one document; in [`Documents::Line`] mode blocks end after a
    /// `\n` and every line is a document (a line is held whole, however long).
    pub fn add_file(
        &mut self,
        pretok: &Pretokenizer,
        path: &Path,
        policy: Utf8Policy,
        progress: &dyn Progress,
    ) -> Result<()> {
        let name = path.display().to_string();
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut raw: Vec<u8> = Vec::with_capacity(BLOCK + 4);
        let mut raw_offset: u64 = 0; // file offset of raw[0]
        let mut carry = String::new();
        let mut read_total: u64 = 0;
        loop {
            let old = raw.len();
            raw.resize(old + BLOCK, 0);
            let n = read_full(&mut file, &mut raw[old..]).map_err(|e| Error::io(path, e))?;
            raw.truncate(old + n);
            read_total += n as u64;
            let eof = n == 0;
            // keep an incomplete UTF-8 sequence at the end for the next block
            let keep = if eof { 0 } else { incomplete_tail(&raw) };
            let complete = raw.len() - keep;
            let text = decode(&raw[..complete], policy, &name, raw_offset)?;
            raw_offset += complete as u64;
            raw.drain(..complete);
            carry.push_str(&text);
            let cut = if eof {
                carry.len()
            } else if self.documents == Documents::Line {
                carry.rfind('\n').map_or(0, |i| i + 1)
            } else {
                let window = carry.len().saturating_sub(SEGMENT);
                let start = floor_char_boundary(&carry, window);
                match pretok.last_safe_cut(&carry[start..]) {
                    Some(c) => start + c,
                    None => 0,
                }
            };
            if cut > 0 {
                let mut segments = Vec::new();
                let n = match self.documents {
                    Documents::File => {
                        segments = pretok.segments(&carry[..cut], SEGMENT);
                        0
                    }
                    Documents::Line => self.split(pretok, &carry[..cut], &mut segments),
                };
                self.count_segments(pretok, &segments)?;
                self.docs += n;
                carry.drain(..cut);
                self.enforce()?;
            }
            if !progress.report("count", read_total, total) {
                return Err(Error::Interrupted(format!("while reading {name}")));
            }
            crate::cancel::check()?;
            if eof {
                break;
            }
        }
        if self.documents == Documents::File {
            self.docs += 1;
        }
        self.bytes += read_total;
        Ok(())
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Length of a truncated (not yet invalid) UTF-8 sequence at the end of `b`.
fn incomplete_tail(b: &[u8]) -> usize {
    for back in 1..=3.min(b.len()) {
        let c = b[b.len() - back];
        if c & 0xC0 == 0x80 {
            continue; // continuation byte: keep looking for the lead
        }
        let need = match c {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return 0,
        };
        return if need > back { back } else { 0 };
    }
    0
}

fn decode(bytes: &[u8], policy: Utf8Policy, name: &str, offset: u64) -> Result<String> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => match policy {
            Utf8Policy::Strict => Err(Error::Utf8 {
                source_name: name.to_string(),
                offset: offset + e.valid_up_to() as u64,
            }),
            Utf8Policy::Replace | Utf8Policy::Ignore => {
                let mut s = String::with_capacity(bytes.len());
                for chunk in bytes.utf8_chunks() {
                    s.push_str(chunk.valid());
                    if !chunk.invalid().is_empty() && policy == Utf8Policy::Replace {
                        s.push('\u{FFFD}');
                    }
                }
                Ok(s)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    fn sorted(c: PieceCounts) -> Vec<(Vec<u8>, u64)> {
        c.into_sorted()
            .into_iter()
            .map(|(k, v)| (k.into_vec(), v))
            .collect()
    }

    #[test]
    fn file_blocks_count_like_the_whole_text() {
        let dir = std::env::temp_dir().join(format!("tokforge-count-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text =
            "Hello  world's end\n\n  x\nAnd then 12345 apples. 日本語の\n文章です。\n".repeat(5000);
        let path = dir.join("t.txt");
        std::fs::write(&path, &text).unwrap();
        for name in ["gpt2", "cl100k", "o200k"] {
            let p = Pretokenizer::new(name).unwrap();
            let mut a = PieceCounts::new();
            a.add_docs(&p, &[text.as_str()]).unwrap();
            let mut b = PieceCounts::new();
            b.add_file(&p, &path, Utf8Policy::Strict, &Silent).unwrap();
            assert_eq!(b.bytes, text.len() as u64);
            assert_eq!(sorted(a), sorted(b), "{name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn invalid_utf8_names_file_and_offset() {
        let dir = std::env::temp_dir().join(format!("tokforge-utf8-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.txt");
        std::fs::write(&path, b"abc\xffdef").unwrap();
        let p = Pretokenizer::new("gpt2").unwrap();
        let e = PieceCounts::new()
            .add_file(&p, &path, Utf8Policy::Strict, &Silent)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.txt") && e.contains("offset 3"), "{e}");
        let mut c = PieceCounts::new();
        c.add_file(&p, &path, Utf8Policy::Replace, &Silent).unwrap();
        let want: Vec<(Vec<u8>, u64)> = ["abc", "def", "\u{fffd}"]
            .iter()
            .map(|s| (s.as_bytes().to_vec(), 1))
            .collect();
        assert_eq!(sorted(c), want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn line_mode_counts_every_line_alone_in_files_and_batches() {
        let dir = std::env::temp_dir().join(format!("tokforge-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "def f(x):\n\n    return x\n  \nend".repeat(3000);
        let path = dir.join("l.txt");
        std::fs::write(&path, &text).unwrap();
        let p = Pretokenizer::new("gpt2").unwrap();
        let mut want = PieceCounts::new();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        want.add_docs(&p, &lines).unwrap();
        let mut a = PieceCounts::with_options(Documents::Line, None).unwrap();
        a.add_file(&p, &path, Utf8Policy::Strict, &Silent).unwrap();
        let mut b = PieceCounts::with_options(Documents::Line, None).unwrap();
        b.add_docs(&p, &[text.as_str()]).unwrap();
        assert_eq!((a.docs, b.docs), (lines.len() as u64, lines.len() as u64));
        // "\n" + next line's indentation never forms one piece across lines
        assert_eq!(a.get(b"\n    "), 0);
        let sa = sorted(a);
        assert_eq!(sa, sorted(want));
        assert_eq!(sorted(b), sa);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn merged_tables_equal_one_table_of_all_documents() {
        let p = Pretokenizer::new("cl100k").unwrap();
        let docs = ["a b c a", "b c d 12345", "the end's end"];
        let mut all = PieceCounts::new();
        all.add_docs(&p, &docs).unwrap();
        let mut parts = PieceCounts::new();
        for d in docs {
            let mut one = PieceCounts::new();
            one.add_docs(&p, &[d]).unwrap();
            parts.merge(&one).unwrap();
        }
        assert_eq!((parts.docs, parts.bytes), (all.docs, all.bytes));
        assert_eq!(sorted(parts), sorted(all));
    }

    #[test]
    fn the_limit_errors_unless_pruning_is_allowed() {
        let p = Pretokenizer::new("gpt2").unwrap();
        let doc = "a a a a b b c d e f g";
        let lim = |prune| {
            Some(Limit {
                max_pieces: 4,
                prune,
            })
        };
        let e = PieceCounts::with_options(Documents::File, lim(false))
            .unwrap()
            .add_docs(&p, &[doc])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("max_pieces=4") && e.contains("prune=True"),
            "{e}"
        );
        let mut c = PieceCounts::with_options(Documents::File, lim(true)).unwrap();
        c.add_docs(&p, &[doc]).unwrap();
        assert_eq!(c.pruned_below, 2);
        assert_eq!(
            sorted(c),
            vec![(b" a".to_vec(), 3), (b" b".to_vec(), 2), (b"a".to_vec(), 1)]
                .into_iter()
                .filter(|x| x.1 >= 2)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn incomplete_tail_finds_cut_sequences() {
        assert_eq!(incomplete_tail("aé".as_bytes()), 0);
        assert_eq!(incomplete_tail(&"aé".as_bytes()[..2]), 1);
        assert_eq!(incomplete_tail(&"a日".as_bytes()[..3]), 2);
    }
}
