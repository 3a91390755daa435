//! The SIMD level of the CPU, detected at run time, for the loops built at several levels: the
//! pre-tokenizer's windows (`pretokenize::presets::Spans`) and the encoder's pack and emit loops
//! (`bpe::encode`). One detection, so both choose their builds by the same rule.

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

/// The highest [`Level`] this CPU has (`is_x86_feature_detected!` caches what it finds, so a
/// call costs a few loads).
#[inline]
pub fn level() -> Level {
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
