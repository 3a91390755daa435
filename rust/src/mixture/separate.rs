//! Separation for the mixture LP (Hayase et al. 2024, section 3.3; design note
//! `docs/mixture_inference.md`, section Constraint generation): given the current solution
//! (weights `alpha`, step slacks `v_t`, pair slacks `v_p`), find rows `(t, p)` it violates.
//!
//! Row `(t, p)` reads `sum_i w_i (c_{i,t}(m_t) - c_{i,t}(p)) + v_t + v_p >= 0` with
//! `w_i = alpha_i * scale / N_i`. It is violated by more than `tol` exactly when
//! `prio(p) = sum_i w_i c_{i,t}(p) - v_p` exceeds `cut(t) = sum_i w_i c_{i,t}(m_t) + v_t + tol`.
//! The sweep keeps `prio` of every pair in a max segment tree, walks the steps in order, takes the
//! (up to `k`) pairs above the cut that are not yet rows, most violated first, then applies the
//! step's recorded count changes to `prio`. It stops after the step where `max_add` rows were
//! found; an empty answer after a full sweep means the solution is optimal for the full LP.
//!
//! Cost: O(P) to build, O(log P) per recorded change, O(k log P) per step; sequential, so the
//! answer does not depend on threads.

use super::Counts;
use crate::error::{Error, Result};
use rustc_hash::FxHashSet;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Settings of one separation sweep.
#[derive(Debug, Clone, Copy)]
pub struct SeparateConfig {
    /// counts are `count / N_i * scale` (1e6: counts per million pairs)
    pub scale: f64,
    /// violation below this (in scaled units) is ignored: the solver's feasibility tolerance
    pub tol: f64,
    /// rows per step at most
    pub k: usize,
    /// stop after the step where this many rows were found
    pub max_add: usize,
}

/// A max segment tree over `f64` leaves.
struct MaxTree {
    n: usize,
    t: Vec<f64>,
}

#[derive(PartialEq)]
struct Node(f64, usize);
impl Eq for Node {}
impl Ord for Node {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then_with(|| o.1.cmp(&self.1))
    }
}
impl PartialOrd for Node {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl MaxTree {
    fn new(leaves: &[f64]) -> Self {
        let n = leaves.len().next_power_of_two().max(1);
        let mut t = vec![f64::NEG_INFINITY; 2 * n];
        t[n..n + leaves.len()].copy_from_slice(leaves);
        for i in (1..n).rev() {
            t[i] = t[2 * i].max(t[2 * i + 1]);
        }
        Self { n, t }
    }
    fn get(&self, i: usize) -> f64 {
        self.t[self.n + i]
    }
    fn set(&mut self, i: usize, v: f64) {
        let mut j = self.n + i;
        self.t[j] = v;
        while j > 1 {
            j /= 2;
            let m = self.t[2 * j].max(self.t[2 * j + 1]);
            if self.t[j] == m {
                break;
            }
            self.t[j] = m;
        }
    }
    /// Leaves above `cut` in descending value (ties: lower index first) until `visit` says stop.
    fn above(&self, cut: f64, heap: &mut BinaryHeap<Node>, mut visit: impl FnMut(usize) -> bool) {
        heap.clear();
        if self.t[1] > cut {
            heap.push(Node(self.t[1], 1));
        }
        while let Some(Node(_, j)) = heap.pop() {
            if j >= self.n {
                if !visit(j - self.n) {
                    return;
                }
                continue;
            }
            for c in [2 * j, 2 * j + 1] {
                if self.t[c] > cut {
                    heap.push(Node(self.t[c], c));
                }
            }
        }
    }
}

fn check_solution(
    counts: &Counts,
    alpha: &[f64],
    v_step: &[f64],
    v_pair: &[(u32, f64)],
) -> Result<()> {
    if alpha.len() != counts.cats.len() {
        return Err(Error::Input(format!(
            "alpha has {} weights for {} categories",
            alpha.len(),
            counts.cats.len()
        )));
    }
    if v_step.len() != counts.num_steps() {
        return Err(Error::Input(format!(
            "v_step has {} values for {} steps",
            v_step.len(),
            counts.num_steps()
        )));
    }
    if let Some(&(p, _)) = v_pair
        .iter()
        .find(|(p, _)| *p as usize >= counts.num_pairs())
    {
        return Err(Error::Input(format!(
            "pair id {p} is outside the {} pairs",
            counts.num_pairs()
        )));
    }
    if alpha
        .iter()
        .chain(v_step)
        .chain(v_pair.iter().map(|(_, v)| v))
        .any(|v| !v.is_finite())
    {
        return Err(Error::Input(
            "the solution has a value that is not finite".into(),
        ));
    }
    Ok(())
}

/// Rows `(step, pair)` violated by the solution, not in `rows`; see the module docs.
pub fn violated_rows(
    counts: &Counts,
    alpha: &[f64],
    v_step: &[f64],
    v_pair: &[(u32, f64)],
    rows: &[(u32, u32)],
    cfg: &SeparateConfig,
) -> Result<Vec<(u32, u32)>> {
    check_solution(counts, alpha, v_step, v_pair)?;
    let w: Vec<f64> = alpha
        .iter()
        .zip(&counts.cats)
        .map(|(a, c)| a * cfg.scale / c.pairs_total.max(1) as f64)
        .collect();
    let mut prio = vec![0.0f64; counts.num_pairs()];
    for (c, &wi) in counts.cats.iter().zip(&w) {
        for (&p, &n) in c.snap_pair.iter().zip(&c.snap_count) {
            prio[p as usize] += wi * n as f64;
        }
    }
    for &(p, v) in v_pair {
        prio[p as usize] -= v;
    }
    let mut tree = MaxTree::new(&prio);
    drop(prio);
    let have: FxHashSet<u64> = rows
        .iter()
        .map(|&(t, p)| ((t as u64) << 32) | p as u64)
        .collect();
    let mut out = Vec::new();
    let mut heap = BinaryHeap::new();
    for (t, &vt) in v_step.iter().enumerate() {
        let chosen: f64 = counts
            .cats
            .iter()
            .zip(&w)
            .map(|(c, wi)| wi * c.chosen[t] as f64)
            .sum();
        let any = counts.cats.iter().any(|c| c.chosen[t] > 0);
        if any && cfg.k > 0 {
            let cut = chosen + vt + cfg.tol;
            let m = counts.merge_pair[t];
            let mut got = 0;
            tree.above(cut, &mut heap, |p| {
                let p = p as u32;
                if p != m && !have.contains(&(((t as u64) << 32) | p as u64)) {
                    out.push((t as u32, p));
                    got += 1;
                }
                got < cfg.k
            });
        }
        for (c, &wi) in counts.cats.iter().zip(&w) {
            if wi == 0.0 {
                continue;
            }
            let (lo, hi) = (c.step_off[t] as usize, c.step_off[t + 1] as usize);
            for (&p, &d) in c.d_pair[lo..hi].iter().zip(&c.d_diff[lo..hi]) {
                let p = p as usize;
                tree.set(p, tree.get(p) + wi * d as f64);
            }
        }
        if out.len() >= cfg.max_add {
            break;
        }
    }
    Ok(out)
}

/// Every row of the full LP: for each step whose merge some category has, every other pair with
/// a positive count there in some category. For small instances (checks, tests): fails when
/// steps x pairs exceeds `limit`.
pub fn all_rows(counts: &Counts, limit: usize) -> Result<Vec<(u32, u32)>> {
    let (t_n, p_n) = (counts.num_steps(), counts.num_pairs());
    if t_n.saturating_mul(p_n) > limit {
        return Err(Error::Input(format!(
            "the full LP scan covers {t_n} steps x {p_n} pairs, over the limit of {limit}: use \
             constraint generation"
        )));
    }
    let mut total = vec![0i64; p_n];
    for c in &counts.cats {
        for (&p, &n) in c.snap_pair.iter().zip(&c.snap_count) {
            total[p as usize] += n as i64;
        }
    }
    let mut out = Vec::new();
    for t in 0..t_n {
        if counts.cats.iter().any(|c| c.chosen[t] > 0) {
            let m = counts.merge_pair[t];
            out.extend(
                (0..p_n as u32)
                    .filter(|&p| p != m && total[p as usize] > 0)
                    .map(|p| (t as u32, p)),
            );
        }
        for c in &counts.cats {
            let (lo, hi) = (c.step_off[t] as usize, c.step_off[t + 1] as usize);
            for (&p, &d) in c.d_pair[lo..hi].iter().zip(&c.d_diff[lo..hi]) {
                total[p as usize] += d as i64;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpe::count::Utf8Policy;
    use crate::mixture::{replay, MergeList, Sample};
    use crate::pretokenize::Pretokenizer;
    use crate::progress::Silent;

    fn worked(order: &[(&str, &str)]) -> Counts {
        let v: Vec<_> = order
            .iter()
            .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()))
            .collect();
        let samples = vec![
            ("A".to_string(), Sample::Text("aab aab ab ab ef".into())),
            ("B".to_string(), Sample::Text("bba bba ba ba cd".into())),
        ];
        let p = Pretokenizer::new(r"\S+").unwrap();
        replay(
            MergeList::new(&v).unwrap(),
            &p,
            &samples,
            2,
            Utf8Policy::Strict,
            &Silent,
        )
        .unwrap()
    }

    const CFG: SeparateConfig = SeparateConfig {
        scale: 7.0,
        tol: 1e-9,
        k: 10,
        max_add: 1000,
    };

    #[test]
    fn separation_finds_exactly_the_violated_rows() {
        let c = worked(&[
            ("a", "b"),
            ("a", "ab"),
            ("b", "a"),
            ("e", "f"),
            ("b", "ba"),
            ("c", "d"),
        ]);
        let v = vec![0.0; 6];
        // scale 7 = N: weighted counts are alpha * count. Feasible interval is [2/3, 4/5].
        assert!(violated_rows(&c, &[0.7, 0.3], &v, &[], &[], &CFG)
            .unwrap()
            .is_empty());
        // alpha_A = 0.5: step 1 (a,ab) 1.0 < (b,a) 2.0 and step 3 (e,f) 0.5 < (b,ba) 1.0
        let rows = violated_rows(&c, &[0.5, 0.5], &v, &[], &[], &CFG).unwrap();
        let names: Vec<_> = rows
            .iter()
            .map(|&(t, p)| {
                let (l, r) = c.pair_bytes(p).unwrap();
                (
                    t,
                    String::from_utf8_lossy(l).into_owned() + "|" + &String::from_utf8_lossy(r),
                )
            })
            .collect();
        assert_eq!(names, vec![(1, "b|a".to_string()), (3, "b|ba".to_string())]);
        // once those rows exist, nothing new is violated by the same solution
        assert!(violated_rows(&c, &[0.5, 0.5], &v, &[], &rows, &CFG)
            .unwrap()
            .is_empty());
        // a step slack covers its step
        let mut v1 = v.clone();
        v1[1] = 1.0;
        let rows = violated_rows(&c, &[0.5, 0.5], &v1, &[], &[], &CFG).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, 3);
    }

    #[test]
    fn all_rows_lists_every_present_competitor() {
        let c = worked(&[
            ("a", "b"),
            ("a", "ab"),
            ("b", "a"),
            ("e", "f"),
            ("b", "ba"),
            ("c", "d"),
        ]);
        let rows = all_rows(&c, 1000).unwrap();
        // step 0: aa, ef, bb, ba, cd (ab is the merge); step 5: nothing but (c, d) left
        assert_eq!(rows.iter().filter(|r| r.0 == 0).count(), 5);
        assert_eq!(rows.iter().filter(|r| r.0 == 5).count(), 0);
        assert!(all_rows(&c, 3).is_err());
    }

    #[test]
    fn bad_solutions_are_errors() {
        let c = worked(&[("a", "b")]);
        assert!(violated_rows(&c, &[1.0], &[0.0], &[], &[], &CFG).is_err());
        assert!(violated_rows(&c, &[1.0, 0.0], &[0.0, 0.0], &[], &[], &CFG).is_err());
        assert!(violated_rows(&c, &[f64::NAN, 0.0], &[0.0], &[], &[], &CFG).is_err());
        assert!(violated_rows(&c, &[1.0, 0.0], &[0.0], &[(99, 1.0)], &[], &CFG).is_err());
    }
}
