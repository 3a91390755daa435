//! A fixed set of token ids as the non-zero 64-bit words of a bitset over all ids
//! (docs/byte_probs.md §15.10): a class of the class tree copies its members'
//! bits out of another row, or adds its members to a row, one word at a time instead of one id
//! at a time.
//!
//! Cost: `O(words)` per operation, where `words <= min(members, |V| / 64)`; 12 bytes per
//! non-zero word. Invariants: word indices strictly increasing, every mask non-zero.

/// The non-zero words `(index, mask)` of the bitset of a set of ids.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct IdWords(Vec<(u32, u64)>);

impl IdWords {
    /// The words of the ids `ids`, which must be sorted (ascending; duplicates allowed).
    pub(crate) fn from_sorted(ids: &[u32]) -> IdWords {
        debug_assert!(ids.windows(2).all(|w| w[0] <= w[1]));
        let mut out: Vec<(u32, u64)> = Vec::new();
        for &id in ids {
            let (w, m) = (id / 64, 1u64 << (id % 64));
            match out.last_mut() {
                Some((lw, lm)) if *lw == w => *lm |= m,
                _ => out.push((w, m)),
            }
        }
        IdWords(out)
    }

    /// `dst |= self` (words past the end of `dst` are ignored).
    #[inline]
    pub(crate) fn or_into(&self, dst: &mut [u64]) {
        for &(w, m) in &self.0 {
            if let Some(d) = dst.get_mut(w as usize) {
                *d |= m;
            }
        }
    }

    /// `dst |= src & self`: the members' bits of `src` copied into `dst` (words past the end of
    /// either are ignored).
    #[inline]
    pub(crate) fn or_masked_into(&self, dst: &mut [u64], src: &[u64]) {
        for &(w, m) in &self.0 {
            if let (Some(d), Some(&s)) = (dst.get_mut(w as usize), src.get(w as usize)) {
                *d |= s & m;
            }
        }
    }
}

/// The ids of the set bits of `words`, ascending.
pub(crate) fn ids_of(words: &[u64]) -> impl Iterator<Item = u32> + '_ {
    words.iter().enumerate().flat_map(|(w, &word)| {
        let mut rest = word;
        std::iter::from_fn(move || {
            (rest != 0).then(|| {
                let k = rest.trailing_zeros();
                rest &= rest - 1;
                (w * 64) as u32 + k
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(ids: &[u32], n: usize) -> Vec<u64> {
        let mut b = vec![0u64; n];
        for &i in ids {
            b[i as usize / 64] |= 1 << (i % 64);
        }
        b
    }

    #[test]
    fn word_operations_equal_id_by_id_ones() {
        let n = 5;
        let sets: [&[u32]; 5] = [
            &[],
            &[0],
            &[1, 2, 63, 64, 64, 127, 200, 319],
            &[5, 70, 71, 72, 300],
            &[63, 64, 128, 191, 192, 255],
        ];
        for a in sets {
            let iw = IdWords::from_sorted(a);
            assert!(iw.0.iter().all(|&(_, m)| m != 0));
            assert!(iw.0.windows(2).all(|p| p[0].0 < p[1].0));
            let mut dst = vec![0u64; n];
            iw.or_into(&mut dst);
            assert_eq!(dst, bits(a, n));
            let mut dedup = a.to_vec();
            dedup.dedup();
            assert_eq!(ids_of(&dst).collect::<Vec<_>>(), dedup);
            for b in sets {
                for c in sets {
                    // dst |= src & members, against the per-id copy
                    let src = bits(b, n);
                    let mut got = bits(c, n);
                    iw.or_masked_into(&mut got, &src);
                    let mut want = bits(c, n);
                    for &v in a {
                        if src[v as usize / 64] >> (v % 64) & 1 == 1 {
                            want[v as usize / 64] |= 1 << (v % 64);
                        }
                    }
                    assert_eq!(got, want);
                }
            }
        }
        // short destinations and sources: the words beyond them are ignored
        let iw = IdWords::from_sorted(&[1, 130]);
        let mut dst = vec![0u64; 2];
        iw.or_into(&mut dst);
        assert_eq!(dst, vec![2, 0]);
        let mut dst = vec![0u64; 3];
        iw.or_masked_into(&mut dst, &[u64::MAX]);
        assert_eq!(dst, vec![2, 0, 0]);
    }
}
