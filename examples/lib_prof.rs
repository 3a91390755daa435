//! The LiB learner on corpus files with the speed bench's runs, for profilers and cachegrind
//! (no Python in the loop).
//!
//! `cargo run --release --example lib_prof -- corpora/code-go.txt [corpora/...] [reps]`
//! reads each file as `tokforge.lib_model.read_sentences` does (lines stripped, empty ones
//! dropped), learns 300 articles of 20 lines with run A (`out_rate` 0.01, `life` 3) and run B
//! (`out_rate` 0.0001, `life` 10) of `benches/lib_model.py speed`, `reps` times, and prints
//! per run the sizes of `L` and `P` and an FNV-1a hash of both (to check that two builds learn
//! the same lexicons).

use tokforge::lib_model::{LearnConfig, Learner};

fn fnv(h: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *h ^= u64::from(b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
    *h ^= 0xff;
    *h = h.wrapping_mul(0x100_0000_01b3);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut files = Vec::new();
    let mut reps = 1usize;
    for a in std::env::args().skip(1) {
        match a.parse() {
            Ok(n) => reps = n,
            Err(_) => files.push(a),
        }
    }
    for f in &files {
        let text = std::fs::read_to_string(f)?;
        let sents: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        for (run, out_rate, life) in [("A", 0.01, 3), ("B", 0.0001, 10)] {
            let cfg = LearnConfig {
                out_rate,
                life,
                article_len: 20,
                ..LearnConfig::default()
            };
            for _ in 0..reps {
                let mut l = Learner::new(cfg.clone())?;
                for _ in 0..300 {
                    l.learn(&sents)?;
                }
                let mut h = 0xcbf2_9ce4_8422_2325u64;
                for u in l.lexicon().units() {
                    fnv(&mut h, &u);
                }
                let p = l.probation();
                for u in &p {
                    fnv(&mut h, u);
                }
                println!(
                    "{f} {run}: |L| {} |P| {} hash {h:016x}",
                    l.lexicon().len(),
                    p.len()
                );
            }
        }
    }
    Ok(())
}
