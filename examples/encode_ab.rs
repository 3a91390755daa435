//! Rust-level encode timing for A/B comparisons of encoder builds (no Python in the loop).
//!
//! `cargo run --release --example encode_ab -- VOCAB.tiktoken SAMPLE.txt LENGTHS.json [passes]`
//! splits the sample into the documents of `benches/encode.py` (LENGTHS holds their lengths in
//! characters), then times, per document, `Bpe::encode_ordinary` on a fresh model (cold pass)
//! and again (warm passes), plus the pre-tokenizer alone. Prints one line of seconds (CPU time
//! of this thread) and a checksum of the ids, so two builds can be alternated and compared.
//! With `PRE_ONLY=N` it times the pre-tokenizer alone (N more passes, the best) and stops.
//! With `SPLIT=N` every document is first cut into texts of about N bytes (short calls).
//! With `KEEP=1` a pass keeps every document's ids until its clock stops (as the Python bench's
//! list of arrays does) and folds them into the checksum after: the fold, a dependent
//! multiply-add per id, is then outside the timed pass (it weighed on gpt2's time, 1.46x
//! cl100k's ids); the checksum is the same.

use std::path::Path;

use tokforge::formats::detect::{load_file, LoadOptions};
use tokforge::Bpe;

mod common;
use common::{clock, thread_cpu as cpu};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (vocab, sample, lengths) = (&args[1], &args[2], &args[3]);
    let passes: usize = args.get(4).map_or(Ok(3), |s| s.parse())?;
    let stem = common::vocab_stem(vocab)?;
    let bpe = load_file(Path::new(vocab), &LoadOptions::default())?.into_bpe()?;
    let text = std::fs::read_to_string(sample)?;
    let lens: Vec<usize> = std::fs::read_to_string(lengths)?
        .trim_matches(|c| c == '[' || c == ']' || c == '\n')
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let mut docs = Vec::with_capacity(lens.len());
    let mut chars = text.char_indices().map(|(i, _)| i).chain([text.len()]);
    let mut start = chars.next().unwrap_or(0);
    for &n in &lens {
        let end = if n == 0 {
            start
        } else {
            chars.nth(n - 1).unwrap_or(text.len())
        };
        docs.push(&text[start..end]);
        start = end;
    }
    if let Some(n) = std::env::var("SPLIT")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
    {
        // short texts: each document cut into pieces of about `n` bytes (at char boundaries),
        // to weigh what a call costs besides its pieces
        let mut short = Vec::new();
        for d in &docs {
            let mut s = 0;
            while s < d.len() {
                let mut e = (s + n.max(1)).min(d.len());
                while !d.is_char_boundary(e) {
                    e += 1;
                }
                short.push(&d[s..e]);
                s = e;
            }
        }
        docs = short;
    }
    let pre = bpe.pretokenizer();
    let t = cpu();
    let mut pieces = 0usize;
    for d in &docs {
        pre.for_each_chunk(d, |s| pieces += s.len())?;
    }
    let t_pre = cpu() - t;
    if let Some(n) = std::env::var_os("PRE_ONLY") {
        // pre-tokenizer alone, `n` more passes (for cachegrind and timing): the best pass
        let n: usize = n.to_str().and_then(|s| s.parse().ok()).unwrap_or(1);
        let mut best = t_pre;
        let mut ends = 0usize;
        for _ in 0..n {
            let t = cpu();
            for d in &docs {
                pre.for_each_chunk(d, |s| ends = ends.wrapping_add(s[s.len() - 1].1))?;
            }
            best = best.min(cpu() - t);
        }
        println!("{stem} pre {best:.4} pieces {pieces} ends {ends}");
        return Ok(());
    }
    if std::env::var_os("PIECE_STATS").is_some() {
        let mut hist = [(0usize, 0usize); 4];
        for d in &docs {
            pre.for_each_chunk(d, |sp| {
                for &(s, e) in sp {
                    let n = e - s;
                    let k = match n {
                        0..=15 => 0,
                        16..=31 => 1,
                        32..=100 => 2,
                        _ => 3,
                    };
                    hist[k].0 += 1;
                    hist[k].1 += n;
                }
            })?;
        }
        println!("pieces by length <=15, <=31, <=100, more: (count, bytes) {hist:?}");
    }
    let mut times = Vec::new();
    let mut sum = 0u64;
    let keep = std::env::var_os("KEEP").is_some();
    for _ in 0..passes {
        let t = cpu();
        if keep {
            // the ids of every document held until the clock stops, folded after
            let mut all = Vec::with_capacity(docs.len());
            for d in &docs {
                all.push(bpe.encode_ordinary(d)?);
            }
            times.push(cpu() - t);
            sum = all.iter().fold(sum, |s, ids| fold_ids(s, ids));
            continue;
        }
        for d in &docs {
            sum = fold_ids(sum, &bpe.encode_ordinary(d)?);
        }
        times.push(cpu() - t);
    }
    let warm = times[1..].iter().cloned().fold(f64::INFINITY, f64::min);
    println!(
        "{stem} pre {t_pre:.4} cold {:.4} warm {warm:.4} pieces {pieces} sum {sum:016x}",
        times[0]
    );
    if let Some(threads) = std::env::var("BATCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        batch(vocab, stem, &docs, passes, threads)?;
    }
    Ok(())
}

/// `BATCH_THREADS=T`: wall time of `Bpe::encode_batch` over all documents on a pool of `T`
/// threads and of the same documents one after the other on one thread, each on a fresh model
/// (cold pass, then the fastest warm pass), alternated per pass; and the process CPU time of
/// the batch.
fn batch(
    vocab: &str,
    stem: &str,
    docs: &[&str],
    passes: usize,
    threads: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let (one, many) = (
        load_file(Path::new(vocab), &LoadOptions::default())?.into_bpe()?,
        load_file(Path::new(vocab), &LoadOptions::default())?.into_bpe()?,
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let (mut t1, mut tn, mut cn) = (Vec::new(), Vec::new(), Vec::new());
    let (mut s1, mut sn) = (0usize, 0usize);
    for _ in 0..passes.max(2) {
        let t = std::time::Instant::now();
        for d in docs {
            s1 += one.encode_ordinary(d)?.len();
        }
        t1.push(t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        let c = clock(libc::CLOCK_PROCESS_CPUTIME_ID);
        let got = pool.install(|| one_batch(&many, docs))?;
        tn.push(t.elapsed().as_secs_f64());
        cn.push(clock(libc::CLOCK_PROCESS_CPUTIME_ID) - c);
        sn += got;
    }
    let best = |v: &[f64]| v[1..].iter().cloned().fold(f64::INFINITY, f64::min);
    println!(
        "{stem} batch{threads} cold {:.4} warm {:.4} (cpu {:.4} {:.4}) one thread cold {:.4} \
         warm {:.4}: {:.2}x cold, {:.2}x warm, tables {}, ids equal {}",
        tn[0],
        best(&tn),
        cn[0],
        best(&cn),
        t1[0],
        best(&t1),
        t1[0] / tn[0],
        best(&t1) / best(&tn),
        many.piece_cache().info().tables,
        s1 == sn
    );
    Ok(())
}

/// `sum` with one document's ids folded in (its count, then each id).
fn fold_ids(sum: u64, ids: &[u32]) -> u64 {
    let sum = sum.wrapping_mul(31).wrapping_add(ids.len() as u64);
    ids.iter().fold(sum, |a, &i| {
        a.wrapping_mul(1_000_003).wrapping_add(u64::from(i))
    })
}

fn one_batch(bpe: &Bpe, docs: &[&str]) -> Result<usize, tokforge::Error> {
    let batch = tokforge::TokenModel::encode_batch(bpe, docs, None)?;
    Ok(batch.iter().map(Vec::len).sum())
}
