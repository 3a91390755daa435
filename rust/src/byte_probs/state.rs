//! Cover groups and next-byte masses: the incremental sampler of docs/byte_probs.md §7.
//!
//! A state for prefix `x` holds `τ* = encode(x)` with its weight `w*` and at most `Lmax` cover
//! groups `(stem, w, row, node)`: the covers `stem ∘ t` for `t` strictly below trie node `node`
//! (`depth(node)` bytes of `t` already matched), weighted by `w = Pbar(stem)/Q(x)` times the
//! stem-end conditional `row`. Weights are renormalised after every byte, so they stay O(1).
//!
//! `U(b) = Σ_g w_g · mass(row_g, child(node_g, b)) + w* · mass(row*, child(root, b))`,
//! `U(⊥) = w* · row*(EOS)`; each term is one range sum on a cumulative row.
//! Cost per byte: `O(Σ_g children(node_g) + 256)` range look-ups plus one [`LmRow`] (`O(|V|)`).
//! Invariants: a group has positive weight and a node with children that carry mass in its row
//! (a group without mass is dropped: no cover it holds can occur); in `exact` mode
//! `Σ_b U(b) + U(⊥) = 1` up to rounding.

use super::ranks::Ranks;
use super::trie::VocabTrie;
use crate::error::{Error, Result};
use std::sync::Arc;

/// How leaked mass on invalid continuations is handled (docs/byte_probs.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// mask invalid tokens and renormalise every token distribution
    Exact,
    /// mask invalid tokens, renormalise only the next-byte distributions
    Mask,
    /// no masking
    Fast,
}

impl Mode {
    /// The mode named `s` (`"exact"`, `"mask"` or `"fast"`).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "exact" => Ok(Mode::Exact),
            "mask" => Ok(Mode::Mask),
            "fast" => Ok(Mode::Fast),
            _ => Err(Error::Input(format!(
                "mode must be \"exact\", \"mask\" or \"fast\", got {s:?}"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Mode::Exact => "exact",
            Mode::Mask => "mask",
            Mode::Fast => "fast",
        }
    }
}

/// One mode-adjusted next-token distribution, cumulated in trie (DFS) order.
///
/// Unmasked (`fast`), `cum[k]` is the raw mass of DFS positions `< k` (`|trie| + 1` entries).
/// Masked (`exact`, `mask`), `cum` holds one entry per valid position only (plus the leading
/// 0), and the mass before position `k` is `cum[ranks.rank(k)]`: a masked position carries no
/// mass, so the dense row's entries repeat over it (docs/byte_probs.md §13, fourteenth round).
#[derive(Debug, Clone)]
pub struct LmRow {
    /// raw masses, cumulated over the valid positions in trie order
    pub(crate) cum: Vec<f64>,
    /// the valid positions when the row is masked (`None`: every position, `cum` is dense)
    pub(crate) ranks: Option<Ranks>,
    /// multiply raw masses by this (`1/Z` in exact mode, else 1)
    pub(crate) scale: f64,
    /// EOS probability (scaled)
    pub(crate) eos: f64,
    /// `Z`: valid mass (regular tokens that passed the mask, plus EOS) before scaling
    pub(crate) z: f64,
}

impl LmRow {
    /// The entry of `cum` that holds the mass of DFS positions `< k`.
    #[inline]
    fn slot(&self, k: usize) -> usize {
        match &self.ranks {
            None => k,
            Some(r) => r.rank(k),
        }
    }
    /// Mass of DFS positions `[lo, hi)`.
    #[inline]
    pub fn range(&self, lo: usize, hi: usize) -> f64 {
        (self.cum[self.slot(hi)] - self.cum[self.slot(lo)]) * self.scale
    }
    /// The number of trie positions the row covers (`|trie|`).
    pub fn positions(&self) -> usize {
        match &self.ranks {
            None => self.cum.len() - 1,
            Some(r) => r.positions(),
        }
    }
    /// Mass of all tokens below `node` (inclusive).
    #[inline]
    pub fn node_mass(&self, trie: &VocabTrie, node: u32) -> f64 {
        let (lo, hi) = trie.range(node);
        self.range(lo, hi)
    }
    /// Mass below `node`, excluding the node's own token.
    #[inline]
    pub fn below_mass(&self, trie: &VocabTrie, node: u32) -> f64 {
        let (lo, hi) = trie.range(node);
        let lo = if trie.terminal(node).is_some() {
            lo + 1
        } else {
            lo
        };
        if lo >= hi {
            0.0
        } else {
            self.range(lo, hi)
        }
    }
    pub fn eos(&self) -> f64 {
        self.eos
    }
    pub fn z(&self) -> f64 {
        self.z
    }
}

/// Covers `stem ∘ t`, `t` strictly below `node`.
#[derive(Debug, Clone)]
pub struct Group {
    pub(crate) stem: Arc<[u32]>,
    pub(crate) w: f64,
    pub(crate) row: Arc<LmRow>,
    pub(crate) node: u32,
}

/// A cover with empty overhang (`decode(stem) == x`): it continues with a whole next token.
#[derive(Debug, Clone)]
pub struct Star {
    pub(crate) stem: Arc<[u32]>,
    pub(crate) w: f64,
}

/// Cover set of a byte prefix, in incremental form.
#[derive(Debug, Clone)]
pub struct CoverState {
    pub(crate) groups: Vec<Group>,
    /// empty-overhang covers (context included), largest weight first. Exactly one, `encode(x)`,
    /// for prefix-closed tokenizers; regex look-ahead can keep a second split alive
    pub(crate) stars: Vec<Star>,
    /// `Σ log Q(b | x)` over the bytes advanced since `start`
    pub(crate) log_q: f64,
    /// bytes consumed since `start` (the prompt included)
    pub(crate) n_bytes: usize,
}

impl CoverState {
    /// Empty-overhang covers `(ids, weight)`; their LM rows are what the next byte needs.
    pub fn stars(&self) -> impl Iterator<Item = (&[u32], f64)> {
        self.stars.iter().map(|s| (&s.stem[..], s.w))
    }
    pub fn n_stars(&self) -> usize {
        self.stars.len()
    }
    pub fn log_q(&self) -> f64 {
        self.log_q
    }
    pub fn n_bytes(&self) -> usize {
        self.n_bytes
    }
    pub fn n_groups(&self) -> usize {
        self.groups.len()
    }

    /// Unnormalised `U[0..256]` and `U[256] = U(⊥)`, given one row per star (the row after it).
    pub fn masses(&self, trie: &VocabTrie, star_rows: &[Arc<LmRow>]) -> [f64; 257] {
        let mut u = [0.0f64; 257];
        for g in &self.groups {
            for (b, c) in trie.children(g.node) {
                u[b as usize] += g.w * g.row.node_mass(trie, c);
            }
        }
        for (s, row) in self.stars.iter().zip(star_rows) {
            for (b, c) in trie.children(VocabTrie::ROOT) {
                u[b as usize] += s.w * row.node_mass(trie, c);
            }
            u[256] += s.w * row.eos;
        }
        u
    }
}
