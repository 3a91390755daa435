//! BPE training: learn merges from piece counts (Sennrich et al. 2016, byte-level as in GPT-2),
//! with the incremental algorithm of HF `BpeTrainer` / rustbpe (docs/bpe.md §3.2).
//!
//! State: every unique piece ("word") as a run of symbol ids in one flat array, its count, the
//! current count of every adjacent pair, and a max-heap of jobs `(count, pair, words)`. A popped
//! job whose stored count is stale is pushed back with the current count (counts of existing pairs
//! only fall, so the first popped job with a fresh count is the true maximum). Merging a pair
//! rewrites only the words listed in its job and adjusts the counts of the neighbouring pairs.
//!
//! Tie rule (docs/bpe.md §3.3; needed for merge lists identical to HF): among pairs with the
//! highest count the smallest `(left id, right id)` wins, in HF's id space: bytes in GPT-2
//! alphabet order (the OpenAI byte-rank order, `!` first), then merged tokens in creation order.
//! `TieOrder::Bytes` uses byte values as ids instead (rustbpe's rule). Special tokens come first
//! in the final vocabulary (as in HF) and never take part in merges.
//!
//! Cost: building pairs O(total symbols); each merge O(occurrences touched) hash updates plus
//! O(log heap) per pushed job. Counts are u64 (HF uses i32 pair counts; results agree while no HF
//! count overflows).

use super::count::PieceCounts;
use super::{pair_key, Bpe};
use crate::byte_level::byte_rank;
use crate::error::{Error, Result};
use crate::pretokenize::Pretokenizer;
use crate::progress::Progress;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Which ids break ties between equally frequent pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TieOrder {
    /// HF `tokenizers`: bytes in GPT-2 alphabet order (`!` first, space late)
    Hf,
    /// rustbpe: byte value order (space = 32)
    Bytes,
}

impl TieOrder {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "hf" => Ok(Self::Hf),
            "bytes" => Ok(Self::Bytes),
            _ => Err(Error::Input(format!(
                "tie_order={s:?} is not one of \"hf\", \"bytes\""
            ))),
        }
    }
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// final vocabulary size, counting special tokens and the 256 bytes
    pub vocab_size: usize,
    /// stop when the best pair occurs fewer times than this (HF's `min_frequency`)
    pub min_frequency: u64,
    pub special_tokens: Vec<String>,
    pub tie_order: TieOrder,
}

/// One learned merge, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeRecord {
    pub left: u32,
    pub right: u32,
    pub id: u32,
    /// pair frequency when it was merged
    pub count: u64,
}

/// The trained model and its merge log.
#[derive(Debug)]
pub struct Trained {
    pub bpe: Bpe,
    pub log: Vec<MergeRecord>,
}

#[derive(Debug, PartialEq, Eq)]
struct Job {
    count: u64,
    pair: u64,
    words: Vec<u32>,
}

impl Ord for Job {
    fn cmp(&self, other: &Self) -> Ordering {
        self.count
            .cmp(&other.count)
            .then_with(|| other.pair.cmp(&self.pair))
    }
}
impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Unique pieces as symbol runs in one flat array.
struct Words {
    syms: Vec<u32>,
    start: Vec<u32>,
    len: Vec<u32>,
    count: Vec<u64>,
}

impl Words {
    fn word(&self, w: usize) -> &[u32] {
        let s = self.start[w] as usize;
        &self.syms[s..s + self.len[w] as usize]
    }
}

/// Check the settings before any work is done.
pub fn validate(cfg: &TrainConfig) -> Result<()> {
    let mut seen = FxHashSet::default();
    for t in &cfg.special_tokens {
        if t.is_empty() {
            return Err(Error::Training(
                "a special token is the empty string".into(),
            ));
        }
        if !seen.insert(t.as_str()) {
            return Err(Error::Training(format!(
                "special token {t:?} is given twice"
            )));
        }
    }
    let floor = 256 + cfg.special_tokens.len();
    if cfg.vocab_size < floor {
        return Err(Error::Training(format!(
            "vocab_size={} is below 256 bytes + {} special tokens = {floor}",
            cfg.vocab_size,
            cfg.special_tokens.len()
        )));
    }
    if cfg.vocab_size > u32::MAX as usize / 2 {
        return Err(Error::Training(format!(
            "vocab_size={} is too large",
            cfg.vocab_size
        )));
    }
    Ok(())
}

/// Learn merges from `counts` (owned or borrowed) until the vocabulary has `cfg.vocab_size`
/// entries, no pair is left, or the best pair is rarer than `cfg.min_frequency`.
pub fn train(
    counts: impl std::borrow::Borrow<PieceCounts>,
    pretokenizer: Pretokenizer,
    cfg: &TrainConfig,
    progress: &dyn Progress,
) -> Result<Trained> {
    validate(cfg)?;
    let counts = counts.borrow();
    if counts.is_empty() {
        return Err(Error::Training(
            "the corpus is empty: no text to learn merges from".into(),
        ));
    }
    let n_special = cfg.special_tokens.len();
    let target_merges = cfg.vocab_size - 256 - n_special;

    // symbol space: 0..256 are bytes in tie order; merged symbols follow
    let byte_sym = |b: u8| -> u32 {
        match cfg.tie_order {
            TieOrder::Hf => byte_rank(b) as u32,
            TieOrder::Bytes => b as u32,
        }
    };
    let mut sym_bytes: Vec<Vec<u8>> = vec![Vec::new(); 256];
    for b in 0..=255u8 {
        sym_bytes[byte_sym(b) as usize] = vec![b];
    }
    let mut sym_of: FxHashMap<Vec<u8>, u32> = sym_bytes
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();

    // a stage of its own: on a large corpus, indexing the pairs takes seconds
    progress.report("pairs", 0, 0);
    let mut words = build_words(counts, &byte_sym);
    let (mut pc, mut heap) = initial_pairs(&words);
    progress.report("merge", 0, target_merges as u64);

    let min_count = cfg.min_frequency.max(1);
    // each merge removes at least one symbol occurrence: the corpus bounds the merges, and
    // `vocab_size` (the user's, up to 2^31) must not size an allocation
    let mut log: Vec<MergeRecord> = Vec::with_capacity(target_merges.min(words.syms.len()));
    let mut n_syms = 256usize;
    while n_syms < 256 + target_merges {
        let Some(mut job) = heap.pop() else { break };
        let current = pc.get(&job.pair).copied().unwrap_or(0).max(0) as u64;
        if current != job.count {
            if current > 0 {
                job.count = current;
                heap.push(job);
            }
            continue;
        }
        if job.count < min_count {
            break;
        }
        let (a, b) = ((job.pair >> 32) as u32, job.pair as u32);
        let mut joined = sym_bytes[a as usize].clone();
        joined.extend_from_slice(&sym_bytes[b as usize]);
        // HF: a byte string reachable by two pairs keeps its first id; the vocab does not grow
        let new = match sym_of.get(&joined) {
            Some(&s) => s,
            None => {
                let s = sym_bytes.len() as u32;
                sym_of.insert(joined.clone(), s);
                sym_bytes.push(joined);
                n_syms += 1;
                s
            }
        };
        log.push(MergeRecord {
            left: a,
            right: b,
            id: new,
            count: job.count,
        });
        apply_merge(&mut words, &mut pc, &mut heap, a, b, new, &job.words);
        crate::cancel::check()?;
        if log.len().is_multiple_of(64)
            && !progress.report("merge", (n_syms - 256) as u64, target_merges as u64)
        {
            return Err(Error::Interrupted("during merges".into()));
        }
    }
    progress.report("merge", (n_syms - 256) as u64, target_merges as u64);

    // final ids: special tokens first (HF layout), then symbols in order
    let k = n_special as u32;
    let mut tokens: Vec<Vec<u8>> = cfg
        .special_tokens
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    tokens.extend(sym_bytes);
    let specials = cfg
        .special_tokens
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), i as u32))
        .collect();
    for m in &mut log {
        m.left += k;
        m.right += k;
        m.id += k;
    }
    let merges = log.iter().map(|m| (m.left, m.right)).collect();
    let bpe = Bpe::new(tokens, specials, merges, pretokenizer, false)?;
    Ok(Trained { bpe, log })
}

fn build_words(counts: &PieceCounts, byte_sym: &dyn Fn(u8) -> u32) -> Words {
    let sorted = counts.sorted();
    let total: usize = sorted.iter().map(|(w, _)| w.len()).sum();
    let mut words = Words {
        syms: Vec::with_capacity(total),
        start: Vec::with_capacity(sorted.len()),
        len: Vec::with_capacity(sorted.len()),
        count: Vec::with_capacity(sorted.len()),
    };
    for (w, c) in sorted {
        words.start.push(words.syms.len() as u32);
        words.len.push(w.len() as u32);
        words.count.push(c);
        words.syms.extend(w.iter().map(|&b| byte_sym(b)));
    }
    words
}

type PairMap = FxHashMap<u64, (i64, Vec<u32>)>;

/// Count all adjacent pairs and the words holding them, in parallel over word ranges.
fn initial_pairs(words: &Words) -> (FxHashMap<u64, i64>, BinaryHeap<Job>) {
    let n = words.len.len();
    let chunk = n.div_ceil(rayon::current_num_threads() * 8).max(1);
    let parts: Vec<PairMap> = (0..n)
        .step_by(chunk)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|lo| {
            let mut m = PairMap::default();
            for w in lo..(lo + chunk).min(n) {
                let c = words.count[w] as i64;
                for p in words.word(w).windows(2) {
                    let e = m.entry(pair_key(p[0], p[1])).or_default();
                    e.0 += c;
                    if e.1.last() != Some(&(w as u32)) {
                        e.1.push(w as u32);
                    }
                }
            }
            m
        })
        .collect();
    // concatenate in range order so every word list stays sorted
    let mut all = PairMap::default();
    for part in parts {
        for (k, (c, ws)) in part {
            let e = all.entry(k).or_default();
            e.0 += c;
            e.1.extend(ws);
        }
    }
    let mut pc = FxHashMap::default();
    pc.reserve(all.len());
    let mut jobs = Vec::with_capacity(all.len());
    for (pair, (c, ws)) in all {
        pc.insert(pair, c);
        jobs.push(Job {
            count: c as u64,
            pair,
            words: ws,
        });
    }
    (pc, BinaryHeap::from(jobs))
}

/// Replace `(a, b)` by `new` left to right in every listed word and update pair counts; push
/// jobs for the pairs the merge created.
fn apply_merge(
    words: &mut Words,
    pc: &mut FxHashMap<u64, i64>,
    heap: &mut BinaryHeap<Job>,
    a: u32,
    b: u32,
    new: u32,
    list: &[u32],
) {
    let mut fresh: FxHashMap<u64, Vec<u32>> = FxHashMap::default();
    for &w in list {
        let wi = w as usize;
        let start = words.start[wi] as usize;
        let n = words.len[wi] as usize;
        let c = words.count[wi] as i64;
        let s = &mut words.syms[start..start + n];
        let (mut i, mut j) = (0usize, 0usize);
        let mut changed = false;
        while i < n {
            if i + 1 < n && s[i] == a && s[i + 1] == b {
                changed = true;
                if j > 0 {
                    let x = s[j - 1];
                    *pc.entry(pair_key(x, a)).or_insert(0) -= c;
                    let q = pair_key(x, new);
                    *pc.entry(q).or_insert(0) += c;
                    push_word(&mut fresh, q, w);
                }
                if i + 2 < n {
                    let y = s[i + 2];
                    *pc.entry(pair_key(b, y)).or_insert(0) -= c;
                    let q = pair_key(new, y);
                    *pc.entry(q).or_insert(0) += c;
                    push_word(&mut fresh, q, w);
                }
                *pc.entry(pair_key(a, b)).or_insert(0) -= c;
                s[j] = new;
                i += 2;
            } else {
                s[j] = s[i];
                i += 1;
            }
            j += 1;
        }
        if changed {
            words.len[wi] = j as u32;
        }
    }
    let mut created: Vec<(u64, Vec<u32>)> = fresh.into_iter().collect();
    created.sort_unstable_by_key(|(q, _)| *q);
    for (q, ws) in created {
        let c = pc.get(&q).copied().unwrap_or(0);
        if c > 0 {
            heap.push(Job {
                count: c as u64,
                pair: q,
                words: ws,
            });
        }
    }
}

#[inline]
fn push_word(fresh: &mut FxHashMap<u64, Vec<u32>>, q: u64, w: u32) {
    let v = fresh.entry(q).or_default();
    if v.last() != Some(&w) {
        v.push(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    fn run(doc: &str, pattern: &str, vocab: usize, specials: &[&str], tie: TieOrder) -> Trained {
        let p = Pretokenizer::new(pattern).unwrap();
        let mut c = PieceCounts::new();
        c.add_docs(&p, &[doc]).unwrap();
        let cfg = TrainConfig {
            vocab_size: vocab,
            min_frequency: 0,
            special_tokens: specials.iter().map(|s| s.to_string()).collect(),
            tie_order: tie,
        };
        train(c, p, &cfg, &Silent).unwrap()
    }

    fn merges(t: &Trained) -> Vec<(String, String)> {
        let s = |id: u32| String::from_utf8_lossy(t.bpe.token_bytes(id).unwrap()).into_owned();
        t.bpe.merges().iter().map(|&(l, r)| (s(l), s(r))).collect()
    }

    fn m(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// TV1 of docs/bpe.md §6: the two tie rules resolve a leading-space tie oppositely.
    #[test]
    fn tv1_tie_rules_give_hf_and_rustbpe_orders() {
        let hf = run("ab ab cd cd", "gpt2", 260, &[], TieOrder::Hf);
        assert_eq!(
            merges(&hf),
            m(&[("a", "b"), ("c", "d"), (" ", "cd"), (" ", "ab")])
        );
        let rb = run("ab ab cd cd", "gpt2", 260, &[], TieOrder::Bytes);
        assert_eq!(
            merges(&rb),
            m(&[(" ", "c"), ("a", "b"), (" c", "d"), (" ", "ab")])
        );
    }

    /// The TV2 document of docs/bpe.md §6 (also used by TV3).
    const TV2: &str = "low low low low low lower lower newest newest newest newest newest newest widest widest widest";

    /// TV2 of docs/bpe.md §6.
    #[test]
    fn tv2_fifth_merge_is_the_hf_tie_winner() {
        let t = run(TV2, "gpt2", 262, &[], TieOrder::Hf);
        let got = merges(&t);
        assert_eq!(
            &got[..6],
            &m(&[
                ("e", "s"),
                ("es", "t"),
                ("l", "o"),
                ("lo", "w"),
                ("e", "w"),
                ("n", "ew")
            ])[..]
        );
        assert_eq!(t.log[0].count, 9);
        assert_eq!(t.log[4].count, 6);
        let rb = run(TV2, "gpt2", 261, &[], TieOrder::Bytes);
        assert_eq!(merges(&rb)[4], (" ".to_string(), "n".to_string()));
    }

    /// TV3 of docs/bpe.md §6: `vocab_size` counts the special token and the 256 bytes (§3.4).
    #[test]
    fn tv3_vocab_size_counts_specials_and_bytes() {
        let t = run(TV2, "cl100k", 260, &["<|endoftext|>"], TieOrder::Hf);
        assert_eq!(merges(&t), m(&[("e", "s"), ("es", "t"), ("l", "o")]));
        assert_eq!(t.bpe.vocab_size(), 260);
        assert_eq!(t.bpe.specials()[0], ("<|endoftext|>".to_string(), 0));
    }

    #[test]
    fn a_huge_vocab_size_costs_what_the_corpus_allows() {
        // 10^9 merges asked of a 3-byte corpus: 2 merges, no 24 GB merge log up front
        let t = run("aaa", "gpt2", 1_000_000_000, &[], TieOrder::Hf);
        assert_eq!(merges(&t), m(&[("a", "a"), ("aa", "a")]));
        assert_eq!(t.bpe.vocab_size(), 258);
    }

    #[test]
    fn overlapping_pairs_merge_left_to_right() {
        let t = run("aaa", "gpt2", 258, &[], TieOrder::Hf);
        assert_eq!(merges(&t), m(&[("a", "a"), ("aa", "a")]));
    }

    #[test]
    fn thread_count_does_not_change_merges() {
        let doc = "the cat sat on the mat; the dog's 123 bones 4567!\n\n".repeat(300) + TV2;
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let a = one.install(|| merges(&run(&doc, "cl100k", 400, &[], TieOrder::Hf)));
        let b = two.install(|| merges(&run(&doc, "cl100k", 400, &[], TieOrder::Hf)));
        assert_eq!(a, b);
    }

    #[test]
    fn bad_settings_are_errors() {
        let cfg = |v, s: &[&str]| TrainConfig {
            vocab_size: v,
            min_frequency: 0,
            special_tokens: s.iter().map(|x| x.to_string()).collect(),
            tie_order: TieOrder::Hf,
        };
        assert!(validate(&cfg(257, &["<a>", "<b>"])).is_err());
        assert!(validate(&cfg(300, &["<a>", "<a>"])).is_err());
        assert!(validate(&cfg(300, &[""])).is_err());
        let p = Pretokenizer::new("gpt2").unwrap();
        let e = train(PieceCounts::new(), p, &cfg(300, &[]), &Silent).unwrap_err();
        assert!(e.to_string().contains("empty"));
    }
}
