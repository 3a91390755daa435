//! Exact-mode byte-probability rows on a real vocabulary, for profilers and cachegrind (no
//! Python, no LM: LM rows are uniform or fixed pseudo-random, so only the engine's own work is measured).
//!
//! `cargo run --release --example byte_probs_prof -- VOCAB.tiktoken TEXT [prompt] [bytes] [mode]
//! [lm] [layout]` takes the last tenth of `TEXT` (cut after a newline, as `benches/byte_probs.py`'s held-out
//! split), starts from its first `prompt` bytes (200) and follows the next `bytes` bytes (20) of
//! the text in `mode` (`exact`), preparing one row per empty-overhang cover at every byte as
//! `tokforge.ByteLM` does. `lm` is `uniform` (default: every row uniform) or `random`: eight
//! fixed pseudo-random normalised rows (log-probabilities spread over about 14 nats), the one
//! after a stem picked by its last token, so that rows differ and do not all sit in cache (and
//! a change to the `exp` of `prepare` shows in log Q). An eighth argument `trie` hands the
//! rows over already in the engine's token order (`CoverIndex::token_order`, permuted once
//! here, as an LM that permutes its output layer at load would give them; docs/byte_probs.md
//! §9), `ids` (default) in id order; both give the same bits. Prints the start-up and per-byte CPU milliseconds of this thread,
//! the rows prepared, a checksum of the byte distributions and a hash of their bits and of log Q
//! (to check that two builds give the same probabilities, to the bit). With `ROWS` set in the
//! environment, one line per prepared row on stderr: its CPU time, whether its validity row was
//! computed (`fresh`, it joined the row cache) or served by the cache, and its tail.

use std::path::Path;
use std::sync::Arc;
use tokforge::byte_probs::{CoverIndex, LmRow, Mode, RowLayout, Rule};
use tokforge::formats::detect::{load_file, LoadOptions};

mod common;

fn cpu() -> f64 {
    common::clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (vocab, text_path) = (&args[1], &args[2]);
    let prompt_len: usize = args.get(3).map_or(Ok(200), |s| s.parse())?;
    let n_bytes: usize = args.get(4).map_or(Ok(20), |s| s.parse())?;
    let mode = Mode::parse(args.get(5).map_or("exact", String::as_str))?;
    let bpe = Arc::new(load_file(Path::new(vocab), &LoadOptions::default())?.into_bpe()?);
    let text = std::fs::read(text_path)?;
    let cut = text.len() * 9 / 10;
    let cut = text[..cut]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(cut, |i| i + 1);
    let held = &text[cut..];
    let end = (prompt_len + n_bytes).min(held.len());
    let eos = bpe.vocab_size() as u32;
    let v = bpe.vocab_size() + 1;
    let uniform = vec![-(v as f64).ln(); v];
    let random = args.get(6).is_some_and(|s| s == "random");
    let mut tables: Vec<Vec<f64>> = if random {
        (0..8).map(|k| random_row(v, k)).collect()
    } else {
        vec![uniform.clone()]
    };
    let layout = match args.get(7).map(String::as_str) {
        Some("trie") => RowLayout::Trie,
        _ => RowLayout::Ids,
    };
    let t0 = cpu();
    let m = CoverIndex::new(bpe, v, eos, mode, Rule::Pieces, 4096)?;
    let t_new = cpu() - t0;
    if layout == RowLayout::Trie {
        let order = m.token_order();
        for t in &mut tables {
            *t = order.iter().map(|&id| t[id as usize]).collect();
        }
    }
    let lm = |stem: &[u32]| &tables[stem.last().map_or(0, |&t| t as usize % tables.len())];
    let t0 = cpu();
    let plan = m.plan(&held[..prompt_len])?;
    let rows: Vec<Vec<f64>> = plan
        .stems
        .iter()
        .map(|(s, _)| {
            (plan.common..=s.len())
                .flat_map(|k| lm(&s[..k]).iter().copied())
                .collect()
        })
        .collect();
    let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
    let mut st = m.start_in(&[], &plan, &refs, layout)?;
    let t_start = cpu() - t0;
    let verbose = std::env::var_os("ROWS").is_some();
    let mut n_rows = 0usize;
    let mut check = 0.0f64;
    // FNV-1a over the bits of every probability: equal only if no probability moved by a bit
    let mut bits_hash: u64 = 0xcbf2_9ce4_8422_2325;
    let t0 = cpu();
    for &b in &held[prompt_len..end] {
        let mut star_rows: Vec<Arc<LmRow>> = Vec::new();
        for (s, _) in st.stars() {
            let cached = m.validity().cached_rows();
            let t = cpu();
            star_rows.push(Arc::new(m.prepare_in(lm(s), layout, s)?));
            if verbose {
                // a validity row computed here (not served by the row cache) grows the cache
                let fresh = m.validity().cached_rows() > cached;
                let tail = m.validity().tail(s)?.map(|(k, t)| (k.len(), t));
                eprintln!(
                    "  row {:8.3} ms  {}  tail {:?}",
                    1e3 * (cpu() - t),
                    if fresh { "fresh " } else { "cached" },
                    tail.map(|(k, t)| (k, String::from_utf8_lossy(&t).into_owned()))
                );
            }
        }
        n_rows += star_rows.len();
        let (p, _) = m.dist(&st, &star_rows)?;
        check += p
            .iter()
            .enumerate()
            .map(|(i, x)| x * (i + 1) as f64)
            .sum::<f64>();
        for x in &p {
            for byte in x.to_bits().to_le_bytes() {
                bits_hash = (bits_hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        st = m.advance(&st, &star_rows, b)?;
    }
    let t_bytes = cpu() - t0;
    let n = end - prompt_len;
    println!(
        "new {:.1} ms  start {:.1} ms  {} bytes: {:.3} ms/byte  rows/byte {:.2}  log_q {:?}  check {:.9}  bits {:016x}",
        1e3 * t_new,
        1e3 * t_start,
        n,
        1e3 * t_bytes / n.max(1) as f64,
        n_rows as f64 / n.max(1) as f64,
        st.log_q(),
        check,
        bits_hash ^ st.log_q().to_bits()
    );
    Ok(())
}

/// Log-probabilities of `v` ids from a fixed hash of `(id, k)`, normalised: logits uniform in
/// `[-14, 0]`.
fn random_row(v: usize, k: u64) -> Vec<f64> {
    let logits: Vec<f64> = (0..v as u64)
        .map(|i| {
            let h = (i ^ (k << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            -14.0 * ((h >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect();
    let z = logits.iter().map(|x| x.exp()).sum::<f64>().ln();
    logits.iter().map(|x| x - z).collect()
}
