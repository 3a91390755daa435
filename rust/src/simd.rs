//! The SIMD level of the CPU, detected at run time, for the loops built at several levels: the
//! pre-tokenizer's windows (`pretokenize::presets::Spans`) and the encoder's pack and emit loops
//! (`bpe::encode`). One detection, so both choose their builds by the same rule.

use std::sync::atomic::{AtomicU8, Ordering};

/// A SIMD level; each includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The x86_64 baseline (SSE2), and every other architecture.
    Sse2,
    /// AVX2 with BMI1, BMI2, LZCNT and POPCNT.
    Avx2,
    /// AVX-512 F, BW, VL, DQ, VBMI and VBMI2, with the AVX2 level's features.
    Avx512,
}

/// The highest [`Level`] this CPU has: detected on the first call, then one load (the
/// encoder asks twice per chunk of 32 pieces; the eleven feature checks each time were 1.4 % of
/// a warm encode's samples).
#[inline]
pub fn level() -> Level {
    match DETECTED.load(Ordering::Relaxed) {
        1 => Level::Sse2,
        2 => Level::Avx2,
        3 => Level::Avx512,
        _ => detect(),
    }
}

/// 0 until [`detect`] ran, then 1 + the [`Level`]'s rank.
static DETECTED: AtomicU8 = AtomicU8::new(0);

#[cold]
fn detect() -> Level {
    let level = features();
    DETECTED.store(level as u8 + 1, Ordering::Relaxed);
    level
}

fn features() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if !(has!("avx2") && has!("bmi1") && has!("bmi2") && has!("lzcnt") && has!("popcnt")) {
            Level::Sse2
        } else if has!("avx512f")
            && has!("avx512bw")
            && has!("avx512vl")
            && has!("avx512dq")
            && has!("avx512vbmi")
            && has!("avx512vbmi2")
        {
            Level::Avx512
        } else {
            Level::Avx2
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Level::Sse2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_level_is_the_detected_one() {
        let first = level();
        assert_eq!(first, features());
        assert_eq!(DETECTED.load(Ordering::Relaxed), first as u8 + 1);
        assert_eq!(level(), first);
    }
}
