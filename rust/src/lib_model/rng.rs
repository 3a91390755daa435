//! Python-compatible Mersenne Twister (MT19937), so that a LiB run with a seed draws exactly the
//! numbers CPython's `random.seed(n); random.random()` draws (docs/lib.md §3.4;
//! vector TV4 of §11).
//!
//! - `seed(n)`: `init_by_array` over the 32-bit little-endian words of `|n|` (`[0]` for 0), as
//!   CPython's `random_seed` does for an int.
//! - `random()`: `((a >> 5) * 2^26 + (b >> 6)) / 2^53` from two outputs (53-bit float).
//!
//! Complexity: O(1) amortised per draw (a 624-word twist, with the tempering of all 624
//! outputs, every 624 outputs).
//! Invariant: `idx <= N`; the state is never all zero (init_by_array sets `mt[0] = 2^31`).

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// MT19937 with CPython's seeding and float conversion.
#[derive(Clone)]
pub struct PyRandom {
    mt: [u32; N],
    /// The tempered outputs of the current state, computed with the twist in one pass (a
    /// draw is then a load: training draws one float per chunk read).
    out: [u32; N],
    idx: usize,
}

impl PyRandom {
    /// The generator `random.seed(seed)` gives in CPython.
    pub fn new(seed: u64) -> Self {
        let key: Vec<u32> = if seed == 0 {
            vec![0]
        } else if seed >> 32 == 0 {
            vec![seed as u32]
        } else {
            vec![seed as u32, (seed >> 32) as u32]
        };
        let mut r = PyRandom {
            mt: [0; N],
            out: [0; N],
            idx: N,
        };
        r.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        let mut k = N.max(key.len());
        while k > 0 {
            let prev = r.mt[i - 1] ^ (r.mt[i - 1] >> 30);
            r.mt[i] = (r.mt[i] ^ prev.wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                r.mt[0] = r.mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
            k -= 1;
        }
        k = N - 1;
        while k > 0 {
            let prev = r.mt[i - 1] ^ (r.mt[i - 1] >> 30);
            r.mt[i] = (r.mt[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                r.mt[0] = r.mt[N - 1];
                i = 1;
            }
            k -= 1;
        }
        r.mt[0] = 0x8000_0000;
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..N {
            let prev = self.mt[i - 1] ^ (self.mt[i - 1] >> 30);
            self.mt[i] = 1_812_433_253u32.wrapping_mul(prev).wrapping_add(i as u32);
        }
        self.idx = N;
    }

    #[cold]
    fn twist(&mut self) {
        // the reference's three loops (no index wraps inside a loop)
        #[inline(always)]
        fn mix(a: u32, b: u32, far: u32) -> u32 {
            let y = (a & UPPER_MASK) | (b & LOWER_MASK);
            far ^ (y >> 1) ^ ((y & 1).wrapping_neg() & MATRIX_A)
        }
        let mt = &mut self.mt;
        for kk in 0..N - M {
            mt[kk] = mix(mt[kk], mt[kk + 1], mt[kk + M]);
        }
        for kk in N - M..N - 1 {
            mt[kk] = mix(mt[kk], mt[kk + 1], mt[kk + M - N]);
        }
        mt[N - 1] = mix(mt[N - 1], mt[0], mt[M - 1]);
        for (o, &y) in self.out.iter_mut().zip(self.mt.iter()) {
            *o = temper(y);
        }
        self.idx = 0;
    }

    /// The next 32-bit output (`genrand_uint32`).
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if self.idx >= N {
            self.twist();
        }
        let y = self.out[self.idx];
        self.idx += 1;
        y
    }

    /// A float in `[0, 1)`, equal to CPython's `random.random()`.
    #[inline]
    pub fn random(&mut self) -> f64 {
        let (a, b) = match self.out.get(self.idx..self.idx + 2) {
            Some(&[a, b]) => {
                self.idx += 2;
                (a, b)
            }
            _ => (self.next_u32(), self.next_u32()),
        };
        let a = (a >> 5) as f64;
        let b = (b >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }
}

/// MT19937's output tempering of a state word.
#[inline(always)]
fn temper(mut y: u32) -> u32 {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c_5680;
    y ^= (y << 15) & 0xefc6_0000;
    y ^= y >> 18;
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TV4 of docs/lib.md §11.
    #[test]
    fn tv4_seed_0_first_random_equals_cpython() {
        let mut r = PyRandom::new(0);
        assert_eq!(r.random(), 0.8444218515250481);
        assert_eq!(r.random(), 0.7579544029403025);
    }

    #[test]
    fn seed_42_and_large_seed_equal_cpython() {
        assert_eq!(PyRandom::new(42).random(), 0.6394267984578837);
        assert_eq!(PyRandom::new(1 << 40).random(), PYTHON_1_SHL_40);
    }

    /// `random.seed(1 << 40); random.random()` in CPython 3.11.
    const PYTHON_1_SHL_40: f64 = 0.1036394562812375;
}
