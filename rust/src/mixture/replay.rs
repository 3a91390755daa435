//! Replay of a merge list on each category's sample (Hayase et al. 2024, section 3; design note
//! `docs/mixture_inference.md`, section Replay).
//!
//! Per category (one rayon task each): count the pre-tokenized pieces with
//! [`PieceCounts`](crate::bpe::count::PieceCounts), lay the unique pieces out as byte symbols in
//! sorted order, count every adjacent pair (window counts: `"aaa"` gives `(a, a) = 2`) and index
//! the words holding it. Then for each merge: record its pair's count and the top-k competitors
//! (a max-heap with lazy deletion: an entry is live while its count equals the current count),
//! rewrite only the words listed for its pair, left to right without overlap (as HF
//! `Word::merge` and [`crate::bpe::train`]), accumulate the signed change of every touched pair
//! for the step and record the non-zero ones.
//!
//! Cost: O(symbols) to build, O(occurrences merged) per step plus O(k log H) for the competitors;
//! no recount per step. After all categories are done the pair keys of every category are
//! interned by sorting (ids = ranks of the keys), which makes the ids thread-independent.

use super::{pair_key, Counts, MergeList, Transcript};
use crate::bpe::count::{PieceCounts, Utf8Policy};
use crate::error::{Error, Result};
use crate::pretokenize::Pretokenizer;
use crate::progress::{Progress, Silent};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Steps between two progress reports of one category (a report may take the GIL: 512 steps are
/// ~1 ms of replay on a 1 MB sample, so the callback costs well under 1%).
const REPORT_EVERY: usize = 512;

/// One category's text: in memory or in files (read in blocks).
#[derive(Debug, Clone)]
pub enum Sample {
    Text(String),
    Files(Vec<PathBuf>),
}

/// A category's replay before pair interning (pair keys are `(left << 32) | right` symbols).
struct Raw {
    pairs_total: u64,
    bytes: u64,
    snap: Vec<(u64, u32)>,
    chosen: Vec<u32>,
    step_off: Vec<u64>,
    d_key: Vec<u64>,
    d_diff: Vec<i32>,
    d_count: Vec<u32>,
    top_key: Vec<u64>,
    top_count: Vec<u32>,
}

struct Words {
    syms: Vec<u32>,
    start: Vec<u32>,
    len: Vec<u32>,
    count: Vec<u64>,
}

/// Replay `merges` on every sample (in parallel over categories) and intern the pairs.
/// `progress` gets `("replay", steps done over all categories, categories x steps)`.
pub fn replay(
    merges: MergeList,
    pretok: &Pretokenizer,
    samples: &[(String, Sample)],
    top_k: usize,
    policy: Utf8Policy,
    progress: &dyn Progress,
) -> Result<Counts> {
    if samples.is_empty() {
        return Err(Error::Input("no categories given".into()));
    }
    let steps = merges.len() as u64;
    let total = steps * samples.len() as u64;
    let done = AtomicU64::new(0);
    let raws: Vec<Raw> = samples
        .par_iter()
        .map(|(name, sample)| {
            let counts = count_sample(pretok, name, sample, policy)?;
            replay_one(&merges, counts, top_k, &mut |k| {
                let d = done.fetch_add(k as u64, Ordering::Relaxed) + k as u64;
                progress.report("replay", d, total)
            })
            .map_err(|e| match e {
                Error::Interrupted(_) => Error::Interrupted(format!("while replaying {name:?}")),
                e => e,
            })
        })
        .collect::<Result<_>>()?;
    progress.report("replay", total, total);
    Ok(intern(merges, samples, raws, top_k))
}

fn count_sample(
    pretok: &Pretokenizer,
    name: &str,
    sample: &Sample,
    policy: Utf8Policy,
) -> Result<PieceCounts> {
    let mut counts = PieceCounts::new();
    match sample {
        Sample::Text(t) => counts.add_docs(pretok, &[t.as_str()])?,
        Sample::Files(fs) => {
            for f in fs {
                counts.add_file(pretok, f, policy, &Silent)?;
            }
        }
    }
    if counts.bytes == 0 {
        return Err(Error::Input(format!(
            "category {name:?} has an empty sample: give it some text"
        )));
    }
    // a pair count is at most the number of bytes, so u32 counts are exact below 4 GiB
    if counts.bytes > u32::MAX as u64 {
        return Err(Error::Input(format!(
            "category {name:?} has {} bytes; samples are limited to 4 GiB (counts are 32-bit)",
            counts.bytes
        )));
    }
    Ok(counts)
}

/// Replay on one category's piece counts. `tick(k)` is told that `k` more steps are done and
/// returns `false` to stop.
fn replay_one(
    merges: &MergeList,
    counts: PieceCounts,
    top_k: usize,
    tick: &mut dyn FnMut(usize) -> bool,
) -> Result<Raw> {
    let bytes = counts.bytes;
    let sorted = counts.into_sorted();
    let mut words = Words {
        syms: Vec::with_capacity(sorted.iter().map(|(w, _)| w.len()).sum()),
        start: Vec::with_capacity(sorted.len()),
        len: Vec::with_capacity(sorted.len()),
        count: Vec::with_capacity(sorted.len()),
    };
    for (w, c) in sorted {
        words.start.push(words.syms.len() as u32);
        words.len.push(w.len() as u32);
        words.count.push(c);
        words.syms.extend(w.iter().map(|&b| b as u32));
    }

    // pair counts and the words holding each pair (lists may keep words that lost the pair)
    let mut pc: FxHashMap<u64, i64> = FxHashMap::default();
    let mut holders: FxHashMap<u64, Vec<u32>> = FxHashMap::default();
    for w in 0..words.len.len() {
        let s = words.start[w] as usize;
        let c = words.count[w] as i64;
        for p in words.syms[s..s + words.len[w] as usize].windows(2) {
            let k = pair_key(p[0], p[1]);
            *pc.entry(k).or_insert(0) += c;
            let h = holders.entry(k).or_default();
            if h.last() != Some(&(w as u32)) {
                h.push(w as u32);
            }
        }
    }
    let mut snap: Vec<(u64, u32)> = pc.iter().map(|(&k, &c)| (k, c as u32)).collect();
    snap.sort_unstable();
    let pairs_total = snap.iter().map(|&(_, c)| c as u64).sum();
    let mut heap: BinaryHeap<(u32, Reverse<u64>)> =
        snap.iter().map(|&(k, c)| (c, Reverse(k))).collect();

    let steps = merges.len();
    let mut raw = Raw {
        pairs_total,
        bytes,
        snap,
        chosen: Vec::with_capacity(steps),
        step_off: Vec::with_capacity(steps + 1),
        d_key: Vec::new(),
        d_diff: Vec::new(),
        d_count: Vec::new(),
        top_key: Vec::with_capacity(steps * top_k),
        top_count: Vec::with_capacity(steps * top_k),
    };
    raw.step_off.push(0);
    let mut diff: FxHashMap<u64, i64> = FxHashMap::default();
    let mut fresh: FxHashMap<u64, Vec<u32>> = FxHashMap::default();
    let mut popped: Vec<(u32, Reverse<u64>)> = Vec::with_capacity(top_k + 1);
    for (t, &(a, b, new)) in merges.merges().iter().enumerate() {
        let m = pair_key(a, b);
        let cur = pc.get(&m).copied().unwrap_or(0);
        raw.chosen.push(cur as u32);
        if top_k > 0 {
            top_competitors(&mut heap, &pc, m, top_k, &mut popped);
            for &(c, Reverse(k)) in popped.iter().filter(|e| e.1 .0 != m) {
                raw.top_key.push(k);
                raw.top_count.push(c);
            }
            raw.top_key.resize((t + 1) * top_k, 0);
            raw.top_count.resize((t + 1) * top_k, 0);
            heap.extend(popped.drain(..));
        }
        if cur > 0 {
            let list = holders.remove(&m).unwrap_or_default();
            merge_words(&mut words, a, b, new, &list, &mut diff, &mut fresh);
            let mut changed: Vec<(u64, i64)> = diff.drain().filter(|&(_, d)| d != 0).collect();
            changed.sort_unstable();
            for (k, d) in changed {
                let c = pc.entry(k).or_insert(0);
                *c += d;
                debug_assert!(*c >= 0);
                raw.d_key.push(k);
                raw.d_diff.push(d as i32);
                raw.d_count.push(*c as u32);
                if *c > 0 && top_k > 0 {
                    heap.push((*c as u32, Reverse(k)));
                }
            }
            debug_assert_eq!(pc.get(&m).copied().unwrap_or(0), 0);
            let mut created: Vec<(u64, Vec<u32>)> = fresh.drain().collect();
            created.sort_unstable_by_key(|(k, _)| *k);
            for (k, ws) in created {
                holders.entry(k).or_default().extend(ws);
            }
        }
        raw.step_off.push(raw.d_key.len() as u64);
        if (t + 1) % REPORT_EVERY == 0 && !tick(REPORT_EVERY) {
            return Err(Error::Interrupted("replay".into()));
        }
    }
    if !tick(steps % REPORT_EVERY) {
        return Err(Error::Interrupted("replay".into()));
    }
    Ok(raw)
}

/// Pop the live heap entries with the highest counts until `k` of them are not `m` (into `out`,
/// descending; the caller pushes them back). Stale and duplicate entries are dropped.
fn top_competitors(
    heap: &mut BinaryHeap<(u32, Reverse<u64>)>,
    pc: &FxHashMap<u64, i64>,
    m: u64,
    k: usize,
    out: &mut Vec<(u32, Reverse<u64>)>,
) {
    out.clear();
    let mut others = 0;
    while others < k {
        let Some(e) = heap.pop() else { break };
        let (c, Reverse(key)) = e;
        let live = pc.get(&key).is_some_and(|&cur| cur == c as i64 && cur > 0);
        if !live || out.last() == Some(&e) {
            continue; // stale, or a duplicate of the entry just taken (equal entries pop together)
        }
        out.push(e);
        if key != m {
            others += 1;
        }
    }
}

/// Replace `(a, b)` by `new` in the listed words; add the count changes to `diff` and note the
/// words of the pairs the merge creates in `fresh`.
fn merge_words(
    words: &mut Words,
    a: u32,
    b: u32,
    new: u32,
    list: &[u32],
    diff: &mut FxHashMap<u64, i64>,
    fresh: &mut FxHashMap<u64, Vec<u32>>,
) {
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
                    *diff.entry(pair_key(x, a)).or_insert(0) -= c;
                    let q = pair_key(x, new);
                    *diff.entry(q).or_insert(0) += c;
                    note(fresh, q, w);
                }
                if i + 2 < n {
                    let y = s[i + 2];
                    *diff.entry(pair_key(b, y)).or_insert(0) -= c;
                    let q = pair_key(new, y);
                    *diff.entry(q).or_insert(0) += c;
                    note(fresh, q, w);
                }
                *diff.entry(pair_key(a, b)).or_insert(0) -= c;
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
}

#[inline]
fn note(fresh: &mut FxHashMap<u64, Vec<u32>>, q: u64, w: u32) {
    let v = fresh.entry(q).or_default();
    if v.last() != Some(&w) {
        v.push(w);
    }
}

/// Give every pair key of every category (and of every merge) a dense id: its rank among the
/// sorted keys. Converts each category's arrays and builds its by-pair index.
fn intern(merges: MergeList, samples: &[(String, Sample)], raws: Vec<Raw>, top_k: usize) -> Counts {
    let mut keys: Vec<u64> = merges
        .merges()
        .iter()
        .map(|&(a, b, _)| pair_key(a, b))
        .collect();
    for r in &raws {
        keys.extend(r.snap.iter().map(|&(k, _)| k));
        keys.extend_from_slice(&r.d_key);
    }
    keys.par_sort_unstable();
    keys.dedup();
    let id = |k: u64| keys.binary_search(&k).map_or(u32::MAX, |i| i as u32);
    let merge_pair = merges
        .merges()
        .iter()
        .map(|&(a, b, _)| id(pair_key(a, b)))
        .collect();
    let cats = raws
        .into_par_iter()
        .map(|r| {
            let d_pair: Vec<u32> = r.d_key.iter().map(|&k| id(k)).collect();
            let mut by_pair: Vec<u32> = (0..d_pair.len() as u32).collect();
            by_pair.sort_unstable_by_key(|&j| (d_pair[j as usize], j));
            let by_pair_count = by_pair.iter().map(|&j| r.d_count[j as usize]).collect();
            let top_pair = r
                .top_key
                .iter()
                .zip(&r.top_count)
                .map(|(&k, &c)| if c == 0 { 0 } else { id(k) })
                .collect();
            Transcript {
                pairs_total: r.pairs_total,
                bytes: r.bytes,
                snap_pair: r.snap.iter().map(|&(k, _)| id(k)).collect(),
                snap_count: r.snap.iter().map(|&(_, c)| c).collect(),
                chosen: r.chosen,
                step_off: r.step_off,
                d_pair,
                d_diff: r.d_diff,
                by_pair,
                by_pair_count,
                top_pair,
                top_count: r.top_count,
            }
        })
        .collect();
    Counts {
        merges,
        names: samples.iter().map(|(n, _)| n.clone()).collect(),
        cats,
        pair_keys: keys,
        merge_pair,
        top_k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixture::MergeList;

    fn ws_split() -> Pretokenizer {
        // whitespace split with the spaces kept as their own pieces
        Pretokenizer::new(r"\S+").unwrap()
    }

    fn list(pairs: &[(&str, &str)]) -> MergeList {
        let v: Vec<_> = pairs
            .iter()
            .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()))
            .collect();
        MergeList::new(&v).unwrap()
    }

    fn worked() -> Counts {
        let merges = list(&[
            ("a", "b"),
            ("a", "ab"),
            ("b", "a"),
            ("e", "f"),
            ("b", "ba"),
            ("c", "d"),
        ]);
        let samples = vec![
            ("A".to_string(), Sample::Text("aab aab ab ab ef".into())),
            ("B".to_string(), Sample::Text("bba bba ba ba cd".into())),
        ];
        replay(
            merges,
            &ws_split(),
            &samples,
            2,
            Utf8Policy::Strict,
            &Silent,
        )
        .unwrap()
    }

    #[test]
    fn worked_example_counts() {
        let c = worked();
        let p = |l: &str, r: &str| {
            let s = |x: &str| {
                (0..c.merges.len() as u32 + 256)
                    .find(|&i| c.merges.symbol_bytes(i) == x.as_bytes())
                    .unwrap()
            };
            c.pair_id(s(l), s(r)).unwrap()
        };
        let (a, b) = (&c.cats[0], &c.cats[1]);
        // spaces are pieces of their own: they hold no pair
        assert_eq!((a.pairs_total, b.pairs_total), (7, 7));
        assert_eq!((a.bytes, b.bytes), (16, 16));
        assert_eq!(a.chosen, vec![4, 2, 0, 1, 0, 0]);
        assert_eq!(b.chosen, vec![0, 0, 4, 0, 2, 1]);
        assert_eq!(a.count(0, p("a", "a")), 2);
        assert_eq!(a.count(1, p("a", "a")), 0);
        assert_eq!(a.count(1, p("a", "ab")), 2);
        assert_eq!(a.count(2, p("a", "ab")), 0);
        assert_eq!(b.count(3, p("b", "ba")), 2);
        assert_eq!(b.count(3, p("b", "b")), 0);
        assert_eq!(c.missing(), Vec::<usize>::new());
        // competitors of step 0 in A: (a, a) = 2 then (e, f) = 1
        assert_eq!(&a.top_pair[..2], &[p("a", "a"), p("e", "f")]);
        assert_eq!(&a.top_count[..2], &[2, 1]);
        // step 4 in A: nothing left but (e, f) merged at step 3 -> padding
        assert_eq!(&a.top_count[8..10], &[0, 0]);
    }

    #[test]
    fn overlapping_runs_merge_left_to_right() {
        let samples = vec![("x".to_string(), Sample::Text("aaaa".into()))];
        let c = replay(
            list(&[("a", "a"), ("aa", "aa")]),
            &ws_split(),
            &samples,
            1,
            Utf8Policy::Strict,
            &Silent,
        )
        .unwrap();
        assert_eq!(c.cats[0].chosen, vec![3, 1]);
    }

    #[test]
    fn thread_count_does_not_change_transcripts() {
        let text = "the cat sat on the mat; the dog's 123 bones 4567!\n\n".repeat(50);
        let p = Pretokenizer::new("cl100k").unwrap();
        let mut pcounts = PieceCounts::new();
        pcounts.add_docs(&p, &[text.as_str()]).unwrap();
        let cfg = crate::bpe::train::TrainConfig {
            vocab_size: 330,
            min_frequency: 0,
            special_tokens: vec![],
            tie_order: crate::bpe::train::TieOrder::Hf,
        };
        let t = crate::bpe::train::train(pcounts, p.clone(), &cfg, &Silent).unwrap();
        let pairs: Vec<_> = t
            .bpe
            .merges()
            .iter()
            .map(|&(l, r)| {
                (
                    t.bpe.token_bytes(l).unwrap().to_vec(),
                    t.bpe.token_bytes(r).unwrap().to_vec(),
                )
            })
            .collect();
        let samples: Vec<_> = ["en", "x", "y"]
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), Sample::Text(text[i * 7..].to_string())))
            .collect();
        let run = |n| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap();
            pool.install(|| {
                let c = replay(
                    MergeList::new(&pairs).unwrap(),
                    &p,
                    &samples,
                    3,
                    Utf8Policy::Strict,
                    &Silent,
                )
                .unwrap();
                let v: Vec<_> = c
                    .cats
                    .iter()
                    .map(|t| {
                        (
                            t.chosen.clone(),
                            t.d_pair.clone(),
                            t.d_diff.clone(),
                            t.top_pair.clone(),
                        )
                    })
                    .collect();
                (c.pair_keys.clone(), v)
            })
        };
        assert_eq!(run(1), run(2));
        // the trainer's own merges are the arg-max at every step on its own corpus
        let c = replay(
            MergeList::new(&pairs).unwrap(),
            &p,
            &samples[..1],
            1,
            Utf8Policy::Strict,
            &Silent,
        )
        .unwrap();
        let cat = &c.cats[0];
        for (step, (&chosen, &top)) in cat.chosen.iter().zip(&cat.top_count).enumerate() {
            assert!(chosen >= top, "step {step}: {chosen} < {top}");
        }
    }

    #[test]
    fn empty_sample_is_an_error_naming_the_category() {
        let samples = vec![("empty".to_string(), Sample::Text(String::new()))];
        let e = replay(
            list(&[("a", "b")]),
            &ws_split(),
            &samples,
            1,
            Utf8Policy::Strict,
            &Silent,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"empty\""), "{e}");
    }
}
