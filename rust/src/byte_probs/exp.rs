//! `exp` over blocks of `f64`, written so that LLVM vectorizes it (2 lanes with SSE2, 4 with
//! AVX2), for the one `exp` per vocabulary entry of every prepared LM row (docs/byte_probs.md
//! §16: libm's scalar `exp` was about 22 % of the instructions per byte at cl100k).
//!
//! Method (the classic Cody-Waite reduction, as in fdlibm's `e_exp.c`, with a Taylor polynomial
//! instead of fdlibm's rational form, which needs a division): `q = round(x / ln 2)`,
//! `s = x − q·ln2_hi − q·ln2_lo` with `|s| ≤ ln 2 / 2 ≈ 0.3466`, `e^x = 2^q · (1 + s + s²·P(s))`
//! with `P` the Taylor series of `(e^s − 1 − s)/s²` up to `s^11` (degree 13 overall).
//!
//! Error bound, for `x` in [`LO`, `HI`] (every other input, NaN and ±inf included, goes to
//! libm's `exp`): `q·ln2_hi` is exact (`ln2_hi` has 32 significant bits, `|q| ≤ 1022`) and so is
//! `x − q·ln2_hi` (Sterbenz); `ln2_hi + ln2_lo` misses `ln 2` by about `2^-86`, and the
//! rounding of `− q·ln2_lo` is at most `ulp(s)/2 ≤ 2^-55`. The truncated Taylor term is at most
//! `s^14/14! · e^s < 2^-57`. `s²·P(s)` is at most 0.066, so its evaluation error (a few
//! roundings of that size) is below `2^-56`, and `s + s²·P(s)` adds one rounding of at most
//! `2^-55`; the last `1 + …` rounds once more (half an ulp). All errors before the last
//! rounding sum to less than `2^-53.5` absolute, against a result `≥ 0.707`, so the total is
//! below 1.5 ulp. The scaling by `2^q` is exact (the result stays normal on [`LO`, `HI`]). The
//! tests measure at most 1 ulp against libm over ten million inputs.
//!
//! The SSE2 and AVX2 builds run the same IEEE operations in the same order without fused
//! multiply-adds, so they give the same bits on every x86-64 machine.

/// Smallest input of the polynomial path: `e^-708` is still a normal number.
pub const LO: f64 = -708.0;
/// Largest input of the polynomial path: `e^708` is finite.
pub const HI: f64 = 708.0;

/// `1/ln 2`
const LOG2E: f64 = std::f64::consts::LOG2_E;
/// The upper 32 bits of `ln 2` (fdlibm's `ln2HI`, bits `0x3fe62e42_fee00000`), so `q · LN2_HI`
/// is exact for `|q| < 2^21`.
#[allow(clippy::excessive_precision)]
const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
/// `ln 2 − LN2_HI` (fdlibm's `ln2LO`, bits `0x3dea39ef_35793c76`).
#[allow(clippy::excessive_precision)]
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
/// `1.5 · 2^52`: adding it rounds to an integer (to nearest, ties to even) and leaves the
/// integer in the low bits of the sum.
const SHIFTER: f64 = 6_755_399_441_055_744.0;

/// `1/k!` for `k = 13` down to `2`.
const INV_FACT: [f64; 12] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
];

/// `e^x` for `x` in [`LO`, `HI`]; other inputs give garbage (callers check the range).
#[inline(always)]
fn exp_in_range(x: f64) -> f64 {
    let t = x * LOG2E + SHIFTER;
    let q = t - SHIFTER;
    let s = (x - q * LN2_HI) - q * LN2_LO;
    let mut p = INV_FACT[0];
    for c in &INV_FACT[1..] {
        p = p * s + c;
    }
    let u = 1.0 + (s + (s * s) * p);
    // `t`'s bits are SHIFTER's plus q (same binade); the biased exponent goes to bits 52..63
    let q_int = t.to_bits().wrapping_sub(SHIFTER.to_bits());
    u * f64::from_bits(q_int.wrapping_add(1023) << 52)
}

/// `out[i] = e^xs[i]` for a block of `N` values (see the module header for the error bound).
/// Inlined into its caller, so that a caller compiled for AVX2 gets four lanes; the result is
/// bit-identical whichever build runs.
#[inline(always)]
pub fn exp_block<const N: usize>(xs: &[f64; N], out: &mut [f64; N]) {
    let mut out_of_range = false;
    for (o, &x) in out.iter_mut().zip(xs) {
        // NaN fails both comparisons
        out_of_range |= !(LO..=HI).contains(&x);
        *o = exp_in_range(x.clamp(LO, HI));
    }
    if out_of_range {
        fix_out_of_range(xs, out);
    }
}

/// libm's `exp` for the inputs outside [`LO`, `HI`]: rare (a `-inf` log-probability, or a NaN
/// that the caller reports).
#[cold]
#[inline(never)]
fn fix_out_of_range(xs: &[f64], out: &mut [f64]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        if !(LO..=HI).contains(&x) {
            *o = x.exp();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in ulps between two finite non-negative doubles.
    fn ulps(a: f64, b: f64) -> u64 {
        a.to_bits().abs_diff(b.to_bits())
    }

    /// A deterministic stream of doubles in `[lo, hi)` (xorshift64*).
    fn stream(n: usize, lo: f64, hi: f64, mut seed: u64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                let u =
                    (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
                lo + (hi - lo) * u
            })
            .collect()
    }

    fn max_ulps(xs: &[f64]) -> u64 {
        let mut worst = 0;
        for c in xs.chunks_exact(64) {
            let c: &[f64; 64] = c.try_into().expect("64 values");
            let mut out = [0.0; 64];
            exp_block(c, &mut out);
            for (&x, &e) in c.iter().zip(&out) {
                worst = worst.max(ulps(e, x.exp()));
            }
        }
        worst
    }

    /// At most 1 ulp from libm on ten million inputs: log-probabilities (`[-40, 0]`), the
    /// whole polynomial range, and the neighbourhood of the reduction's rounding ties.
    #[test]
    fn within_one_ulp_of_libm() {
        assert!(max_ulps(&stream(4_000_000, -40.0, 0.0, 1)) <= 1);
        assert!(max_ulps(&stream(4_000_000, LO, HI, 2)) <= 1);
        let ties: Vec<f64> = (-1000..1000)
            .flat_map(|q| {
                let x = (q as f64 + 0.5) * std::f64::consts::LN_2;
                (-1000..1000).map(move |k| x + k as f64 * 1e-15 * x.abs().max(1.0))
            })
            .filter(|x| (LO..=HI).contains(x))
            .collect();
        assert!(max_ulps(&ties[..ties.len() / 64 * 64]) <= 1);
    }

    #[test]
    fn ln2_split_is_fdlibms() {
        assert_eq!(LN2_HI.to_bits(), 0x3fe6_2e42_fee0_0000);
        assert_eq!(LN2_LO.to_bits(), 0x3dea_39ef_3579_3c76);
        // the low 21 bits of LN2_HI are zero: q · LN2_HI is exact for |q| < 2^21
        assert_eq!(LN2_HI.to_bits() & ((1 << 21) - 1), 0);
    }

    #[test]
    fn special_inputs_follow_libm() {
        let mut xs = [0.0f64; 64];
        let special = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            LO,
            HI,
            LO - 1.0,
            HI + 1.0,
            -745.2,
            -746.0,
            709.7,
            710.0,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NAN,
            -1e-300,
        ];
        xs[..special.len()].copy_from_slice(&special);
        let mut out = [0.0; 64];
        exp_block(&xs, &mut out);
        for (&x, &e) in xs.iter().zip(&out) {
            if x.is_nan() {
                assert!(e.is_nan());
            } else if (LO..=HI).contains(&x) {
                assert!(ulps(e, x.exp()) <= 1, "exp({x}) = {e}, libm {}", x.exp());
            } else {
                assert_eq!(e.to_bits(), x.exp().to_bits(), "exp({x})");
            }
        }
        assert_eq!(out[0], 1.0);
        assert_eq!(out[12], 0.0);
        assert_eq!(out[13], f64::INFINITY);
    }
}
