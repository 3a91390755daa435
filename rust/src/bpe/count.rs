//! Counting unique pre-tokenized pieces ("words") with their frequencies: the map step of BPE
//! training. Input arrives as batches of documents or as files read in blocks, so the corpus is
//! never held as one string.
//!
//! Parallelism: each document is cut into ~1 MiB segments at safe cuts
//! ([`Pretokenizer::segments`]); rayon counts segments into thread-local maps keyed by borrowed
//! slices, which are summed into one owned map. Sums are order-independent, so the result is the
//! same for any thread count. Cost: O(bytes) for scanning and hashing; memory O(unique pieces).

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

/// Frequencies of unique pieces, with totals.
#[derive(Debug, Default)]
pub struct PieceCounts {
    map: FxHashMap<Box<[u8]>, u64>,
    /// documents (or files) added
    pub docs: u64,
    /// bytes of text added
    pub bytes: u64,
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

    /// Pre-tokenize and count a batch of documents in parallel. Pieces never cross documents.
    pub fn add_docs<S: AsRef<str> + Sync>(
        &mut self,
        pretok: &Pretokenizer,
        docs: &[S],
    ) -> Result<()> {
        let segments: Vec<&str> = docs
            .iter()
            .flat_map(|d| pretok.segments(d.as_ref(), SEGMENT))
            .collect();
        self.count_segments(pretok, &segments)?;
        self.docs += docs.len() as u64;
        self.bytes += docs.iter().map(|d| d.as_ref().len() as u64).sum::<u64>();
        Ok(())
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
    /// those of the whole file as one document.
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
            } else {
                let window = carry.len().saturating_sub(SEGMENT);
                let start = floor_char_boundary(&carry, window);
                match pretok.last_safe_cut(&carry[start..]) {
                    Some(c) => start + c,
                    None => 0,
                }
            };
            if cut > 0 {
                let segments = pretok.segments(&carry[..cut], SEGMENT);
                self.count_segments(pretok, &segments)?;
                carry.drain(..cut);
            }
            if !progress.report("count", read_total, total) {
                return Err(Error::Interrupted(format!("while reading {name}")));
            }
            crate::cancel::check()?;
            if eof {
                break;
            }
        }
        self.docs += 1;
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
    }

    #[test]
    fn incomplete_tail_finds_cut_sequences() {
        assert_eq!(incomplete_tail("aé".as_bytes()), 0);
        assert_eq!(incomplete_tail(&"aé".as_bytes()[..2]), 1);
        assert_eq!(incomplete_tail(&"a日".as_bytes()[..3]), 2);
    }
}
