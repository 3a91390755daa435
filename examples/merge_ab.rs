//! Merge-loop timing for A/B comparisons of encoder builds: the uncached path alone.
//!
//! `cargo run --release --example merge_ab -- VOCAB.tiktoken SAMPLE.txt [passes]` collects the
//! distinct pieces of the sample (in order of first occurrence: what a cold pass merges, so
//! without the short tokens of a rank model, which the piece table's seed holds), then
//! times `Bpe::encode_piece` over all of them `passes` times (default 5) and prints the fastest
//! pass's CPU seconds (this thread) by length class and a checksum of the ids. No piece table is
//! involved, so the numbers are the merge loop's (and, for pieces of 16 bytes or more of a rank
//! model, the whole-piece lookup before it).

use std::path::Path;

use tokforge::formats::detect::{load_file, LoadOptions};

mod common;
use common::thread_cpu as cpu;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (vocab, sample) = (&args[1], &args[2]);
    let passes: usize = args.get(3).map_or(Ok(5), |s| s.parse())?;
    let stem = common::vocab_stem(vocab)?;
    let bpe = load_file(Path::new(vocab), &LoadOptions::default())?.into_bpe()?;
    let text = std::fs::read_to_string(sample)?;
    let bytes = text.as_bytes();
    let mut seen = rustc_hash::FxHashSet::default();
    // (short: <= 15 bytes, 16..=32, longer)
    let mut classes: [Vec<&[u8]>; 3] = Default::default();
    bpe.pretokenizer().for_each_chunk(&text, |spans| {
        for &(s, e) in spans {
            let p = &bytes[s..e];
            // a short token is a seed hit in a cold pass, not merged
            let token = bpe.ignore_merges() && p.len() <= 15 && bpe.id_of(p).is_some();
            if p.len() > 1 && !token && seen.insert(p) {
                classes[match p.len() {
                    0..=15 => 0,
                    16..=32 => 1,
                    _ => 2,
                }]
                .push(p);
            }
        }
    })?;
    let mut best = [f64::INFINITY; 3];
    let mut sum = 0u64;
    let mut out = Vec::new();
    for _ in 0..passes {
        sum = 0;
        for (k, pieces) in classes.iter().enumerate() {
            let t = cpu();
            for p in pieces {
                out.clear();
                bpe.encode_piece(p, &mut out);
                sum = out.iter().fold(sum.wrapping_mul(31), |a, &i| {
                    a.wrapping_mul(1_000_003).wrapping_add(u64::from(i))
                });
            }
            best[k] = best[k].min(cpu() - t);
        }
    }
    println!(
        "{stem} merge short {:.4} mid {:.4} long {:.4} total {:.4} pieces {} {} {} sum {sum:016x}",
        best[0],
        best[1],
        best[2],
        best.iter().sum::<f64>(),
        classes[0].len(),
        classes[1].len(),
        classes[2].len(),
    );
    Ok(())
}
