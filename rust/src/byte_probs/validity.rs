//! Which token sequences a BPE tokenizer can produce (docs/byte_probs.md §4, §15).
//!
//! A sequence `τ` is *valid* when it can be completed to a canonical one: some `σ` has
//! `encode(decode(τ ∘ σ)) == τ ∘ σ`. The token LM of exact mode only ever continues with valid
//! tokens, and may end (EOS) only after a *canonical* sequence (`encode(decode(τ)) == τ`).
//!
//! [`Rule::Pair`]: one pre-token piece per string (merge-list BPE, prefix-closed). Valid equals
//! canonical, and the BPE local rule is exact (property P8): every token is canonical alone and
//! every adjacent pair is (`encode(bytes(u)+bytes(v)) == [u, v]`). Rows are keyed by the
//! previous token.
//!
//! [`Rule::Pieces`]: regex pre-tokenizers (GPT-2, cl100k, o200k presets; the sequences
//! `[\p{N}, preset]` of llama.cpp's digit-splitting pre-tokenizers; any other splitting regex).
//! Canonical sequences are not prefix-closed (`\s+(?!\S)` look-ahead, digit groups,
//! contractions), so validity is decided on the *tail* of the text (docs/byte_probs.md §15):
//! 1. [`Validity::settled`]: a byte position `a` such that for every continuation `s`, the
//!    pieces of `text + s` start with the pieces of `text` up to `a` (a horizon bound on the
//!    preset scanners, §15.1; after the last number character for a digit-split sequence,
//!    §15.8; 0 for custom regexes). So `encode(text + s) = encode_settled(text) ∘
//!    encode(text[a..] + s)` and only the tokens after `a` are open.
//! 2. The tail `ρ` (tokens after `a`, text `D`) is valid iff it is canonical, or — only when the
//!    piece structure of `D` can still change ([`Validity::may_change`]) — some one more token
//!    `u` makes `ρ ∘ u` canonical, or (`D` ends in whitespace) one of a few probe texts (one
//!    more non-newline whitespace character, then a non-space) continues `ρ` canonically
//!    (completeness lemma, §15.3). Tokens `u` that leave the piece boundaries inside `D`
//!    unchanged are skipped without encoding (they cannot help: single-piece BPE is
//!    prefix-closed).
//!
//! Cost: `single` once at construction (`|V|` short checks, parallel). A [`Rule::Pieces`] row
//! over valid UTF-8 is decided per class of leading characters (docs/byte_probs.md §15.7): a
//! class tree over the first (up to three) character classes of every token is built once; per
//! row, a class whose leading characters settle the tail is decided with one pre-tokenization
//! (all invalid, or the row of a shorter tail, itself cached), and the tokens no class decides are
//! checked one by one: continuations that keep the tail's last piece one growing piece by the
//! merge-tree pair walk ([`MergeTables`], a few table look-ups), byte fragments (no complete
//! character) by the pair row of the last token of the tail's last piece, onto which they glue
//! (one or two encodings of that piece each when the walk does not apply), the rest by the full
//! tail check.
//! A row whose tail ends inside a character gives every token with a complete first character
//! `single` or nothing after one encoding of the tail, and checks the others one by one; after
//! an all-whitespace tail, whitespace tokens (and whitespace plus lone bytes) are decided by at
//! most two one-piece encodings, after facts about the tail computed once per row
//! (docs/byte_probs.md §15.9).
//! Letter tokens after a word are decided together by the *pair row* of the tail's last token
//! (the letters `v` whose pair with it is valid, from the merges that break a pair plus one
//! short walk up each letter's left spine, `pair_row.rs`, once per last token, then a bounded
//! LRU of 256 bitsets keyed by that token, which is all it depends on).
//! Rows are bitsets (`|V|/8` bytes) in a bounded LRU keyed by the tail tokens. A depth-one search
//! (pre-tokenizer passes per class of continuation, early exit) is memoised per tail. Pair rows
//! and custom regexes: `|V|` checks of the tail plus one token (parallel).
//! Invariants: a row's bit `v` is set iff `single[v]` and `stem ∘ v` is valid; special and
//! unused ids never have bits; after a special token (or at the start) `single` applies.

use super::id_words::{ids_of, IdWords};
use super::pair_row::{self, LeftKids, NO_ID};
use crate::bpe::pairs::{PairTable, NONE as PAIR_NONE};
use crate::bpe::Bpe;
use crate::error::{Error, Result};
use crate::pretokenize::presets::{char_flags, may_lead, run_class};
use crate::pretokenize::Preset;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// How validity is decided (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// exact canonical check by pairs (one pre-token piece per string: prefix-closed)
    Pair,
    /// settled prefix + open tail (regex pre-tokenizers)
    Pieces,
}

impl Rule {
    /// The rule named `name` (`"pair"` or `"pieces"`).
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "pair" => Ok(Rule::Pair),
            "pieces" => Ok(Rule::Pieces),
            _ => Err(Error::Input(format!(
                "validity must be \"pair\" or \"pieces\", got {name:?}"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Rule::Pair => "pair",
            Rule::Pieces => "pieces",
        }
    }
}

/// A bitset over token ids.
pub type Bits = Arc<Vec<u64>>;

#[inline]
pub fn bit(bits: &[u64], id: u32) -> bool {
    bits.get(id as usize / 64)
        .is_some_and(|w| (w >> (id % 64)) & 1 == 1)
}

/// Sets bit `id` of a bitset sized for every token id.
#[inline]
fn set_bit(bits: &mut [u64], id: u32) {
    bits[id as usize / 64] |= 1 << (id % 64);
}

#[derive(Debug, Default)]
struct Lru {
    map: FxHashMap<Vec<u32>, (Bits, u64)>,
    clock: u64,
}

/// What the preset scanners see of a continuation after a whitespace run: its leading
/// whitespace, then the class flags of the next character and the character itself when a
/// pattern names it (docs/byte_probs.md §15.3); `(ws, 0, None)` when it is all whitespace.
type Signature = (Vec<u8>, u8, Option<char>);

/// The [`Signature`] of a token's bytes; `None` when the character after the whitespace is not
/// complete UTF-8 (such tokens are tried one by one).
fn signature(b: &[u8]) -> Option<Signature> {
    let mut i = 0;
    while i < b.len() {
        let w = (b.len() - i).min(4);
        let c = (1..=w).find_map(|k| std::str::from_utf8(&b[i..i + k]).ok())?;
        let ch = c.chars().next()?;
        if !ch.is_whitespace() {
            let named = matches!(ch, '\'' | '/' | '\r' | '\n' | ' ');
            return Some((b[..i].to_vec(), char_flags(ch), named.then_some(ch)));
        }
        i += c.len();
    }
    Some((b.to_vec(), 0, None))
}

/// Regular tokens grouped by [`Signature`] (members in id order), and the tokens without one.
#[derive(Debug, Default)]
struct Groups {
    groups: Vec<Vec<u32>>,
    loose: Vec<u32>,
}

/// Class of a character as the preset scanners see it: ASCII characters by identity, the rest
/// by their class flags (docs/byte_probs.md §15.7).
fn char_key(c: char) -> u32 {
    if c.is_ascii() {
        c as u32
    } else {
        0x100 + u32::from(char_flags(c))
    }
}

/// The first complete character of `b`, if `b` starts with one.
fn first_char(b: &[u8]) -> Option<char> {
    let w = b.len().min(4);
    (1..=w)
        .find_map(|k| std::str::from_utf8(&b[..k]).ok())
        .and_then(|c| c.chars().next())
}

/// Tokens with the same classes of their first `depth` characters (docs/byte_probs.md §15.7).
#[derive(Debug, Default)]
struct Head {
    /// representative leading characters
    rep: String,
    /// all members (id order)
    all: Vec<u32>,
    /// [`Head::all`] as bitset words, to copy or add the class's bits a word at a time
    words: IdWords,
    /// members with no further complete character (or, at the maximum depth, all members)
    one: Vec<u32>,
    /// members that are not [`Heads::letters`]
    others: usize,
    /// members split by the class of their next character
    kids: Vec<Head>,
}

/// Leading characters a class looks at: an apostrophe needs two more (contractions).
const HEAD_DEPTH: usize = 3;

/// Regular tokens grouped by their leading character classes, for rows decided per class.
#[derive(Debug, Default)]
struct Heads {
    root: Head,
    /// tokens whose first character is not complete UTF-8 (searched one by one)
    loose: Vec<u32>,
    /// the [`Heads::loose`] tokens without a complete character anywhere (byte fragments), and
    /// whether the token is one incomplete character (a proper prefix of a UTF-8 sequence);
    /// the others hold a character after the fragment and are never valid after a row's tail
    /// (docs/byte_probs.md §15.7)
    fragments: Vec<(u32, bool)>,
    /// the [`Heads::fragments`] as a bitset, for their pair rows
    fragment_bits: Vec<u64>,
    /// tokens made of letters and marks only (valid UTF-8; ASCII only for o200k): the ones that
    /// can extend a letter piece (bitset)
    letters: Vec<u64>,
    /// tokens made of letters (`\p{L}`, no marks) only (bitset): after a one-piece
    /// [`Extension`] they keep its piece one piece and are decided by the pair row of the
    /// tail's last token alone
    plain_letters: Vec<u64>,
    /// tokens of punctuation (`run_class` 3: no whitespace, letter, mark or number) and then,
    /// except for gpt2, only `\r`/`\n` (bitset): after an [`Extension`] whose piece is
    /// punctuation they keep it one growing piece ([`punct_grows`]) and are decided by a pair
    /// row of the tail's last token (docs/byte_probs.md §15.9, seventh round)
    punct: Vec<u64>,
    /// tokens of lowercase ASCII letters only (bitset): the `v` side of [`o200k_ascii_grows`]
    lower_ascii: Vec<u64>,
    /// the union of [`Heads::plain_letters`], [`Heads::punct`] and [`Heads::fragment_bits`]:
    /// one pair row per last token covers the three sets (a row's letters or punctuation and
    /// its fragments share their last token, and the bad roots depend on it alone)
    pair_members: Vec<u64>,
    /// what the class-tree walk of a row whose tail is one growing letter piece does in the
    /// classes it opens without a scan, computed once (see [`LettersOpen`])
    letters_open: LettersOpen,
}

/// The classes whose representative is all ASCII letters, reached from the root through such
/// classes: a row whose tail is one growing piece that letters extend opens them all without a
/// scan (`letters_open` in [`Validity::compute_row_heads`]), so their walk is the same in every
/// such row and is done once here.
#[derive(Debug, Default)]
struct LettersOpen {
    /// their [`Head::one`] members
    one: Vec<u32>,
    /// the members of their kids made of letters only (bitset), which such a row hands to its
    /// extension
    letters: Vec<u64>,
    /// their other kids (paths of kid indices from the root), decided one by one
    rest: Vec<Vec<usize>>,
}

/// Whether a class representative is all ASCII letters (opened without a scan after a one-piece
/// letter tail).
fn ascii_letters(rep: &str) -> bool {
    rep.bytes().all(|c| c.is_ascii_alphabetic())
}

impl Head {
    /// The class at `path` (kid indices from this one).
    fn at(&self, path: &[usize]) -> Option<&Head> {
        path.iter().try_fold(self, |h, &i| h.kids.get(i))
    }
}

impl LettersOpen {
    fn new(root: &Head, words: usize) -> LettersOpen {
        let mut out = LettersOpen {
            letters: vec![0; words],
            ..LettersOpen::default()
        };
        let mut stack: Vec<Vec<usize>> = (0..root.kids.len())
            .filter(|&i| ascii_letters(&root.kids[i].rep))
            .map(|i| vec![i])
            .collect();
        while let Some(path) = stack.pop() {
            let Some(h) = root.at(&path) else { continue };
            out.one.extend_from_slice(&h.one);
            for (j, kid) in h.kids.iter().enumerate() {
                let mut p = path.clone();
                p.push(j);
                if kid.others == 0 {
                    kid.words.or_into(&mut out.letters);
                } else if ascii_letters(&kid.rep) {
                    stack.push(p);
                } else {
                    out.rest.push(p);
                }
            }
        }
        out
    }
}

/// The last piece `l` of a canonical tail that only grows (docs/byte_probs.md §15.7): a token
/// of letters after it is valid iff `bpe(l + bytes(v)) == rho_l ∘ v` and `l + bytes(v)` stays
/// one piece.
#[derive(Debug)]
struct Extension {
    l: Vec<u8>,
    rho_l: Vec<u32>,
    /// `rho_l` is the merge-only BPE of `l` (else no `l + bytes(v)` encodes to `rho_l ∘ v`)
    merge_ok: bool,
    /// `l` + letters (`\p{L}`) is one piece (no scan needed)
    one_piece: bool,
}

/// The merge-only BPE of one piece as tables for pair checks (docs/byte_probs.md §15.7): the
/// priority and result of each merge pair, and for each token the last merge of the BPE of its
/// own bytes. With these, whether `bpe(bytes(u) + bytes(v)) == [u, v]` is decided by walking the
/// two merge trees back from the boundary (a few look-ups) instead of re-encoding.
#[derive(Debug)]
struct MergeTables {
    /// `(left, right) -> priority` (and result); the first occurrence in the merge list wins,
    /// and priority is the result's rank for rank vocabularies (ties then go to the leftmost
    /// pair)
    pairs: PairTable,
    /// `(left, right, priority)` of the last merge building each token from its bytes;
    /// `(NONE, NONE, 0)` for single bytes and tokens the merges do not build
    split: Vec<(u32, u32, u32)>,
    /// tokens that are the merge-only BPE of their own bytes (bitset)
    reach: Vec<u64>,
    /// regular tokens that are not (the only tokens a whole-piece look-up can return in place
    /// of a merge-only BPE of two or more tokens), sorted by their bytes
    unreached: Vec<u32>,
    /// the pairs of [`MergeTables::pairs`] by left token: `(right, priority)` for left token
    /// `l` at `partners[partner_at[l]..partner_at[l + 1]]`
    partner_at: Vec<u32>,
    partners: Vec<(u32, u32)>,
    /// every token's last merge has a higher priority than the merges building its parts, so
    /// merges inside a token happen in priority order (else the walk is not used)
    monotone: bool,
    /// each token's left children in `split`, for the pair rows
    left_kids: LeftKids,
}

impl MergeTables {
    /// The merges `(a, r)` with left token `a`, as `(r, priority)` (none for an id out of range).
    fn partners_of(&self, a: u32) -> &[(u32, u32)] {
        let lo = self.partner_at.get(a as usize).map_or(0, |&x| x as usize);
        let hi = self
            .partner_at
            .get(a as usize + 1)
            .map_or(0, |&x| x as usize);
        self.partners.get(lo..hi).unwrap_or(&[])
    }
}

/// What a class of leading characters decides for a tail (see `Validity::head_decision`).
#[derive(Debug, Clone, Copy)]
enum HeadDecision {
    /// nothing settles inside the tail: look closer
    Open,
    /// no token of the class is valid
    Invalid,
    /// the tokens of the class are valid iff they are valid after the tail `key[k..]` over
    /// `text[b..]`
    Rebase(usize, usize),
    /// a settled piece straddles the end of the tail and ends this many bytes after it: a
    /// token of the class that is longer would cross that piece boundary (invalid); the
    /// shorter ones are checked one by one
    Straddle(usize),
}

/// Buffers reused across the class decisions of one row (`Validity::head_decision`).
#[derive(Debug, Default)]
struct Scratch {
    /// the tail text and a class's representative characters
    d: String,
    /// its piece spans
    ranges: Vec<(usize, usize)>,
    /// tokens of its settled pieces
    ids: Vec<u32>,
}

/// Where a byte fragment joins a tail (docs/byte_probs.md §15.7): `encode_bytes(text + f)` is
/// `pre ∘ bpe(piece + f)` for every fragment `f` (bytes with no complete character), `pre` the
/// tokens of the pieces of `text` before its last one and `piece` that last piece (empty when
/// the pieces do not reach the end of `text`).
#[derive(Debug)]
struct Glue {
    piece: Vec<u8>,
    /// the tail's tokens start with `pre` (else no fragment continues it canonically)
    ok: bool,
    /// the tail's tokens after `pre`
    rest: Vec<u32>,
}

/// Whether an o200k last piece with non-ASCII characters only grows (docs/byte_probs.md
/// §15.2): an optional first character that is neither a letter, a number, a mark nor `\r`/`\n`,
/// then letters and marks only, the first of them not a mark when nothing precedes it. The
/// letter alternatives `P?[upper]*[lower]+` and `P?[upper]+[lower]*` then end at or after the
/// end of the piece for every continuation: the greedy `[upper]*` stops at the largest position
/// up to the end of the upper run whose character is lower-class, and a continuation only
/// adds candidates after the piece (or, when the upper run ends inside it, none at all); checked
/// on every short text and continuation by `o200k_letter_pieces_only_grow`.
fn o200k_letters_grow(last: &str) -> bool {
    let mut chars = last.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let f = char_flags(first);
    let first_ok = if f & 1 != 0 {
        true
    } else {
        // a mark is in the optional first character's class and in both letter classes
        run_class(first) != 1 && f & 2 == 0 && first != '\r' && first != '\n'
    };
    let rest: Vec<char> = chars.collect();
    let body_ok = !rest.is_empty() || f & 1 != 0;
    first_ok && body_ok && rest.iter().all(|&c| run_class(c) == 1)
}

/// o200k: whether `l + v` is one piece that can only grow, for `l` an optional first ASCII
/// character that is neither a letter, a digit nor `\r`/`\n`, then `[A-Z]*[a-z]*`, and `v`
/// lowercase ASCII letters (not empty): `l + v` is `P?[A-Z]*[a-z]+`, which the first letter
/// alternative `P?[upper]*[lower]+` matches whole (greedy, nothing after it), and ASCII without
/// whitespace past the first character only grows (§15.2). A sufficient condition for
/// `Validity::one_growing_piece`, without a scan (`o200k_ascii_grows_implies_the_scan`).
fn o200k_ascii_grows(l: &[u8], v: &[u8]) -> bool {
    o200k_ascii_lead(l) && !v.is_empty() && v.iter().all(u8::is_ascii_lowercase)
}

/// The condition of [`o200k_ascii_grows`] on `l` alone (once per row; the condition on `v` is
/// [`Heads::lower_ascii`]).
fn o200k_ascii_lead(l: &[u8]) -> bool {
    let body = match l.first() {
        Some(&c) if !c.is_ascii_alphanumeric() && c != b'\r' && c != b'\n' && c.is_ascii() => {
            &l[1..]
        }
        Some(_) => l,
        None => return false,
    };
    let upper = body.iter().take_while(|c| c.is_ascii_uppercase()).count();
    body[upper..].iter().all(u8::is_ascii_lowercase)
}

/// Whether the bytes of a token `v` are a [`Heads::punct`] token under `preset`: one or more
/// punctuation characters (`run_class` 3), then (cl100k, o200k) only `\r` and `\n`.
fn punct_token(preset: Preset, v: &str) -> bool {
    let mut chars = v.chars().peekable();
    if chars.peek().is_none_or(|&c| run_class(c) != 3) {
        return false;
    }
    while chars.peek().is_some_and(|&c| run_class(c) == 3) {
        chars.next();
    }
    match preset {
        Preset::Gpt2 => chars.next().is_none(),
        Preset::Cl100k | Preset::O200k => chars.all(|c| c == '\r' || c == '\n'),
    }
}

/// Whether `l + v` is one piece that can only grow (§15.2), for `l` the last piece of an
/// [`Extension`] made of an optional space and punctuation characters (`run_class` 3) and `v`
/// a [`Heads::punct`] token, without a scan (issue 16, seventh round). `l + v` is then
/// ` ?P+` (and `[\r\n]*` after, not for gpt2) with `P` = `run_class` 3 ⊂ `[^\s\p{L}\p{N}]`,
/// not empty. At its start every alternative before the punctuation one fails: a contraction
/// needs a letter after `'`, the letter alternatives (`[^\r\n\p{L}\p{N}]?\p{L}+`, gpt2's
/// ` ?\p{L}+`, o200k's case classes with marks) need a letter or mark at the first or second
/// character, and the number ones a number there. The punctuation alternative
/// (` ?[^\s\p{L}\p{N}]+[\r\n]*`; o200k `[\r\n/]*`; gpt2 without the tail) then matches
/// greedily to the end, so `l + v` is one piece, and it is `grows_only`'s shape: an optional
/// space, non-space characters, then only newlines (ASCII or not a letter for o200k).
/// `punct_grows_implies_the_scan` checks it on every short text of three presets.
fn punct_grows(preset: Preset, l: &[u8]) -> bool {
    let body = l.strip_prefix(b" ").unwrap_or(l);
    !l.is_empty()
        && std::str::from_utf8(body).is_ok_and(|b| b.chars().all(|c| run_class(c) == 3))
        && (preset != Preset::O200k || l.is_ascii())
}

/// Whitespace both as `char::is_whitespace` and as the scanners' `\s` class (`run_class` 0).
fn is_ws_run_char(c: char) -> bool {
    c.is_whitespace() && run_class(c) == 0
}

/// End of the maximal run of one [`run_class`] that starts at byte `i` of `valid` (a character
/// boundary below its length).
fn run_end(valid: &str, i: usize) -> usize {
    let mut chars = valid[i..].chars();
    let Some(c0) = chars.next() else {
        return i;
    };
    let k = run_class(c0);
    let mut j = i + c0.len_utf8();
    for c in chars {
        if run_class(c) != k {
            break;
        }
        j += c.len_utf8();
    }
    j
}

/// o200k: end of the run of "upper"-class characters (`[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`, flag 8
/// of `char_flags`) starting at byte `i` (`i` itself when the character there is not one).
fn upper_end(valid: &str, i: usize) -> usize {
    let mut j = i;
    for c in valid[i..].chars() {
        if char_flags(c) & 8 == 0 {
            break;
        }
        j += c.len_utf8();
    }
    j
}

/// The horizon rule of docs/byte_probs.md §15.1 on the pieces of `preset` over `valid`, given
/// by their ends in order: the end of the longest run of leading pieces that no continuation
/// moves. Looks only at the characters near each piece start (no tables per call).
fn settled_by_pieces(preset: Preset, valid: &str, ends: impl IntoIterator<Item = usize>) -> usize {
    let b = valid.as_bytes();
    let n = b.len();
    let class_at = |i: usize| valid[i..].chars().next().map_or(0, run_class);
    let next_char = |i: usize| -> usize { i + valid[i..].chars().next().map_or(1, char::len_utf8) };
    let o200k = preset == Preset::O200k;
    // where the scan of an o200k letter piece from byte i stops depending on the text: the
    // greedy `[upper]*` run, then the `[lower]+` run ending at the piece's end (e < n)
    let letter_scan_ok = |i: usize| -> bool { upper_end(valid, i) < n };
    let mut a = 0;
    let mut p = 0;
    for e in ends {
        // an optional first character (` ?`, `[^\r\n\p{L}\p{N}]?`) taken by a possessive
        // run ends with that run, which is then `e < n`, and an alternative that cannot
        // take one fails on the classes of D[p] and D[p + 1], both before n; only o200k's
        // letter alternatives (`[upper]*[lower]+`, backtracking) may stop inside the letter
        // run after a first character and so need that run to end before n
        if e >= n {
            break;
        }
        let lead = o200k
            && valid[p..]
                .chars()
                .next()
                .is_some_and(|c| may_lead(Preset::O200k, c));
        let p1 = next_char(p);
        // o200k letter pieces (docs/byte_probs.md §15.1): the letter alternatives decide on
        // the upper run from the piece's (or the first character's) start and the lower run
        // that ends the piece, so those must end before n, not the whole letter run
        let run_ok = if o200k && class_at(p) == 1 {
            letter_scan_ok(p)
        } else {
            // whitespace alternatives and letter/digit runs scan the run at p
            run_end(valid, p) < n
        };
        let lead_ok = || {
            if o200k && p1 < n && class_at(p1) == 1 {
                letter_scan_ok(p1)
            } else {
                p1 >= n || class_at(p1) != 1 || run_end(valid, p1) < n
            }
        };
        let ok = run_ok
            && (!lead || lead_ok())
            // contractions look two characters past an apostrophe
            && (b[p] != b'\'' || p + 2 < n)
            && (b[e] != b'\'' || e + 2 < n);
        if !ok {
            break;
        }
        a = e;
        p = e;
    }
    a
}

/// Continuation texts tried before the depth-one search when a tail ends in whitespace
/// (docs/byte_probs.md §15.3): one more non-newline whitespace character, then a non-space
/// character of each class (the run ends there, whatever the class).
const WS_PROBES: [&[u8]; 5] = [b" a", b"\ta", b" 0", b" !", b"0"];

/// An all-whitespace tail `key` spelling `text`, as [`Validity::whitespace_ok`] needs it
/// (docs/byte_probs.md §15.9, eighth round).
#[derive(Debug)]
struct WsTail {
    /// `key` is the one-piece BPE of `text`, or `text` is a token (a whole-piece look-up
    /// breaks (P) there): else no `bpe(text + s)` starts with `key` at a token boundary
    whole: bool,
    /// the end of the last `\r`/`\n` of `text` under cl100k (its `\s*[\r\n]` ends there), else 0
    k: usize,
    /// `key` starts with `bpe(text[..k])`, of this many tokens
    split: Option<usize>,
    /// and the rest of `key` is `bpe(text[k..])`
    rest_ok: bool,
    /// `last(key)` when the merges are monotone and `key` is the merge-only BPE of `text`:
    /// then `bpe(text + bytes(v)) = key ∘ v` is the pair rule (§4.2), no encoding
    pair_whole: Option<u32>,
    /// `last(key[split..])` when the merges are monotone and `key[split..]` (not empty) is the
    /// merge-only BPE of `text[k..]`
    pair_rest: Option<u32>,
}

/// Memoised depth-one searches (tail ids -> found), cleared when it reaches this size.
const SEARCH_MEMO: usize = 1 << 16;

/// Pair rows kept (one bitset of `|V|/8` bytes per last token, least recently used dropped).
const PAIR_ROWS: usize = 256;

/// Validity of token sequences for one [`Bpe`], with cached rows.
#[derive(Debug)]
pub struct Validity {
    bpe: Arc<Bpe>,
    rule: Rule,
    /// the preset scanner whose rules decide the open tail (for a digit-split sequence, the
    /// preset after the number split)
    preset: Option<Preset>,
    /// the pre-tokenizer is the sequence `[\p{N}, preset]` (docs/byte_probs.md §15.8)
    digit_split: bool,
    single: Bits,
    rows: Mutex<Lru>,
    searches: Mutex<FxHashMap<Vec<u32>, bool>>,
    regular: Vec<u32>,
    groups: OnceLock<Groups>,
    heads: OnceLock<Heads>,
    merge_tables: OnceLock<MergeTables>,
    /// last token `u` -> the letter tokens `v` with `pair_valid(u, v)` (bounded LRU)
    pair_rows: Mutex<PairLru>,
    cap: usize,
}

/// Pair rows by last token, with a use clock (see [`Validity::pair_row`]).
#[derive(Debug, Default)]
struct PairLru {
    /// keyed by the last token; each row covers [`Heads::pair_members`]
    map: FxHashMap<u32, (Bits, u64)>,
    clock: u64,
}

/// The tokens a pair row covers (see [`Validity::pair_row`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PairSet {
    /// [`Heads::plain_letters`]
    Letters,
    /// [`Heads::punct`]
    Punct,
    /// [`Heads::fragment_bits`]
    Fragments,
}

impl Validity {
    /// Compute `single` for every regular token; keep at most `cap` rows (at least 1).
    pub fn new(bpe: Arc<Bpe>, rule: Rule, cap: usize) -> Result<Self> {
        let n = bpe.vocab_size();
        let regular: Vec<u32> = (0..n as u32)
            .filter(|&id| !bpe.is_special(id) && bpe.token_bytes(id).is_some())
            .collect();
        // a sequence `[\p{N}, preset]` is decided with the preset's rules on the text after
        // the last number character (docs/byte_probs.md §15.8)
        let pre = bpe.pretokenizer();
        let (preset, digit_split) = match (pre.preset(), pre.digit_split_preset()) {
            (Some(p), _) => (Some(p), false),
            (None, Some(p)) => (Some(p), true),
            (None, None) => (None, false),
        };
        let mut v = Self {
            bpe,
            rule,
            preset,
            digit_split,
            single: Arc::new(vec![0; n.div_ceil(64)]),
            rows: Mutex::new(Lru::default()),
            searches: Mutex::new(FxHashMap::default()),
            regular,
            groups: OnceLock::new(),
            heads: OnceLock::new(),
            merge_tables: OnceLock::new(),
            pair_rows: Mutex::new(PairLru::default()),
            cap: cap.max(1),
        };
        let words: Vec<u64> = (0..n.div_ceil(64))
            .into_par_iter()
            .map(|w| -> Result<u64> {
                let mut word = 0u64;
                for id in (w * 64) as u32..((w + 1) * 64).min(n) as u32 {
                    if !v.is_regular(id) {
                        continue;
                    }
                    let t = v.bpe.token_bytes(id).unwrap_or(&[]);
                    let ok = match v.rule {
                        Rule::Pair => v.bpe.encode_bytes(t)? == [id],
                        Rule::Pieces => v.comp_tail(&[id], t)?,
                    };
                    if ok {
                        word |= 1 << (id % 64);
                    }
                }
                Ok(word)
            })
            .collect::<Result<_>>()?;
        v.single = Arc::new(words);
        Ok(v)
    }

    pub fn bpe(&self) -> &Bpe {
        &self.bpe
    }

    /// Build the per-vocabulary tables of the pieces rule now (the class tree, the merge
    /// tables and the whitespace signatures; otherwise built by the first row that needs them):
    /// the one-time cost then falls into start-up instead of the first generated byte.
    pub fn build_tables(&self) {
        if self.rule == Rule::Pieces && self.preset.is_some() {
            self.heads.get_or_init(|| self.build_heads());
            self.merge_tables();
            self.groups.get_or_init(|| self.group_tokens());
        }
    }

    /// The tokens valid alone (at the start of a text), a bitset by id; every validity row is
    /// close to it (the tokens a tail rules out are few).
    pub fn single(&self) -> &Bits {
        &self.single
    }

    /// Whether `t` is valid alone (at the start of a text).
    pub fn single_ok(&self, t: u32) -> bool {
        bit(&self.single, t)
    }

    /// Whether a token is regular (has bytes, not special).
    pub fn is_regular(&self, t: u32) -> bool {
        !self.bpe.is_special(t) && self.bpe.token_bytes(t).is_some()
    }

    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// Settled boundary of `text` (docs/byte_probs.md §15.1, §15.8): the end of the longest run
    /// of leading pieces whose scan provably never looks at the end of `text`, so that they are
    /// pieces of `text + s` for every `s`. Only the preset scanners and the `[\p{N}, preset]`
    /// sequences have such a bound (custom regexes: 0); only the valid UTF-8 prefix is
    /// considered (an incomplete character may still change).
    pub fn settled(&self, text: &[u8]) -> usize {
        if self.preset.is_none() {
            return 0;
        }
        // an invalid byte run that no continuation can repair ends a piece for good
        // (`encode_bytes` pre-tokenizes each valid run alone and glues the invalid bytes to the
        // piece before them): start after the last one
        let mut base = 0;
        let mut pos = 0;
        let mut end = text.len();
        for chunk in text.utf8_chunks() {
            pos += chunk.valid().len();
            let inv = chunk.invalid().len();
            if inv == 0 {
                continue;
            }
            if pos + inv == text.len() && std::str::from_utf8(&text[pos..]).is_err() {
                // possibly an incomplete character at the very end: still open
                let definite = text[pos..].len() >= 4
                    || std::str::from_utf8(&text[pos..])
                        .err()
                        .is_some_and(|e| e.error_len().is_some());
                if !definite {
                    end = pos;
                    break;
                }
            }
            if pos == 0 {
                // glued to the piece after it: nothing settles
                return 0;
            }
            pos += inv;
            base = pos;
        }
        let Ok(valid) = std::str::from_utf8(&text[base..end]) else {
            return base;
        };
        base + self.settled_valid(valid)
    }

    /// [`Validity::settled`] of valid UTF-8 text (the horizon rule, docs/byte_probs.md §15.1).
    fn settled_valid(&self, valid: &str) -> usize {
        let Some(preset) = self.preset else {
            return 0;
        };
        if self.digit_split {
            // `[\p{N}, preset]`: a number character is a piece of its own and ends the
            // haystack the preset sees, so everything up to the last one is settled and the
            // rest is a haystack that only grows (docs/byte_probs.md §15.8). A text ending in
            // a number character settles just before it (the boundary stays before the end,
            // like every other settled boundary: the covers of the text start there).
            let Some((i, c)) = valid.char_indices().rfind(|&(_, c)| run_class(c) == 2) else {
                return self.settled_segment(preset, valid);
            };
            let q = i + c.len_utf8();
            if q == valid.len() {
                return i;
            }
            return q + self.settled_segment(preset, &valid[q..]);
        }
        self.settled_segment(preset, valid)
    }

    /// The horizon rule of docs/byte_probs.md §15.1 on the pieces of `preset`.
    fn settled_segment(&self, preset: Preset, valid: &str) -> usize {
        let mut p = 0;
        let ends = crate::pretokenize::presets::pieces(preset, valid).map(|piece| {
            p += piece.len();
            p
        });
        settled_by_pieces(preset, valid, ends)
    }

    /// `encode_bytes` of a short tail text, piece by piece (the same ids: the same pieces, as
    /// the preset scanners' two paths are, and [`Bpe::encode_piece`] per piece), without the
    /// encoder's chunked path and piece table, which are built for long texts.
    fn encode_tail_into(&self, text: &[u8], out: &mut Vec<u32>) -> Result<()> {
        for (s, e) in self.bpe.piece_ranges(text)? {
            self.bpe.encode_piece(&text[s..e], out);
        }
        Ok(())
    }

    /// [`Validity::encode_tail_into`] into a new vector.
    fn encode_tail(&self, text: &[u8]) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_tail_into(text, &mut out)?;
        Ok(out)
    }

    /// Tokens of the pieces of `text` that end at or before `a` (a settled boundary): the
    /// first tokens of `encode(text + s)` for every `s`. Not `encode(text[..a])`, which
    /// pre-tokenizes `text[..a]` as a whole text (its end may re-split a trailing run).
    pub fn encode_settled(&self, text: &[u8], a: usize) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        for (s, e) in self.bpe.piece_ranges(text)? {
            if e > a {
                break;
            }
            self.bpe.encode_piece(&text[s..e], &mut out);
        }
        Ok(out)
    }

    /// Whether the piece boundaries inside a tail `text` (starting at a settled boundary) can
    /// still change with what follows (docs/byte_probs.md §15.2). `false` only when every piece
    /// but the last is settled and the last one can only grow: no whitespace in it except a
    /// leading space before a non-space, ASCII for o200k's case-split letter runs.
    pub fn may_change(&self, text: &[u8]) -> Result<bool> {
        if self.preset.is_none() {
            return Ok(true);
        }
        let Ok(s) = std::str::from_utf8(text) else {
            // inside a multi-byte character (the only invalid UTF-8 left after the settled
            // boundary): judged by canonicality alone, docs/byte_probs.md §15.5
            return Ok(false);
        };
        if matches!(self.preset, Some(Preset::Cl100k | Preset::O200k)) && !self.digit_split {
            // a digit run from the settled boundary to the end: its groups of three start at
            // the run's start whatever follows (no first character before `\p{N}{1,3}`), so the
            // boundaries inside it never change; only the last group grows
            // (docs/byte_probs.md §15.2)
            let a = self.settled(text);
            if a < s.len() && s[a..].chars().all(|c| run_class(c) == 2) {
                return Ok(false);
            }
        }
        let pieces = self.bpe.pretokenizer().pieces(s)?;
        let Some(last) = pieces.last() else {
            return Ok(false);
        };
        let start = text.len() - last.len();
        if self.settled(text) != start {
            return Ok(true);
        }
        Ok(!self.grows_only(last))
    }

    /// Whether a last piece (whose start is settled) can only grow (docs/byte_probs.md §15.2):
    /// [one non-newline space character] + non-space characters + [a tail of newlines (cl100k)
    /// or newlines and slashes (o200k) after punctuation]; ASCII for o200k.
    fn grows_only(&self, last: &str) -> bool {
        let mut chars = last.chars().peekable();
        if chars
            .peek()
            .is_some_and(|&c| c.is_whitespace() && c != '\r' && c != '\n')
        {
            chars.next();
        }
        let mut body = chars.peekable();
        if body.peek().is_none_or(|c| c.is_whitespace()) {
            return false;
        }
        let tail_ok = |c: char| match self.preset {
            Some(Preset::Cl100k) => c == '\r' || c == '\n',
            Some(Preset::O200k) => c == '\r' || c == '\n' || c == '/',
            _ => false,
        };
        let mut in_tail = false;
        for c in body {
            in_tail |= c.is_whitespace();
            if in_tail && !tail_ok(c) {
                return false;
            }
        }
        // o200k: letters and marks outside ASCII only in the letter pieces analysed by
        // `o200k_letters_grow` (other characters go by their class, as in ASCII)
        self.preset != Some(Preset::O200k)
            || last.chars().all(|c| c.is_ascii() || run_class(c) != 1)
            || o200k_letters_grow(last)
    }

    /// The open part of `stem`: `(tail ids, tail text)` after its settled boundary (after the
    /// last special token; [`Rule::Pair`]: the last token). `None` when no token boundary sits at
    /// the settled boundary (the stem is invalid).
    pub fn tail<'a>(&self, stem: &'a [u32]) -> Result<Option<(&'a [u32], Vec<u8>)>> {
        let from = stem
            .iter()
            .rposition(|&t| !self.is_regular(t))
            .map_or(0, |i| i + 1);
        let seg = &stem[from..];
        if matches!(self.rule, Rule::Pair) || seg.is_empty() {
            let k = seg.len().saturating_sub(1);
            return Ok(Some((&seg[k..], self.bpe.decode_bytes(&seg[k..])?)));
        }
        let text = self.bpe.decode_bytes(seg)?;
        let a = self.settled(&text);
        let mut off = 0;
        let mut k = 0;
        while off < a && k < seg.len() {
            off += self.bpe.token_bytes(seg[k]).map_or(0, <[u8]>::len);
            k += 1;
        }
        if off != a {
            return Ok(None);
        }
        Ok(Some((&seg[k..], text[a..].to_vec())))
    }

    /// Whether the tail `ids` (spelling `text`, which starts at a settled boundary) can be
    /// completed to a canonical sequence ([`Rule::Pieces`]).
    fn comp_tail(&self, ids: &[u32], text: &[u8]) -> Result<bool> {
        if self.encode_tail(text)? == ids {
            return Ok(true);
        }
        let a = self.settled(text);
        let (ids, text) = if a > 0 {
            let mut off = 0;
            let mut k = 0;
            while off < a && k < ids.len() {
                off += self.bpe.token_bytes(ids[k]).map_or(0, <[u8]>::len);
                k += 1;
            }
            if off != a || self.encode_settled(text, a)? != ids[..k] {
                return Ok(false);
            }
            (&ids[k..], &text[a..])
        } else {
            (ids, text)
        };
        if self.encode_tail(text)? == ids {
            return Ok(true);
        }
        if !self.may_change(text)? {
            return Ok(false);
        }
        if let Ok(memo) = self.searches.lock() {
            if let Some(&found) = memo.get(ids) {
                return Ok(found);
            }
        }
        let found = self.search(ids, text)?;
        if let Ok(mut memo) = self.searches.lock() {
            if memo.len() >= SEARCH_MEMO {
                memo.clear();
            }
            memo.insert(ids.to_vec(), found);
        }
        Ok(found)
    }

    /// Completeness search (docs/byte_probs.md §15.3): a whitespace probe text continues `ids`
    /// canonically, or some regular `u` has `encode(text + bytes(u)) == ids ∘ u`, trying only
    /// the `u` that change the piece boundaries inside `text` and whose pieces, clipped to
    /// `text`, encode to `ids` (a necessary condition by single-piece prefix closure). When
    /// `text` is all whitespace the pieces inside it depend on `u` only through `u`'s leading
    /// whitespace and the character after it (or its absence), so each such signature is
    /// pre-tokenized once.
    fn search(&self, ids: &[u32], text: &[u8]) -> Result<bool> {
        let inner = |ranges: &[(usize, usize)]| -> Vec<usize> {
            ranges
                .iter()
                .map(|r| r.0)
                .filter(|&s| s > 0 && s < text.len())
                .collect()
        };
        let base = inner(&self.bpe.piece_ranges(text)?);
        let mut buf = Vec::with_capacity(text.len() + 16);
        let mut want = Vec::with_capacity(ids.len() + 1);
        want.extend_from_slice(ids);
        want.push(0);
        let mut out = Vec::with_capacity(ids.len() + 4);
        // a whitespace run that goes on by one non-newline whitespace character and then ends
        // (docs/byte_probs.md §15.3): the pieces over `text` are those of every longer run
        // without a newline, with a piece boundary at `|text|`; a single token cannot always
        // spell that continuation (at the end of the text `\s++$` keeps the run whole)
        let utf8 = std::str::from_utf8(text).ok();
        if utf8
            .and_then(|t| t.chars().next_back())
            .is_some_and(char::is_whitespace)
        {
            for probe in WS_PROBES {
                buf.clear();
                buf.extend_from_slice(text);
                buf.extend_from_slice(probe);
                out.clear();
                self.encode_tail_into(&buf, &mut out)?;
                if out.len() > ids.len() && out[..ids.len()] == *ids {
                    return Ok(true);
                }
            }
        }
        let all_ws = utf8.is_some_and(|t| t.chars().all(char::is_whitespace));
        if all_ws && self.probes_decide_whitespace(text) {
            // the probes above realise every split of an all-whitespace tail
            // (docs/byte_probs.md §15.3): none matched, so no continuation does
            return Ok(false);
        }
        let mut clip = Vec::with_capacity(ids.len() + 4);
        // whether the pieces of `text + bytes(u)`, clipped to `text`, can give `ids` at all
        // `buf` = text + a continuation
        let mut judge = |buf: &[u8]| -> Result<bool> {
            let ranges = self.bpe.piece_ranges(buf)?;
            if inner(&ranges) == base {
                return Ok(true);
            }
            clip.clear();
            for &(s, e) in &ranges {
                if s >= text.len() {
                    break;
                }
                self.bpe.encode_piece(&buf[s..e.min(text.len())], &mut clip);
            }
            Ok(clip != ids)
        };
        let fill = |buf: &mut Vec<u8>, more: &[u8]| {
            buf.clear();
            buf.extend_from_slice(text);
            buf.extend_from_slice(more);
        };
        let mut hopeless = |u: u32, buf: &mut Vec<u8>| -> Result<bool> {
            fill(buf, self.bpe.token_bytes(u).unwrap_or(&[]));
            judge(buf)
        };
        let mut hit = |u: u32, buf: &[u8]| -> Result<bool> {
            out.clear();
            self.encode_tail_into(buf, &mut out)?;
            if let Some(last) = want.last_mut() {
                *last = u;
            }
            Ok(out == want)
        };
        if all_ws {
            let g = self.groups.get_or_init(|| self.group_tokens());
            for members in &g.groups {
                let Some(&first) = members.first() else {
                    continue;
                };
                if hopeless(first, &mut buf)? {
                    continue;
                }
                for &u in members {
                    buf.clear();
                    buf.extend_from_slice(text);
                    buf.extend_from_slice(self.bpe.token_bytes(u).unwrap_or(&[]));
                    if hit(u, &buf)? {
                        return Ok(true);
                    }
                }
            }
            for &u in &g.loose {
                if !hopeless(u, &mut buf)? && hit(u, &buf)? {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        // by classes of leading characters (docs/byte_probs.md §15.7): when `text + rep`
        // settles at or past `|text|`, the pieces over `text` are the same for every member, so
        // one pre-tokenization judges the class
        let heads = self.heads.get_or_init(|| self.build_heads());
        let mut stack: Vec<&Head> = heads.root.kids.iter().collect();
        while let Some(h) = stack.pop() {
            fill(&mut buf, h.rep.as_bytes());
            if self.settled(&buf) >= text.len() {
                if hopeless(h.all[0], &mut buf)? {
                    continue;
                }
                for &u in &h.all {
                    fill(&mut buf, self.bpe.token_bytes(u).unwrap_or(&[]));
                    if hit(u, &buf)? {
                        return Ok(true);
                    }
                }
                continue;
            }
            for &u in &h.one {
                if !hopeless(u, &mut buf)? && hit(u, &buf)? {
                    return Ok(true);
                }
            }
            stack.extend(h.kids.iter());
        }
        for &u in &heads.loose {
            if !hopeless(u, &mut buf)? && hit(u, &buf)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether, for a tail that is all whitespace, the canonical encoding and the probes
    /// `" a"` and `"0"` already realise every split a continuation can give it
    /// (docs/byte_probs.md §15.3): cl100k; o200k without a newline in the tail; gpt2 when the
    /// tail does not end in a space (a space would join the next run, and whether that run's
    /// BPE can split after the space depends on the vocabulary). Not for digit-split sequences
    /// (a number character ends the haystack instead of ending the run).
    fn probes_decide_whitespace(&self, text: &[u8]) -> bool {
        if self.digit_split {
            return false;
        }
        match self.preset {
            Some(Preset::Cl100k) => true,
            Some(Preset::O200k) => !text.iter().any(|&c| c == b'\r' || c == b'\n'),
            Some(Preset::Gpt2) => text.last().is_some_and(|&c| c != b' '),
            None => false,
        }
    }

    /// Whether a tail `text` is all whitespace (both as `char::is_whitespace` and as the
    /// scanners' `\s` class) under a preset without a number split: then a whitespace token `v`
    /// after it is decided by [`Validity::whitespace_ok`].
    fn whitespace_rule_applies(&self, text: &str) -> bool {
        self.preset.is_some()
            && !self.digit_split
            && !text.is_empty()
            && text.chars().all(is_ws_run_char)
    }

    /// What [`Validity::whitespace_ok`] needs of an all-whitespace tail `key` spelling `text`,
    /// once per row.
    fn ws_tail(&self, key: &[u32], text: &[u8]) -> WsTail {
        let newline = |c: &u8| *c == b'\r' || *c == b'\n';
        let k = match self.preset {
            Some(Preset::Cl100k) => text.iter().rposition(newline).map_or(0, |i| i + 1),
            _ => 0,
        };
        let mut ids = Vec::with_capacity(key.len() + 1);
        self.bpe.encode_piece(text, &mut ids);
        // (P) holds for the merges; a whole-piece look-up (tiktoken) can encode `text` as one
        // token that the merges do not build, and then `bpe(x)` need not start with it
        let whole = ids == key || self.bpe.id_of(text).is_some();
        ids.clear();
        self.bpe.encode_piece(&text[..k], &mut ids);
        let j = ids.len();
        let split = key.starts_with(&ids).then_some(j);
        let rest_ok = split.is_some() && {
            ids.clear();
            self.bpe.encode_piece(&text[k..], &mut ids);
            key[j..] == ids[..]
        };
        let t = self.merge_tables();
        let by_pairs = |l: &[u8], rho: &[u32]| -> Option<u32> {
            let &u = rho.last()?;
            (t.monotone && self.merge_only(t, l).0 == rho).then_some(u)
        };
        let pair_whole = by_pairs(text, key);
        let pair_rest = match split {
            Some(j) if k > 0 => by_pairs(&text[k..], &key[j..]),
            _ => None,
        };
        WsTail {
            whole,
            k,
            split,
            rest_ok,
            pair_whole,
            pair_rest,
        }
    }

    /// Whether `bpe(l + bytes(v))` is `rho ∘ v` for one piece `l` whose merge-only BPE is
    /// `rho` (not empty, last token `u`) under monotone merges, by the pair rule (§4.2) as in
    /// [`Validity::extension_ok`]: `v` is the merge-only BPE of its bytes, the pair `(u, v)`
    /// holds, and (whole-piece look-up) `l + bytes(v)` (in `buf`) is not itself a token.
    fn pair_extends(&self, u: u32, v: u32, buf: &[u8]) -> bool {
        let t = self.merge_tables();
        debug_assert!(t.monotone);
        bit(&t.reach, v)
            && self.pair_valid(t, u, v)
            && !(self.bpe.ignore_merges() && self.bpe.id_of(buf).is_some())
    }

    /// `key ∘ v` after an all-whitespace tail `key` spelling `text` (see
    /// [`Validity::whitespace_rule_applies`]; `w` its [`Validity::ws_tail`]) for a token `v` of
    /// whitespace only, when the probes decide `x = text + bytes(v)` (docs/byte_probs.md §15.3,
    /// "all-whitespace tails need no search"); `None` otherwise. The tail check of `x` comes
    /// down to this: `x` is one whitespace run reaching its end, so its settled boundary is 0
    /// and its boundaries may change; the depth-one search then tries the probes and, when they
    /// decide, stops. So `key ∘ v` is valid iff it is `encode(x)` or a probe continues it
    /// canonically.
    ///
    /// Those conditions, by the pieces each one gives `x` (docs/byte_probs.md §15.9, eighth
    /// round; from the preset patterns in `pretokenize/presets.rs`): `x` has two characters or
    /// more. Let `k` be the end of the last `\r`/`\n` of `text` for cl100k (`\s*[\r\n]`
    /// ends there), else 0.
    /// - `encode(x)` is the one piece `x` (gpt2, cl100k `\s++$`; o200k, with no newline in `x`
    ///   here, `\s+(?!\S)`): by (P) it needs `key = bpe(text)` (`w.whole`; (P) is a property of
    ///   the merges, and `bpe(x)` of two tokens or more is the merges' BPE, as is `bpe(text)`
    ///   unless `text` is a token), then `bpe(x) == key ∘ v`.
    /// - A probe `u + c` (`u` a space or tab, `c` not whitespace) defeats `\s++$`: cl100k
    ///   splits after the last newline of `x`, `\s+(?!\S)` gives `u` back, and `u` starts a
    ///   new piece, so `x` gets `[0, k')` and `[k', |x|)` with `k'` the end of `x`'s last
    ///   newline (gpt2, o200k: `k' = 0`, the one piece). The same for all four; when `v` holds a
    ///   newline under cl100k (`k' > |text|`) it is `x` alone (`k' = |x|`) or crosses `k'` (no token `v`):
    ///   nothing beyond `encode(x)`. Else `k' = k`, and for `k > 0` it needs `key = bpe(text[..k])
    ///   ∘ bpe(text[k..])` (`w.split`, `w.rest_ok`) and `bpe(text[k..] + bytes(v)) = bpe(text[k..])
    ///   ∘ v` (by (P)).
    /// - The probe `"0"` ends the run on a number: `x` gets `[0, k')`, `[k', |x| - 1)` and its
    ///   last character alone (`\s`, `\s+`; not a space for gpt2, `probes_decide_whitespace`),
    ///   or the pieces of the probes above when `|x| - k' <= 1`. A `v` of two characters or more
    ///   then holds a piece boundary strictly inside; a one-character `v` with a newline (cl100k) is
    ///   `x`'s last newline (`k' = |x|`, the one piece); else it needs `key = bpe(text[..k]) ∘
    ///   bpe(text[k..])` and `bpe(bytes(v)) = [v]`.
    fn whitespace_ok(
        &self,
        key: &[u32],
        text: &[u8],
        w: &WsTail,
        v: u32,
        buf: &mut Vec<u8>,
    ) -> Result<Option<bool>> {
        let vb = self.bpe.token_bytes(v).unwrap_or(&[]);
        let Ok(vs) = std::str::from_utf8(vb) else {
            return self.whitespace_then_fragment_ok(key, text, w, vb, v, buf);
        };
        if vs.is_empty() || !vs.chars().all(is_ws_run_char) {
            return Ok(None);
        }
        buf.clear();
        buf.extend_from_slice(text);
        buf.extend_from_slice(vb);
        if !self.probes_decide_whitespace(buf) {
            return Ok(None);
        }
        debug_assert!(w.k <= text.len());
        let mut out = Vec::with_capacity(key.len() + 2);
        // `encode(x)`: one piece
        if let (true, Some(u)) = (w.whole, w.pair_whole) {
            if self.pair_extends(u, v, buf) {
                return Ok(Some(true));
            }
        } else if w.whole {
            self.bpe.encode_piece(buf, &mut out);
            if out.len() == key.len() + 1 && out[..key.len()] == *key && out[key.len()] == v {
                return Ok(Some(true));
            }
        }
        if self.preset == Some(Preset::Cl100k) && vb.iter().any(|&c| c == b'\r' || c == b'\n') {
            return Ok(Some(false));
        }
        let Some(j) = w.split else {
            return Ok(Some(false));
        };
        // `" a"` and the other probes `u + c`: pieces `[0, k)`, `[k, |x|)`
        if let (true, Some(u)) = (w.k > 0, w.pair_rest) {
            if self.pair_extends(u, v, &buf[w.k..]) {
                return Ok(Some(true));
            }
        } else if w.k > 0 {
            out.clear();
            self.bpe.encode_piece(&buf[w.k..], &mut out);
            let r = &key[j..];
            if out.len() == r.len() + 1 && out[..r.len()] == *r && out[r.len()] == v {
                return Ok(Some(true));
            }
        }
        // `"0"`: pieces `[0, k)`, `[k, |text|)`, `v`
        if w.rest_ok && vs.chars().nth(1).is_none() {
            out.clear();
            self.bpe.encode_piece(vb, &mut out);
            return Ok(Some(out[..] == [v]));
        }
        Ok(Some(false))
    }

    /// `key ∘ v` after an all-whitespace tail for a token `v` of whitespace characters and then
    /// bytes without a complete character (a space and a lone byte): valid iff canonical, by one
    /// encoding; `None` for other shapes. In `x = text + bytes(v)` the valid text is one
    /// whitespace run and every invalid byte lies inside `v`, so the settled boundary of `x` is
    /// 0 (the run reaches the end of the valid text; the tail check then finds `x` cannot change,
    /// §15.5, and wants `encode(x)`), `|x|` (the tokens before it must be `encode(x)`), or past
    /// `|text|` and inside `v`, where `key ∘ v` has no token boundary: in every case only the
    /// canonical sequence is valid (docs/byte_probs.md §15.9).
    ///
    /// For gpt2 and cl100k the valid run `text` + whitespace ends its haystack, so `\s++$` makes
    /// it one piece, and the invalid bytes glue onto it: `encode(x) = bpe(x)`, which by (P)
    /// needs `key = bpe(text)` ([`WsTail::whole`]); then one encoding of that piece decides
    /// (docs/byte_probs.md §15.9, eighth round).
    fn whitespace_then_fragment_ok(
        &self,
        key: &[u32],
        text: &[u8],
        w: &WsTail,
        vb: &[u8],
        v: u32,
        buf: &mut Vec<u8>,
    ) -> Result<Option<bool>> {
        let mut chunks = vb.utf8_chunks();
        let Some(first) = chunks.next() else {
            return Ok(None);
        };
        let ws = first.valid();
        let ws_ok = !ws.is_empty() && ws.chars().all(is_ws_run_char);
        if !ws_ok || chunks.any(|c| !c.valid().is_empty()) {
            return Ok(None);
        }
        buf.clear();
        buf.extend_from_slice(text);
        buf.extend_from_slice(vb);
        let mut out = Vec::with_capacity(key.len() + 2);
        if matches!(self.preset, Some(Preset::Gpt2 | Preset::Cl100k)) {
            if !w.whole {
                return Ok(Some(false));
            }
            if let Some(u) = w.pair_whole {
                return Ok(Some(self.pair_extends(u, v, buf)));
            }
            self.bpe.encode_piece(buf, &mut out);
        } else {
            self.encode_tail_into(buf, &mut out)?;
        }
        Ok(Some(
            out.len() == key.len() + 1 && out[..key.len()] == *key && out[key.len()] == v,
        ))
    }

    fn group_tokens(&self) -> Groups {
        let mut index: FxHashMap<Signature, usize> = FxHashMap::default();
        let mut g = Groups::default();
        for &u in &self.regular {
            match signature(self.bpe.token_bytes(u).unwrap_or(&[])) {
                Some(sig) => {
                    let k = *index.entry(sig).or_insert_with(|| {
                        g.groups.push(Vec::new());
                        g.groups.len() - 1
                    });
                    g.groups[k].push(u);
                }
                None => g.loose.push(u),
            }
        }
        g
    }

    /// Whether `stem ∘ t` is valid.
    fn valid_after(&self, key: &[u32], text: &[u8], t: u32) -> Result<bool> {
        let tb = self.bpe.token_bytes(t).unwrap_or(&[]);
        match self.rule {
            Rule::Pair => {
                let mut ids = key.to_vec();
                ids.push(t);
                let mut bytes = text.to_vec();
                bytes.extend_from_slice(tb);
                Ok(self.bpe.encode_bytes(&bytes)? == ids)
            }
            Rule::Pieces => {
                let mut ids = key.to_vec();
                ids.push(t);
                let mut bytes = text.to_vec();
                bytes.extend_from_slice(tb);
                self.comp_tail(&ids, &bytes)
            }
        }
    }

    /// Whether a sequence ending in `stem` (valid) may end here: it is canonical. Always true
    /// for [`Rule::Pair`] (valid = canonical there).
    pub fn eos_ok(&self, stem: &[u32]) -> Result<bool> {
        if matches!(self.rule, Rule::Pair) {
            return Ok(true);
        }
        let Some((key, text)) = self.tail(stem)? else {
            return Ok(false);
        };
        Ok(self.encode_tail(&text)? == key)
    }

    /// Bits of the tokens that may follow a sequence ending in `stem`.
    pub fn row(&self, stem: &[u32]) -> Result<Bits> {
        let Some((key, text)) = self.tail(stem)? else {
            return Ok(Arc::new(vec![0; self.single.len()]));
        };
        self.row_keyed(key, &text)
    }

    /// The row of the open tail `key` (spelling `text`, which starts at a settled boundary),
    /// through the LRU.
    fn row_keyed(&self, key: &[u32], text: &[u8]) -> Result<Bits> {
        if key.is_empty() {
            return Ok(self.single.clone());
        }
        if let Ok(mut lru) = self.rows.lock() {
            lru.clock += 1;
            let now = lru.clock;
            if let Some(e) = lru.map.get_mut(key) {
                e.1 = now;
                return Ok(e.0.clone());
            }
        }
        let pieces = self.rule == Rule::Pieces && self.preset.is_some();
        let row = match std::str::from_utf8(text) {
            Ok(t) if pieces => self.compute_row_heads(key, t)?,
            Err(e) if pieces && e.error_len().is_none() && e.valid_up_to() > 0 => {
                self.compute_row_mid_char(key, text)?
            }
            _ => self.compute_row(key, text)?,
        };
        if let Ok(mut lru) = self.rows.lock() {
            if lru.map.len() >= self.cap {
                if let Some(old) = lru
                    .map
                    .iter()
                    .min_by_key(|(_, v)| v.1)
                    .map(|(k, _)| k.clone())
                {
                    lru.map.remove(&old);
                }
            }
            let now = lru.clock;
            lru.map.insert(key.to_vec(), (row.clone(), now));
        }
        Ok(row)
    }

    /// Whether `t` may follow `stem` (a cached row bit, or one check).
    pub fn ok(&self, stem: &[u32], t: u32) -> Result<bool> {
        if !bit(&self.single, t) {
            return Ok(false);
        }
        let Some((key, text)) = self.tail(stem)? else {
            return Ok(false);
        };
        if key.is_empty() {
            return Ok(true);
        }
        if let Ok(lru) = self.rows.lock() {
            if let Some(e) = lru.map.get(key) {
                return Ok(bit(&e.0, t));
            }
        }
        self.valid_after(key, &text, t)
    }

    /// Number of cached rows.
    pub fn cached_rows(&self) -> usize {
        self.rows.lock().map(|l| l.map.len()).unwrap_or(0)
    }

    fn build_merge_tables(&self) -> MergeTables {
        let rank = self.bpe.priority() == crate::bpe::Priority::Rank;
        let mut pairs: FxHashMap<(u32, u32), (u32, u32)> = FxHashMap::default();
        let mut cat = Vec::new();
        for (i, &(l, r)) in self.bpe.merges().iter().enumerate() {
            cat.clear();
            cat.extend_from_slice(self.bpe.token_bytes(l).unwrap_or(&[]));
            cat.extend_from_slice(self.bpe.token_bytes(r).unwrap_or(&[]));
            let Some(id) = self.bpe.id_of(&cat) else {
                continue;
            };
            let prio = if rank { id } else { i as u32 };
            pairs.entry((l, r)).or_insert((prio, id));
        }
        let mut list: Vec<(u32, u32, u32, u32)> = pairs
            .into_iter()
            .map(|((l, r), (p, id))| (l, r, p, id))
            .collect();
        list.sort_unstable();
        let mut partner_at = vec![0u32; self.bpe.vocab_size() + 1];
        for &(l, ..) in &list {
            if let Some(c) = partner_at.get_mut(l as usize + 1) {
                *c += 1;
            }
        }
        for i in 1..partner_at.len() {
            partner_at[i] += partner_at[i - 1];
        }
        let partners = list.iter().map(|&(_, r, p, _)| (r, p)).collect();
        let mut t = MergeTables {
            pairs: PairTable::new(&list, rank),
            split: vec![(NO_ID, NO_ID, 0); self.bpe.vocab_size()],
            reach: vec![0; self.single.len()],
            unreached: Vec::new(),
            partner_at,
            partners,
            monotone: true,
            left_kids: LeftKids::default(),
        };
        for &u in &self.regular {
            let b = self.bpe.token_bytes(u).unwrap_or(&[]);
            let (ids, last) = self.merge_only(&t, b);
            if ids == [u] {
                set_bit(&mut t.reach, u);
                if let Some(m) = last {
                    t.split[u as usize] = m;
                }
            } else {
                t.unreached.push(u);
            }
        }
        t.unreached
            .sort_by(|&x, &y| self.bpe.token_bytes(x).cmp(&self.bpe.token_bytes(y)));
        let prio = |x: u32| -> Option<u32> {
            let (l, _, p) = t.split[x as usize];
            (l != NO_ID).then_some(p)
        };
        t.monotone = self.regular.iter().all(|&u| {
            let (l, r, p) = t.split[u as usize];
            l == NO_ID || (prio(l).is_none_or(|q| q < p) && prio(r).is_none_or(|q| q < p))
        });
        t.left_kids = LeftKids::new(&t.split);
        t
    }

    /// Merge-only BPE of `b` (lowest priority first, leftmost on ties, as the encoder's merge
    /// loop) and the last merge applied `(left, right, priority)`.
    fn merge_only(&self, t: &MergeTables, b: &[u8]) -> (Vec<u32>, Option<(u32, u32, u32)>) {
        let mut syms: Vec<u32> = b
            .iter()
            .map(|&x| self.bpe.id_of(&[x]).unwrap_or(NO_ID))
            .collect();
        let mut last = None;
        loop {
            let mut best: Option<(u32, usize, u32)> = None;
            for i in 0..syms.len().saturating_sub(1) {
                let p = t.pairs.prio(syms[i], syms[i + 1]);
                if p != PAIR_NONE && best.is_none_or(|(bp, _, _)| p < bp) {
                    best = Some((p, i, t.pairs.result(p)));
                }
            }
            let Some((p, i, r)) = best else {
                break;
            };
            last = Some((syms[i], syms[i + 1], p));
            syms[i] = r;
            syms.remove(i + 1);
        }
        (syms, last)
    }

    /// Whether the merge-only BPE of `bytes(a) + bytes(b)` is `[a, b]`, for tokens `a`, `b` that
    /// are the merge-only BPE of their own bytes: walk both merge trees back from the boundary;
    /// at each step the boundary pair must not merge before the next merge that consumes one of
    /// its tokens (a tie goes to the leftmost pair).
    fn pair_valid(&self, t: &MergeTables, mut a: u32, mut b: u32) -> bool {
        // merges with priority < limit fire before the boundary tokens change
        let mut limit = u64::MAX;
        loop {
            let p = t.pairs.prio(a, b);
            if p != PAIR_NONE && u64::from(p) < limit {
                return false;
            }
            let (al, ar, pa) = t.split[a as usize];
            let (bl, _, pb) = t.split[b as usize];
            let a_leaf = al == NO_ID;
            let b_leaf = bl == NO_ID;
            if a_leaf && b_leaf {
                return true;
            }
            if !a_leaf && (b_leaf || pa > pb) {
                // `a` formed last: before it, its right part met `b`; a tie with `a`'s merge
                // goes to `a` (left of the boundary pair)
                limit = u64::from(pa);
                a = ar;
            } else {
                // `b` formed last: a tie with `b`'s merge goes to the boundary pair
                limit = u64::from(pb) + 1;
                b = bl;
            }
        }
    }

    /// The tokens `v` of `set` built by the merges with `pair_valid(u, v)`, as a bitset
    /// (docs/byte_probs.md §15.7). The pair row of `u` over all three sets
    /// ([`Heads::pair_members`]) goes through a bounded LRU keyed by `u` (the answer depends on
    /// nothing else: the tables are fixed per vocabulary, and a member's bit does not depend on
    /// the other members), so the letters or punctuation of a row and its byte fragments,
    /// which share their last token, cost one row. Computed from the merges that break a pair,
    /// not one walk per `v` ([`pair_row::pair_row`]).
    fn pair_row(&self, t: &MergeTables, heads: &Heads, u: u32, set: PairSet) -> Vec<u64> {
        let members = match set {
            PairSet::Letters => &heads.plain_letters,
            PairSet::Punct => &heads.punct,
            PairSet::Fragments => &heads.fragment_bits,
        };
        let restrict =
            |row: &[u64]| -> Vec<u64> { row.iter().zip(members).map(|(r, m)| r & m).collect() };
        if let Ok(mut lru) = self.pair_rows.lock() {
            lru.clock += 1;
            let now = lru.clock;
            if let Some(e) = lru.map.get_mut(&u) {
                e.1 = now;
                return restrict(&e.0);
            }
        }
        let partners = |a: u32| t.partners_of(a);
        let all = &heads.pair_members;
        let words = pair_row::pair_row(
            &t.split,
            partners,
            &t.left_kids,
            u,
            all,
            &t.reach,
            pair_row::How::Auto,
        );
        let out = restrict(&words);
        if let Ok(mut lru) = self.pair_rows.lock() {
            if lru.map.len() >= PAIR_ROWS {
                if let Some(old) = lru.map.iter().min_by_key(|(_, e)| e.1).map(|(&k, _)| k) {
                    lru.map.remove(&old);
                }
            }
            let now = lru.clock;
            lru.map.insert(u, (Arc::new(words), now));
        }
        out
    }

    fn build_heads(&self) -> Heads {
        let mut h = Heads {
            letters: vec![0; self.single.len()],
            plain_letters: vec![0; self.single.len()],
            punct: vec![0; self.single.len()],
            fragment_bits: vec![0; self.single.len()],
            lower_ascii: vec![0; self.single.len()],
            pair_members: Vec::new(),
            ..Heads::default()
        };
        let mut index: FxHashMap<Vec<u32>, Vec<usize>> = FxHashMap::default();
        for &u in &self.regular {
            let b = self.bpe.token_bytes(u).unwrap_or(&[]);
            if first_char(b).is_none() {
                h.loose.push(u);
                if b.utf8_chunks().all(|c| c.valid().is_empty()) {
                    let incomplete = std::str::from_utf8(b)
                        .err()
                        .is_some_and(|e| e.valid_up_to() == 0 && e.error_len().is_none());
                    h.fragments.push((u, incomplete));
                    set_bit(&mut h.fragment_bits, u);
                }
                continue;
            }
            let letter = std::str::from_utf8(b).is_ok_and(|s| {
                let ascii_only = self.preset == Some(Preset::O200k);
                s.chars()
                    .all(|c| run_class(c) == 1 && (!ascii_only || c.is_ascii()))
            });
            if letter {
                set_bit(&mut h.letters, u);
            }
            if !b.is_empty() && b.iter().all(u8::is_ascii_lowercase) {
                set_bit(&mut h.lower_ascii, u);
            }
            if std::str::from_utf8(b).is_ok_and(|s| s.chars().all(|c| char_flags(c) & 1 != 0)) {
                set_bit(&mut h.plain_letters, u);
            }
            if let Some(p) = self.preset {
                if std::str::from_utf8(b).is_ok_and(|s| punct_token(p, s)) {
                    set_bit(&mut h.punct, u);
                }
            }
            // walk down the classes of the leading characters, creating nodes on the way
            let mut path: Vec<usize> = Vec::new();
            let mut keys: Vec<u32> = Vec::new();
            let mut node = &mut h.root;
            node.all.push(u);
            node.others += usize::from(!letter);
            let mut at = 0;
            let mut rep = String::new();
            loop {
                let next = if path.len() < HEAD_DEPTH {
                    first_char(&b[at..])
                } else {
                    None
                };
                let Some(c) = next else {
                    node.one.push(u);
                    break;
                };
                at += c.len_utf8();
                rep.push(c);
                keys.push(char_key(c));
                let slot = index.entry(keys.clone()).or_default();
                let k = match slot.first() {
                    Some(&k) => k,
                    None => {
                        node.kids.push(Head {
                            rep: rep.clone(),
                            ..Head::default()
                        });
                        slot.push(node.kids.len() - 1);
                        node.kids.len() - 1
                    }
                };
                path.push(k);
                node = &mut node.kids[k];
                node.all.push(u);
                node.others += usize::from(!letter);
            }
        }
        h.pair_members = h
            .plain_letters
            .iter()
            .zip(&h.punct)
            .zip(&h.fragment_bits)
            .map(|((l, p), f)| l | p | f)
            .collect();
        // `regular` is in id order, so every `all` is sorted
        let mut stack: Vec<&mut Head> = vec![&mut h.root];
        while let Some(node) = stack.pop() {
            node.words = IdWords::from_sorted(&node.all);
            stack.extend(node.kids.iter_mut());
        }
        h.letters_open = LettersOpen::new(&h.root, self.single.len());
        h
    }

    /// What the tail `key` (spelling `text`) decides for every token starting with the
    /// characters `rep` (docs/byte_probs.md §15.7): with `a = settled(text + rep)` (a lower bound
    /// on `settled(text + bytes(v))` for all such `v`: same classes, and longer texts settle no
    /// less), the pieces of `text + bytes(v)` ending at or before `b` = the last piece end
    /// `<= min(a, |text|)` are fixed. So `key` must start with their tokens (else no such `v` is
    /// valid), and what follows is the tail `key[k..]` over `text[b..]`.
    fn head_decision(
        &self,
        key: &[u32],
        text: &str,
        rep: &str,
        scratch: &mut Scratch,
    ) -> Result<HeadDecision> {
        let Scratch { d, ranges, ids } = scratch;
        d.clear();
        d.push_str(text);
        d.push_str(rep);
        self.bpe.str_piece_ranges_into(d, ranges)?;
        let full = match self.preset {
            // the pieces just computed are the preset's: one scan serves both
            Some(p) if !self.digit_split && self.bpe.pretokenizer().preset() == Some(p) => {
                settled_by_pieces(p, d, ranges.iter().map(|r| r.1))
            }
            _ => self.settled(d.as_bytes()),
        };
        let a = full.min(text.len());
        if rep.is_ascii() && full > text.len() {
            // every member starts with the bytes of `rep` (ASCII classes are characters), so
            // the pieces of `text + bytes(v)` up to `full` are those of `d`
            let n = text.len();
            if let Some(&(_, e)) = ranges.iter().find(|r| r.0 < n && n < r.1 && r.1 <= full) {
                return Ok(HeadDecision::Straddle(e - n));
            }
        }
        let mut b = 0;
        for &(_, e) in ranges.iter() {
            if e > a {
                break;
            }
            b = e;
        }
        if b == 0 {
            return Ok(HeadDecision::Open);
        }
        let mut off = 0;
        let mut k = 0;
        while off < b && k < key.len() {
            off += self.bpe.token_bytes(key[k]).map_or(0, <[u8]>::len);
            k += 1;
        }
        if off != b {
            return Ok(HeadDecision::Invalid);
        }
        // the tokens of the pieces ending at or before `b` (`encode_settled(d, b)`)
        ids.clear();
        for &(s, e) in ranges.iter() {
            if e > b {
                break;
            }
            self.bpe.encode_piece(&d.as_bytes()[s..e], ids);
        }
        if ids[..] != key[..k] {
            return Ok(HeadDecision::Invalid);
        }
        Ok(HeadDecision::Rebase(k, b))
    }

    /// [`Extension`] of a tail, if it has one: the tail is canonical, its last piece `l` starts
    /// at its settled boundary and holds no newline (ASCII only for o200k).
    fn extension(&self, key: &[u32], text: &str) -> Result<Option<Extension>> {
        let tb = text.as_bytes();
        let Some(&(s, e)) = self.bpe.piece_ranges(tb)?.last() else {
            return Ok(None);
        };
        let l = &tb[s..];
        if e != tb.len()
            || l.iter().any(|&c| c == b'\r' || c == b'\n')
            || (self.preset == Some(Preset::O200k) && !l.is_ascii())
            || self.settled(tb) != s
            || self.encode_tail(tb)? != key
        {
            return Ok(None);
        }
        let mut off = 0;
        let mut k = 0;
        while off < s && k < key.len() {
            off += self.bpe.token_bytes(key[k]).map_or(0, <[u8]>::len);
            k += 1;
        }
        if off != s {
            return Ok(None);
        }
        // `l + letters` is one piece without scanning it: gpt2 ` ?\p{L}+`, cl100k
        // `[^\r\n\p{L}\p{N}]?+\p{L}++` (an apostrophe first could start a contraction; a
        // non-ASCII first character only when it is none of whitespace, letter, mark, number);
        // the letters may be any `\p{L}` (issue 16, fifth round: not only ASCII)
        let Ok(ls) = std::str::from_utf8(l) else {
            return Ok(None);
        };
        let is_letter = |c: char| char_flags(c) & 1 != 0;
        let head_ok = |c: char| match self.preset {
            Some(Preset::Gpt2) => c == ' ',
            Some(Preset::Cl100k) if c.is_ascii() => !c.is_ascii_digit() && c != '\'',
            Some(Preset::Cl100k) => run_class(c) == 3,
            _ => false,
        };
        let first = ls.chars().next();
        let rest = match first {
            Some(c) if !is_letter(c) => &ls[c.len_utf8()..],
            _ => ls,
        };
        let letters = first.is_some_and(|c| is_letter(c) || head_ok(c))
            && !rest.is_empty()
            && rest.chars().all(is_letter);
        let single = first.is_some_and(|c| c.len_utf8() == ls.len() && head_ok(c));
        let merge_ok = self.merge_only(self.merge_tables(), l).0 == key[k..];
        Ok(Some(Extension {
            l: l.to_vec(),
            rho_l: key[k..].to_vec(),
            merge_ok,
            one_piece: matches!(self.preset, Some(Preset::Gpt2 | Preset::Cl100k))
                && (letters || single),
        }))
    }

    /// Validity of `key ∘ v` by [`Extension`]: `None` when `l + bytes(v)` is not one piece that
    /// can only grow. Such a piece after a settled start stays the last piece of the tail for
    /// good (§15.2), so valid = canonical = the BPE of that piece is `rho_l ∘ v`.
    fn extension_ok(&self, x: &Extension, v: u32, buf: &mut Vec<u8>) -> Result<Option<bool>> {
        let vb = self.bpe.token_bytes(v).unwrap_or(&[]);
        buf.clear();
        buf.extend_from_slice(&x.l);
        buf.extend_from_slice(vb);
        let known = x.one_piece && vb.iter().all(u8::is_ascii_alphabetic);
        // one piece that can only grow: valid = canonical (§15.2)
        if !known && !self.one_growing_piece(buf)? {
            return Ok(None);
        }
        let t = self.merge_tables();
        if let (true, Some(&u)) = (t.monotone, x.rho_l.last()) {
            // pair rule of the merge-only BPE (§4.2): `l + bytes(v)` merges to `rho_l ∘ v` iff
            // `rho_l` is the merges' BPE of `l`, `v` of its bytes, and the pair `(u, v)` holds;
            // whole-piece look-up (tiktoken) then only differs when `l + bytes(v)` is a token
            let ok = x.merge_ok
                && bit(&t.reach, v)
                && self.pair_valid(t, u, v)
                && !(self.bpe.ignore_merges() && self.bpe.id_of(buf).is_some());
            return Ok(Some(ok));
        }
        let mut out = Vec::with_capacity(x.rho_l.len() + 1);
        self.bpe.encode_piece(buf, &mut out);
        let n = x.rho_l.len();
        Ok(Some(
            out.len() == n + 1 && out[..n] == x.rho_l[..] && out[n] == v,
        ))
    }

    /// Whether `piece` (the last piece `l` of an [`Extension`] and a token's bytes) is one piece
    /// that can only grow (§15.2), by one scan.
    fn one_growing_piece(&self, piece: &[u8]) -> Result<bool> {
        let Ok(piece) = std::str::from_utf8(piece) else {
            return Ok(false);
        };
        let mut pieces = 0usize;
        self.bpe
            .pretokenizer()
            .for_each_piece(piece, |_| pieces += 1)?;
        Ok(pieces == 1 && self.grows_only(piece))
    }

    /// The letter tokens `v` ([`Heads::plain_letters`]) with `key ∘ v` valid after a one-piece
    /// [`Extension`] (`l` + letters is one piece that only grows: valid = canonical), as a bitset;
    /// `None` when the pair walk does not apply (then [`Validity::extension_ok`] decides).
    /// Canonical iff the merge-only BPE of `l + bytes(v)` is `rho_l ∘ v` (the pair rule: the
    /// pair row of `rho_l`'s last token) and, with a whole-piece look-up, `l + bytes(v)` is not
    /// a token: a token that is the merge-only BPE of its own bytes would have failed the pair
    /// rule already, so only the tokens outside `reach` that start with `l` are looked at.
    fn letter_extensions(&self, heads: &Heads, x: &Extension) -> Option<Vec<u64>> {
        let t = self.merge_tables();
        let &u = x.rho_l.last()?;
        // o200k: whether `l + bytes(v)` is one piece depends on the letters' case classes, so
        // the caller checks it per token (`Validity::one_growing_piece`) and uses these bits
        // only for the tokens that pass (issue 16, sixth round)
        if !(x.one_piece || self.preset == Some(Preset::O200k)) || !t.monotone {
            return None;
        }
        if !x.merge_ok {
            return Some(vec![0; self.single.len()]);
        }
        let mut words = self.pair_row(t, heads, u, PairSet::Letters);
        self.drop_whole_pieces(&x.l, &mut words);
        Some(words)
    }

    /// The [`Heads::punct`] tokens `v` with `key ∘ v` valid after an [`Extension`] whose piece
    /// `l` is [`punct_grows`]'s shape, as a bitset (issue 16, seventh round): `l + bytes(v)` is
    /// one growing piece for all of them, so [`Validity::extension_ok`] decides each by the pair
    /// rule, `merge_ok`, `reach`, `pair_valid(last(rho_l), v)` and no whole-piece token
    /// `l + bytes(v)`; the pair row of `last(rho_l)` over [`Heads::punct`] holds the middle two
    /// for every `v` at once, and the whole-piece exclusion is [`Validity::letter_extensions`]'s.
    /// `None` when the shape or the pair walk does not apply.
    fn punct_extensions(&self, heads: &Heads, x: &Extension) -> Option<Vec<u64>> {
        let t = self.merge_tables();
        let &u = x.rho_l.last()?;
        let preset = self.preset?;
        if self.digit_split || !t.monotone || !punct_grows(preset, &x.l) {
            return None;
        }
        if !x.merge_ok {
            return Some(vec![0; self.single.len()]);
        }
        let mut words = self.pair_row(t, heads, u, PairSet::Punct);
        self.drop_whole_pieces(&x.l, &mut words);
        Some(words)
    }

    /// Clears in `words` the tokens `v` for which `l + bytes(v)` is itself a token under a
    /// whole-piece look-up (tiktoken): a token that is the merge-only BPE of its own bytes
    /// would have failed the pair rule already, so only the tokens outside `reach` that start
    /// with `l` are looked at.
    fn drop_whole_pieces(&self, l: &[u8], words: &mut [u64]) {
        let t = self.merge_tables();
        if self.bpe.ignore_merges() {
            // the unreached tokens are sorted by their bytes: those starting with `l` follow
            // one another from the first one not below `l`
            let bytes = |w: u32| self.bpe.token_bytes(w).unwrap_or(&[]);
            let from = t.unreached.partition_point(|&w| bytes(w) < l);
            for &w in &t.unreached[from..] {
                let wb = bytes(w);
                if !wb.starts_with(l) {
                    break;
                }
                if wb.len() > l.len() {
                    if let Some(v) = self.bpe.id_of(&wb[l.len()..]) {
                        if let Some(word) = words.get_mut(v as usize / 64) {
                            *word &= !(1 << (v % 64));
                        }
                    }
                }
            }
        }
    }

    /// The [`Glue`] of byte fragments onto the tail `key` spelling `text` (valid UTF-8).
    fn glue(&self, key: &[u32], text: &[u8]) -> Result<Glue> {
        let ranges = self.bpe.piece_ranges(text)?;
        let (pre, piece) = match ranges.split_last() {
            Some((&(s, e), pre)) if e == text.len() => (pre, &text[s..]),
            _ => (&ranges[..], &text[text.len()..]),
        };
        let mut ids = Vec::with_capacity(key.len());
        for &(s, e) in pre {
            self.bpe.encode_piece(&text[s..e], &mut ids);
        }
        let ok = key.starts_with(&ids);
        Ok(Glue {
            piece: piece.to_vec(),
            ok,
            rest: if ok {
                key[ids.len()..].to_vec()
            } else {
                Vec::new()
            },
        })
    }

    /// Whether the fragment `v` continues the glue's tail canonically: `bpe(piece + bytes(v))`
    /// is `rest ∘ v`.
    fn glue_ok(&self, g: &Glue, v: u32, buf: &mut Vec<u8>, out: &mut Vec<u32>) -> bool {
        if !g.ok {
            return false;
        }
        buf.clear();
        buf.extend_from_slice(&g.piece);
        buf.extend_from_slice(self.bpe.token_bytes(v).unwrap_or(&[]));
        out.clear();
        self.bpe.encode_piece(buf, out);
        out.len() == g.rest.len() + 1 && out[..g.rest.len()] == g.rest[..] && out.last() == Some(&v)
    }

    /// The fragments `v` ([`Heads::fragments`]) with [`Validity::glue_ok`]`(g, v)`, as a bitset
    /// (docs/byte_probs.md §15.9, eighth round); `None` when the pair walk does not apply (the
    /// glue's piece is empty, or the merges are not [`MergeTables::monotone`]). `glue_ok` asks
    /// whether `bpe(piece + bytes(v)) == rest ∘ v` for one piece, which is
    /// [`Validity::extension_ok`]'s question with `l = piece`, `rho_l = rest`: under a
    /// whole-piece look-up a token `piece + bytes(v)` encodes to one token (`rest` is not empty:
    /// it spells `piece`), else the merge-only BPE of `piece + bytes(v)` is `rest ∘ v` iff
    /// `rest` is the merge-only BPE of `piece`, `v` that of its bytes (`reach`) and the pair
    /// `(last(rest), v)` holds (§4.2). The pair row of `last(rest)` over the fragments holds
    /// the last two for every `v` at once, and [`Validity::drop_whole_pieces`] the exclusion
    /// (a token in `reach` spelling `piece + bytes(v)` already fails the pair rule).
    fn glue_row(&self, heads: &Heads, g: &Glue) -> Option<Vec<u64>> {
        let t = self.merge_tables();
        if g.piece.is_empty() || !t.monotone {
            return None;
        }
        let zeros = || Some(vec![0; self.single.len()]);
        if !g.ok {
            return zeros();
        }
        let &u = g.rest.last()?;
        if self.merge_only(t, &g.piece).0 != g.rest {
            return zeros();
        }
        let mut words = self.pair_row(t, heads, u, PairSet::Fragments);
        self.drop_whole_pieces(&g.piece, &mut words);
        Some(words)
    }

    /// Sets the bits of the byte fragments ([`Heads::fragments`]) valid after the tail `key`
    /// spelling `text` (docs/byte_probs.md §15.7). [`Validity::comp_tail`] on `text + f` comes
    /// down to two encodings of one piece, because the first byte of `f` cannot continue the
    /// complete text: the invalid bytes glue onto the last piece of `text` (or of the text after
    /// `text`'s own settled boundary `a`), and the settled boundary of `text + f` is `a` when
    /// `f` is one incomplete character, else at or past `|text|` inside or at the end of `f`,
    /// where only the canonical sequence has a token boundary. So `key ∘ f` is valid iff it is
    /// canonical, or `f` is one incomplete character, `key` holds the settled tokens of
    /// `text[..a]` (`a > 0`) and its tokens after them and `f` are canonical for `text[a..] + f`.
    /// Fragments with a complete character after them are never valid: the pieces of
    /// `text + f` then have a boundary inside `f`.
    fn fragment_bits(
        &self,
        heads: &Heads,
        key: &[u32],
        text: &str,
        words: &mut [u64],
    ) -> Result<()> {
        let tb = text.as_bytes();
        let glue = self.glue(key, tb)?;
        let a = self.settled(tb);
        let mut at_a = None;
        if a > 0 && a < tb.len() {
            let mut off = 0;
            let mut k = 0;
            while off < a && k < key.len() {
                off += self.bpe.token_bytes(key[k]).map_or(0, <[u8]>::len);
                k += 1;
            }
            if off == a && self.encode_settled(tb, a)? == key[..k] {
                // the same glue as `glue` when the pieces after `a` are those of `text[a..]`
                // (§15, (R)): then it decides nothing new
                let g = self.glue(&key[k..], &tb[a..])?;
                let same = glue.ok && g.piece == glue.piece && g.rest == glue.rest;
                at_a = (g.ok && !same).then_some(g);
            }
        }
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        // the same answers as `glue_ok`, for all fragments at once when the pair walk applies
        let shaped = !tb.is_empty() && a < tb.len();
        let glue_row = if shaped {
            self.glue_row(heads, &glue)
        } else {
            None
        };
        let at_a_row = at_a.as_ref().and_then(|g| self.glue_row(heads, g));
        for &(v, incomplete) in &heads.fragments {
            if !bit(&self.single, v) {
                continue;
            }
            let ok = if !shaped {
                // not the shape above (a row's tail is never empty and settles before its end)
                self.valid_after(key, tb, v)?
            } else {
                let on_glue = match &glue_row {
                    Some(row) => bit(row, v),
                    None => self.glue_ok(&glue, v, &mut buf, &mut out),
                };
                on_glue
                    || (incomplete
                        && at_a.as_ref().is_some_and(|g| match &at_a_row {
                            Some(row) => bit(row, v),
                            None => self.glue_ok(g, v, &mut buf, &mut out),
                        }))
            };
            if ok {
                set_bit(words, v);
            }
        }
        Ok(())
    }

    fn merge_tables(&self) -> &MergeTables {
        self.merge_tables.get_or_init(|| self.build_merge_tables())
    }

    /// A row of the pieces rule decided per class of leading characters (docs/byte_probs.md
    /// §15.7); tokens no class decides are checked one by one (letters extending the last piece
    /// by one BPE of that piece, the rest by [`Validity::comp_tail`]).
    fn compute_row_heads(&self, key: &[u32], text: &str) -> Result<Bits> {
        let heads = self.heads.get_or_init(|| self.build_heads());
        let ext = self.extension(key, text)?;
        let mut words = vec![0u64; self.single.len()];
        let mut each: Vec<u32> = Vec::new();
        // the members of the letter-only classes met under open classes after a growing piece
        // (bitset): decided by the piece's extension below, word by word where it can
        let mut open_letters = vec![0u64; self.single.len()];
        let mut sub_rows: FxHashMap<(usize, usize), Bits> = FxHashMap::default();
        let mut scratch = Scratch::default();
        // depth-first over the class tree: decide a class when its leading characters settle
        // the tail, else look one character further
        // the whole tail is one growing piece that letters extend as one piece: `text + rep`
        // for ASCII letters `rep` is one piece reaching its end, which settles nothing, so
        // such a class is open without a scan
        let letters_open = ext
            .as_ref()
            .is_some_and(|x| x.one_piece && x.l.len() == text.len());
        let mut stack: Vec<&Head> = Vec::new();
        if letters_open {
            // the classes of ASCII letters open without a scan: their walk, done once
            // (`LettersOpen`), then the classes below them that it leaves to decide
            let lo = &heads.letters_open;
            each.extend_from_slice(&lo.one);
            for (o, &l) in open_letters.iter_mut().zip(&lo.letters) {
                *o |= l;
            }
            stack.extend(lo.rest.iter().filter_map(|p| heads.root.at(p)));
            stack.extend(heads.root.kids.iter().filter(|k| !ascii_letters(&k.rep)));
        } else {
            stack.extend(heads.root.kids.iter());
        }
        while let Some(h) = stack.pop() {
            let decision = if letters_open && ascii_letters(&h.rep) {
                HeadDecision::Open
            } else {
                self.head_decision(key, text, &h.rep, &mut scratch)?
            };
            match decision {
                HeadDecision::Open => {
                    each.extend_from_slice(&h.one);
                    for kid in &h.kids {
                        // letters after a growing piece are cheaper one by one (`Extension`)
                        if ext.is_some() && kid.others == 0 {
                            kid.words.or_into(&mut open_letters);
                        } else {
                            stack.push(kid);
                        }
                    }
                }
                HeadDecision::Invalid => {}
                HeadDecision::Straddle(limit) => {
                    let len = |v: u32| self.bpe.token_bytes(v).map_or(0, <[u8]>::len);
                    each.extend(h.all.iter().copied().filter(|&v| len(v) <= limit));
                }
                HeadDecision::Rebase(k, b) => {
                    let sub = match sub_rows.get(&(k, b)) {
                        Some(r) => r.clone(),
                        None => {
                            let r = self.row_keyed(&key[k..], &text.as_bytes()[b..])?;
                            sub_rows.insert((k, b), r.clone());
                            r
                        }
                    };
                    h.words.or_masked_into(&mut words, &sub);
                }
            }
        }
        each.retain(|&v| bit(&self.single, v));
        for (o, &s) in open_letters.iter_mut().zip(self.single.iter()) {
            *o &= s;
        }
        self.fragment_bits(heads, key, text, &mut words)?;
        // letters after a one-piece extension: the pair row of the last token, minus the
        // tokens `v` for which `l + bytes(v)` is a token itself under a whole-piece look-up
        // (docs/byte_probs.md §15.7)
        let letter_row = ext.as_ref().and_then(|x| self.letter_extensions(heads, x));
        // the loop below word by word for the tokens it decides without a scan: every plain
        // letter token after a one-piece extension, and (o200k) the lowercase ASCII ones after
        // an `l` of `o200k_ascii_grows`'s shape; the others stay for the one-by-one loop
        let direct = match (&letter_row, &ext) {
            (Some(letters), Some(x)) if x.one_piece => Some((letters, &heads.plain_letters)),
            (Some(letters), Some(x)) if o200k_ascii_lead(&x.l) => {
                Some((letters, &heads.lower_ascii))
            }
            _ => None,
        };
        if let Some((letters, direct)) = direct {
            let per_word = words
                .iter_mut()
                .zip(open_letters.iter_mut())
                .zip(direct)
                .zip(letters);
            for (((d, o), &direct), &row) in per_word {
                *d |= *o & direct & row;
                *o &= !direct;
            }
        }
        each.extend(ids_of(&open_letters));
        if let Some(x) = &ext {
            if let Some(letters) = letter_row {
                // without `one_piece` (o200k) a letter token is decided by the pair row only when
                // `l + bytes(v)` is one growing piece: exactly when `extension_ok` would take
                // the pair rule, which the row holds for every `v` at once
                let mut buf = Vec::new();
                let mut kept = Vec::with_capacity(each.len());
                for &v in &each {
                    if !bit(&heads.plain_letters, v) {
                        kept.push(v);
                        continue;
                    }
                    if !x.one_piece {
                        let vb = self.bpe.token_bytes(v).unwrap_or(&[]);
                        if !o200k_ascii_grows(&x.l, vb) {
                            buf.clear();
                            buf.extend_from_slice(&x.l);
                            buf.extend_from_slice(vb);
                            if !self.one_growing_piece(&buf)? {
                                kept.push(v);
                                continue;
                            }
                        }
                    }
                    if bit(&letters, v) {
                        set_bit(&mut words, v);
                    }
                }
                each = kept;
            }
            // punctuation tokens after a punctuation piece: one growing piece for all of them
            // (`punct_grows`), so the pair row over `Heads::punct` gives `extension_ok`'s answer
            if let Some(punct) = self.punct_extensions(heads, x) {
                each.retain(|&v| {
                    if !bit(&heads.punct, v) {
                        return true;
                    }
                    if bit(&punct, v) {
                        set_bit(&mut words, v);
                    }
                    false
                });
            }
        }
        let tb = text.as_bytes();
        let ws_tail = self
            .whitespace_rule_applies(text)
            .then(|| self.ws_tail(key, tb));
        let found: Vec<u32> = each
            .par_iter()
            .map_init(Vec::new, |buf, &v| -> Result<Option<u32>> {
                let mut quick = None;
                if let Some(w) = &ws_tail {
                    quick = self.whitespace_ok(key, tb, w, v, buf)?;
                }
                if let (None, Some(x)) = (quick, &ext) {
                    quick = self.extension_ok(x, v, buf)?;
                }
                let ok = match quick {
                    Some(ok) => ok,
                    None => self.valid_after(key, tb, v)?,
                };
                Ok(ok.then_some(v))
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        for v in found {
            set_bit(&mut words, v);
        }
        Ok(Arc::new(words))
    }

    /// The row of a tail `key` whose text ends inside a character: valid UTF-8 `c` (not empty),
    /// then `f`, a proper prefix of a UTF-8 sequence (docs/byte_probs.md §15.9). A token `v`
    /// whose first character is complete cannot continue `f`, so in `text + bytes(v)` the bytes
    /// of `f` are an invalid run for good, glued to the last piece of `c`: the pieces are those
    /// of `text` (`f` glued, as `encode_tail(text)` has them) and then those of `bytes(v)`
    /// alone, and the settled boundary is `|text| + settled(bytes(v))`. The tail check of
    /// `key ∘ v` then comes down to `key == encode_tail(text)` and the check of `[v]` alone,
    /// which is `single`. So those tokens get `single` or nothing, by one encoding of the tail;
    /// the tokens whose first character is not complete ([`Heads::loose`]) are checked one by
    /// one.
    fn compute_row_mid_char(&self, key: &[u32], text: &[u8]) -> Result<Bits> {
        debug_assert!(std::str::from_utf8(text)
            .err()
            .is_some_and(|e| e.error_len().is_none() && e.valid_up_to() > 0));
        let heads = self.heads.get_or_init(|| self.build_heads());
        let mut words = if self.encode_tail(text)? == key {
            self.single.to_vec()
        } else {
            vec![0u64; self.single.len()]
        };
        for &v in &heads.loose {
            if let Some(w) = words.get_mut(v as usize / 64) {
                *w &= !(1 << (v % 64));
            }
        }
        let found: Vec<u32> = heads
            .loose
            .par_iter()
            .map(|&v| -> Result<Option<u32>> {
                let ok = bit(&self.single, v) && self.valid_after(key, text, v)?;
                Ok(ok.then_some(v))
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        for v in found {
            set_bit(&mut words, v);
        }
        Ok(Arc::new(words))
    }

    fn compute_row(&self, key: &[u32], text: &[u8]) -> Result<Bits> {
        let words: Vec<u64> = self
            .single
            .par_iter()
            .enumerate()
            .map(|(w, &sw)| -> Result<u64> {
                let mut word = 0u64;
                let mut rest = sw;
                while rest != 0 {
                    let k = rest.trailing_zeros();
                    rest &= rest - 1;
                    let v = (w * 64) as u32 + k;
                    if self.valid_after(key, text, v)? {
                        word |= 1 << k;
                    }
                }
                Ok(word)
            })
            .collect::<Result<_>>()?;
        Ok(Arc::new(words))
    }

    /// The rule applied token by token along a sequence (what the sampler uses).
    pub fn is_valid_local(&self, ids: &[u32]) -> Result<bool> {
        for (i, &t) in ids.iter().enumerate() {
            if self.bpe.is_special(t) {
                continue;
            }
            if !self.is_regular(t) || !self.ok(&ids[..i], t)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Full check: the bytes between special tokens re-encode to the same ids; the last segment,
    /// which may still continue, only needs to be valid ([`Rule::Pieces`]).
    pub fn is_valid_full(&self, ids: &[u32]) -> Result<bool> {
        let segs: Vec<&[u32]> = ids.split(|&t| self.bpe.is_special(t)).collect();
        for (i, seg) in segs.iter().enumerate() {
            if seg.iter().any(|&t| !self.is_regular(t)) {
                return Ok(false);
            }
            let bytes = self.bpe.decode_bytes(seg)?;
            let ok = if i + 1 == segs.len() && matches!(self.rule, Rule::Pieces) {
                self.comp_tail(seg, &bytes)?
            } else {
                self.bpe.encode_bytes(&bytes)? == *seg
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether every prefix `ids[..k]`, `k > from`, is canonical (`O(len · bytes)`; the
    /// fast-mode start-up of pre-tokenized tokenizers).
    pub fn canonical_prefixes(&self, ids: &[u32], from: usize) -> Result<bool> {
        for k in from + 1..=ids.len() {
            crate::cancel::check()?;
            if !self.is_canonical(&ids[..k])? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether `stem ∘ t` is canonical, given a canonical `stem`: the tokens before the stem's
    /// settled boundary stay, so only the open tail plus `t` is re-encoded.
    pub fn canonical_after(&self, stem: &[u32], t: u32) -> Result<bool> {
        let Some((key, mut text)) = self.tail(stem)? else {
            return Ok(false);
        };
        text.extend_from_slice(self.bpe.token_bytes(t).unwrap_or(&[]));
        let got = self.bpe.encode_bytes(&text)?;
        Ok(got.len() == key.len() + 1 && got[..key.len()] == *key && got[key.len()] == t)
    }

    /// Whether `ids` (after the last special token) is canonical.
    pub fn is_canonical(&self, ids: &[u32]) -> Result<bool> {
        let from = ids
            .iter()
            .rposition(|&t| !self.is_regular(t))
            .map_or(0, |i| i + 1);
        let seg = &ids[from..];
        Ok(self.bpe.encode_bytes(&self.bpe.decode_bytes(seg)?)? == seg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pretokenize::Pretokenizer;

    /// cl100k pieces with merges `"  "`, `"_p"`, `"=_"`, `"\t\t"`.
    fn regex_bpe(pattern: &str) -> Arc<Bpe> {
        toy_bpe(Pretokenizer::new(pattern).unwrap())
    }

    fn toy_bpe(pre: Pretokenizer) -> Arc<Bpe> {
        bpe_with(&[b"_p", b"=_", b"\t\t", b"  "], pre)
    }

    /// The 256 bytes, then `tokens` in rank order.
    fn bpe_with(tokens: &[&[u8]], pre: Pretokenizer) -> Arc<Bpe> {
        let mut ranks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        for (i, t) in tokens.iter().enumerate() {
            ranks.push((t.to_vec(), 256 + i as u32));
        }
        Arc::new(Bpe::from_ranks(ranks, vec![], pre).unwrap())
    }

    #[test]
    fn whitespace_split_by_look_ahead_is_valid_but_not_canonical() {
        let v = Validity::new(regex_bpe("cl100k"), Rule::Pieces, 8).unwrap();
        let (sp, tab, a) = (b' ' as u32, b'\t' as u32, b'a' as u32);
        // "  " alone is one token; [' ', ' '] only as the start of "  a" = [' ', ' ', 'a']
        assert!(v.ok(&[sp], sp).unwrap());
        assert!(!v.eos_ok(&[sp, sp]).unwrap());
        assert!(v.eos_ok(&[259]).unwrap());
        assert!(v.is_valid_full(&[sp, sp, a]).unwrap());
        assert!(v.ok(&[tab], tab).unwrap());
        assert!(!v.eos_ok(&[tab, tab]).unwrap());
        // "=_p" pre-tokenizes as "=_", "p"; after a bare "_" the pair "_p" is one token
        assert!(v.ok(&[257], b'p' as u32).unwrap());
        assert!(!v.ok(&[b'_' as u32], b'p' as u32).unwrap());
    }

    /// The merge-tree walk of docs/byte_probs.md §15.7 agrees with the merge loop on every pair
    /// of regular tokens (rank vocabulary with chained merges).
    #[test]
    fn pair_walk_equals_merge_loop_on_every_pair() {
        let mut ranks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        for (i, t) in [
            "ab", "bc", "abc", "ca", "aa", "aaa", "aaaa", "cab", "bca", "abca",
        ]
        .iter()
        .enumerate()
        {
            ranks.push((t.as_bytes().to_vec(), 256 + i as u32));
        }
        let bpe = Arc::new(
            Bpe::from_ranks(ranks, vec![], Pretokenizer::new(r"[\s\S]+").unwrap()).unwrap(),
        );
        let v = Validity::new(bpe, Rule::Pair, 8).unwrap();
        let t = v.merge_tables();
        assert!(t.monotone);
        let toks: Vec<u32> = [b'a', b'b', b'c']
            .iter()
            .map(|&b| b as u32)
            .chain(256..266)
            .filter(|&u| bit(&t.reach, u))
            .collect();
        let mut checked = 0;
        for &a in &toks {
            for &b in &toks {
                let mut bytes = v.bpe.token_bytes(a).unwrap().to_vec();
                bytes.extend_from_slice(v.bpe.token_bytes(b).unwrap());
                let want = v.merge_only(t, &bytes).0 == [a, b];
                assert_eq!(v.pair_valid(t, a, b), want, "pair ({a}, {b})");
                checked += usize::from(want);
            }
        }
        assert!(checked > 10);
        // the pair rows (from the breaking merges) give the same answers, in
        // either order of first use
        let heads = v.build_heads();
        for order in [false, true] {
            let v = Validity::new(v.bpe.clone(), Rule::Pair, 8).unwrap();
            let t = v.merge_tables();
            let mut firsts = toks.clone();
            if order {
                firsts.reverse();
            }
            for &a in &firsts {
                let row = v.pair_row(t, &heads, a, PairSet::Letters);
                for &b in &toks {
                    let want = bit(&heads.plain_letters, b) && v.pair_valid(t, a, b);
                    assert_eq!(bit(&row, b), want, "pair row ({a}, {b})");
                }
            }
        }
    }

    #[test]
    fn pair_rows_equal_the_walk_on_a_trained_vocabulary() {
        // a BPE of 400 merges trained on fixed pseudo-random texts over four letters and `(`
        // (merge-list priorities; the toy vocabulary above has ranks)
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let docs: Vec<String> = (0..300)
            .map(|_| {
                let len = 4 + next(40);
                (0..len)
                    .map(|_| b"aabbcd("[next(7) as usize] as char)
                    .collect()
            })
            .collect();
        let pretok = Pretokenizer::new(r"[\s\S]+").unwrap();
        let mut counts = crate::bpe::count::PieceCounts::new();
        counts.add_docs(&pretok, &docs).unwrap();
        let cfg = crate::bpe::train::TrainConfig {
            vocab_size: 256 + 400,
            min_frequency: 0,
            special_tokens: vec![],
            tie_order: crate::bpe::train::TieOrder::Bytes,
        };
        let bpe = Arc::new(
            crate::bpe::train::train(counts, pretok, &cfg, &crate::progress::Silent)
                .unwrap()
                .bpe,
        );
        let v = Validity::new(bpe, Rule::Pair, 8).unwrap();
        let t = v.merge_tables();
        assert!(t.monotone);
        let reach: Vec<u32> = (0..v.bpe.vocab_size() as u32)
            .filter(|&u| bit(&t.reach, u))
            .collect();
        assert!(reach.len() > 200, "{} tokens reached", reach.len());
        let heads = v.build_heads();
        let partners = |a: u32| t.partners_of(a);
        let all = t.reach.clone();
        let (mut valid, mut invalid) = (0, 0);
        for &a in &reach {
            let row = pair_row::pair_row(
                &t.split,
                partners,
                &t.left_kids,
                a,
                &all,
                &t.reach,
                pair_row::How::Auto,
            );
            // both ways of removing the bad roots' descendants give the same row
            for how in [pair_row::How::Walk, pair_row::How::Descend] {
                let other =
                    pair_row::pair_row(&t.split, partners, &t.left_kids, a, &all, &t.reach, how);
                assert_eq!(other, row, "pair row of {a} by {how:?}");
            }
            let letters = v.pair_row(t, &heads, a, PairSet::Letters);
            // the punctuation and fragment rows come from the same cached row of `a`
            let punct = v.pair_row(t, &heads, a, PairSet::Punct);
            let fragments = v.pair_row(t, &heads, a, PairSet::Fragments);
            for &b in &reach {
                let mut bytes = v.bpe.token_bytes(a).unwrap().to_vec();
                bytes.extend_from_slice(v.bpe.token_bytes(b).unwrap());
                let want = v.merge_only(t, &bytes).0 == [a, b];
                assert_eq!(v.pair_valid(t, a, b), want, "pair ({a}, {b})");
                assert_eq!(bit(&row, b), want, "pair row ({a}, {b})");
                let letter = bit(&heads.plain_letters, b);
                assert_eq!(bit(&letters, b), letter && want, "letter row ({a}, {b})");
                let p = bit(&heads.punct, b);
                assert_eq!(bit(&punct, b), p && want, "punctuation row ({a}, {b})");
                let f = bit(&heads.fragment_bits, b);
                assert_eq!(bit(&fragments, b), f && want, "fragment row ({a}, {b})");
                if want {
                    valid += 1;
                } else {
                    invalid += 1;
                }
            }
        }
        assert!(
            valid > 1000 && invalid > 1000,
            "{valid} valid, {invalid} invalid"
        );
    }

    #[test]
    fn settled_boundary_stops_before_look_ahead() {
        let v = Validity::new(regex_bpe("cl100k"), Rule::Pieces, 8).unwrap();
        assert_eq!(v.settled(b"x  "), 1);
        assert_eq!(v.settled(b"ab cd"), 2);
        // " '" is a punctuation piece: contractions start only at an apostrophe
        assert_eq!(v.settled(b"x 'l"), 3);
        // digit runs stay open to the end (groups of three re-align only from the run start);
        // the space before them is a piece of its own
        assert_eq!(v.settled(b"a 1234567"), 2);
        let g = Validity::new(regex_bpe("gpt2"), Rule::Pieces, 8).unwrap();
        assert_eq!(g.settled(b"don'l"), 0);
        // a piece that ends before the text does is settled whatever its first character can
        // lead (docs/byte_probs.md §15.1): only a space leads a gpt2 letter piece, \r and \n
        // never lead a cl100k one, and a space before digits is a piece of its own in cl100k
        assert_eq!(g.settled(b"\ta"), 1);
        assert_eq!(v.settled(b"\ta"), 0);
        assert_eq!(v.settled(b"\ni"), 1);
        assert_eq!(v.settled(b"\n\n\t\ti"), 3);
        assert_eq!(v.settled(b"a!"), 1);
        assert_eq!(v.settled(b"x 12"), 2);
        assert_eq!(g.settled(b"x 12"), 1);
    }

    /// Validity of every token split of every text of up to four characters over `chars`
    /// equals a brute-force search over every continuation of up to three characters over
    /// `conts`, for the three presets and a digit-split sequence; returns the valid count.
    fn tails_equal_brute_force(merges: &[&[u8]], chars: &[u8], conts_of: &[&[u8]]) -> usize {
        let pres = [
            Pretokenizer::new("gpt2").unwrap(),
            Pretokenizer::new("cl100k").unwrap(),
            Pretokenizer::new("o200k").unwrap(),
            Pretokenizer::sequence(&[r"\p{N}", Preset::Cl100k.pattern()]).unwrap(),
        ];
        let mut conts: Vec<Vec<u8>> = vec![Vec::new()];
        let mut last = conts.clone();
        for _ in 0..3 {
            let mut next = Vec::new();
            for c in &last {
                for a in conts_of {
                    next.push([c.as_slice(), a].concat());
                }
            }
            conts.extend(next.iter().cloned());
            last = next;
        }
        let mut checked = 0;
        for pre in pres {
            let bpe = bpe_with(merges, pre);
            let v = Validity::new(bpe.clone(), Rule::Pieces, 8).unwrap();
            let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
            for _ in 0..4 {
                texts = texts
                    .iter()
                    .flat_map(|t| chars.iter().map(move |&c| [t.as_slice(), &[c]].concat()))
                    .collect();
                for t in &texts {
                    for ids in token_splits(&bpe, t) {
                        let brute = conts.iter().any(|s| {
                            let got = bpe.encode_bytes(&[t.as_slice(), s].concat()).unwrap();
                            got.len() >= ids.len() && got[..ids.len()] == ids[..]
                        });
                        let got = v.comp_tail(&ids, t).unwrap();
                        let name = v.bpe.pretokenizer().name();
                        assert_eq!(got, brute, "{name}: {t:?} as {ids:?}");
                        checked += usize::from(got);
                    }
                }
            }
        }
        checked
    }

    /// All-whitespace tails (docs/byte_probs.md §15.3), with a vocabulary of whitespace merges
    /// (space, tab, newline, vertical tab).
    #[test]
    fn whitespace_tails_equal_a_brute_force_search() {
        let merges: [&[u8]; 10] = [
            b"\n\t", b"\t\t", b"  ", b" \t", b"\n\n", b"   ", b"\t ", b" a", b"\t\t\t", b"\n  ",
        ];
        let conts: [&[u8]; 7] = [b" ", b"\t", b"\n", b"a", b"0", b"!", b"'"];
        assert!(tails_equal_brute_force(&merges, b" \t\n\x0b", &conts) > 200);
    }

    /// Digit-run tails (docs/byte_probs.md §15.2): cl100k's and o200k's groups of three start at
    /// the run's start, so a digit tail is valid iff canonical.
    #[test]
    fn digit_tails_equal_a_brute_force_search() {
        let merges: [&[u8]; 6] = [b"11", b"12", b"111", b"21", b" 1", b"211"];
        let conts: [&[u8]; 5] = [b"1", b"2", b"a", b" ", b"\n"];
        assert!(tails_equal_brute_force(&merges, b"12 a", &conts) > 200);
    }

    /// Rows decided per class of continuation (docs/byte_probs.md §15.7, including the classes
    /// whose settled piece straddles the tail's end) equal rows checked token by token.
    #[test]
    fn class_rows_equal_token_by_token_rows() {
        let toks: [&[u8]; 16] = [
            b"_U", b"_UI", b"(_", b".O", b".On", b"On", b"UI", b"((", b" (", b"x(", b"ab", b" a",
            b"  ", b"12", b"'s", b"\n\t",
        ];
        for preset in ["gpt2", "cl100k", "o200k"] {
            let bpe = bpe_with(&toks, Pretokenizer::new(preset).unwrap());
            let v = Validity::new(bpe.clone(), Rule::Pieces, 64).unwrap();
            for tail in ["(", "x(", "a.", " a", "ab", "12", "  ", "((", "'", "\n"] {
                let ids = bpe.encode_bytes(tail.as_bytes()).unwrap();
                let (key, text) = v.tail(&ids).unwrap().unwrap();
                let by_class = v.row(&ids).unwrap();
                let one_by_one = v.compute_row(key, &text).unwrap();
                assert_eq!(*by_class, *one_by_one, "{preset}: {tail:?}");
            }
        }
    }

    /// Whitespace tokens after all-whitespace tails, decided by the encodings and probes alone
    /// (`whitespace_ok`), equal the full check token by token: every token split of every
    /// whitespace text of up to four characters (space, tab, newline, vertical tab, no-break
    /// space), three presets, a vocabulary of whitespace merges and a few tokens after them.
    #[test]
    fn whitespace_token_rows_equal_token_by_token_rows() {
        let toks: [&[u8]; 25] = [
            b"\r\n",
            b" \r",
            b"\r\n\t",
            b" \xe4",
            b" \xe4\xb8",
            b" \x80",
            b"\t\x80\xe4",
            b"  \xc2",
            b"  ",
            b"\t\t",
            b"\n\t",
            b"\n\n",
            b" \t",
            b"\t ",
            b"   ",
            b"\n  ",
            b"\t\t\t",
            b"\xc2\xa0",
            b"\xc2\xa0\xc2\xa0",
            b" \xc2\xa0",
            b"\x0b ",
            b" a",
            b"\ta",
            b" 0",
            b"\n ",
        ];
        let alphabet = [" ", "\t", "\n", "\r", "\x0b", "\u{a0}"];
        let texts = strings_upto(&alphabet, 4);
        let mut decided = 0;
        for preset in ["gpt2", "cl100k", "o200k"] {
            let bpe = bpe_with(&toks, Pretokenizer::new(preset).unwrap());
            let v = Validity::new(bpe.clone(), Rule::Pieces, 1 << 16).unwrap();
            for text in &texts {
                let t = text.as_bytes();
                for (ids, key, tail) in open_tails(&v, t) {
                    let (key, tail_str) = (key.as_slice(), std::str::from_utf8(&tail).unwrap());
                    assert!(v.whitespace_rule_applies(tail_str));
                    let by_class = v.compute_row_heads(key, tail_str).unwrap();
                    let one_by_one = v.compute_row(key, &tail).unwrap();
                    assert_eq!(*by_class, *one_by_one, "{preset}: {text:?} as {ids:?}");
                    let mut buf = Vec::new();
                    decided += v
                        .regular
                        .iter()
                        .filter(|&&u| {
                            let w = v.ws_tail(key, &tail);
                            v.whitespace_ok(key, &tail, &w, u, &mut buf)
                                .unwrap()
                                .is_some()
                        })
                        .count();
                }
            }
        }
        assert!(decided > 1000, "{decided}");
    }

    /// `whitespace_ok` (by the pieces each candidate gives `text + bytes(v)`, docs/byte_probs.md
    /// §15.9, eighth round) equals the full tail check (`valid_after`) for every token it
    /// decides, after every split of every whitespace text of up to four characters, three
    /// presets, with merges that build whitespace runs across newlines both ways.
    #[test]
    fn whitespace_ok_equals_the_full_check() {
        let toks: [&[u8]; 16] = [
            b"  ",
            b"\n ",
            b" \n",
            b"\n\n",
            b"\r\n",
            b"\t\t",
            b"\n  ",
            b"   ",
            b"\n\t",
            b"\r\n ",
            b" \r\n",
            b"\n   ",
            b"    ",
            b" \xe4",
            b"\n\xe4",
            b"\xc2\xa0 ",
        ];
        let alphabet = [" ", "\t", "\n", "\r", "\u{a0}"];
        let texts = strings_upto(&alphabet, 4);
        let (mut decided, mut valid, mut by_pairs) = (0, 0, 0);
        for preset in ["gpt2", "cl100k", "o200k"] {
            let bpe = bpe_with(&toks, Pretokenizer::new(preset).unwrap());
            let v = Validity::new(bpe.clone(), Rule::Pieces, 1 << 16).unwrap();
            let mut buf = Vec::new();
            for text in &texts {
                for (ids, key, tail) in open_tails(&v, text.as_bytes()) {
                    let w = v.ws_tail(&key, &tail);
                    by_pairs += usize::from(w.pair_whole.is_some() || w.pair_rest.is_some());
                    // the same tail with every piece encoded (no pair rule)
                    let encoded = WsTail {
                        pair_whole: None,
                        pair_rest: None,
                        ..v.ws_tail(&key, &tail)
                    };
                    for &u in &v.regular {
                        let Some(ok) = v.whitespace_ok(&key, &tail, &w, u, &mut buf).unwrap()
                        else {
                            continue;
                        };
                        let full = v.valid_after(&key, &tail, u).unwrap();
                        assert_eq!(ok, full, "{preset}: {text:?} as {ids:?} then {u}");
                        let enc = v.whitespace_ok(&key, &tail, &encoded, u, &mut buf).unwrap();
                        assert_eq!(enc, Some(ok), "{preset}: {text:?} as {ids:?} then {u}");
                        decided += 1;
                        valid += usize::from(ok);
                    }
                }
            }
        }
        assert!(decided > 10_000 && valid > 1000, "{decided} {valid}");
        assert!(by_pairs > 100, "{by_pairs} tails by the pair rule");
    }

    /// Rows after tails whose last piece is non-ASCII letters (after an optional first
    /// character), decided with the pair rows of §15.7, equal the full check token by token on
    /// every token split of the texts, three presets.
    #[test]
    fn non_ascii_letter_rows_equal_token_by_token_rows() {
        let toks: [&[u8]; 18] = [
            "\u{3001}".as_bytes(),
            "\u{3053}".as_bytes(),
            "\u{3053}\u{306e}".as_bytes(),
            "\u{5ba3}\u{8a00}".as_bytes(),
            "\u{3001}\u{3053}".as_bytes(),
            "\u{e9}".as_bytes(),
            " \u{e9}".as_bytes(),
            "a\u{e9}".as_bytes(),
            "\u{e9}t".as_bytes(),
            "\u{e9}t\u{e9}".as_bytes(),
            "(\u{e9}".as_bytes(),
            "\u{301}".as_bytes(),
            "\u{3001}\u{3053}\u{306e}".as_bytes(),
            b"ab",
            b" a",
            b"12",
            "\u{306e}\u{5ba3}".as_bytes(),
            "\u{e9}\u{301}".as_bytes(),
        ];
        let texts = [
            "\u{3001}\u{3053}\u{306e}",
            "\u{3001}\u{3053}\u{306e}\u{5ba3}",
            " \u{e9}t",
            "\u{e9}t\u{e9}",
            "(\u{e9}",
            "a\u{e9}",
            "\u{e9}",
            "\u{ab}\u{e9}",
        ];
        let mut rows = 0;
        for preset in ["gpt2", "cl100k", "o200k"] {
            let bpe = bpe_with(&toks, Pretokenizer::new(preset).unwrap());
            let v = Validity::new(bpe.clone(), Rule::Pieces, 1024).unwrap();
            for text in texts {
                let t = text.as_bytes();
                for (ids, key, tail) in open_tails(&v, t) {
                    let (key, tail_str) = (key.as_slice(), std::str::from_utf8(&tail).unwrap());
                    let by_class = v.compute_row_heads(key, tail_str).unwrap();
                    let one_by_one = v.compute_row(key, &tail).unwrap();
                    assert_eq!(*by_class, *one_by_one, "{preset}: {text:?} as {ids:?}");
                    rows += 1;
                }
            }
        }
        assert!(rows > 50, "{rows}");
    }

    /// o200k rows after tails whose last piece is ASCII letters (after an optional first
    /// character), where letter tokens take the pair row when `l + bytes(v)` is one growing
    /// piece (the case classes decide that: `"foo" + "Bar"` is two pieces, `"FOO" + "bar"` one),
    /// equal the full check token by token on every token split of the texts; and the pair
    /// row's bit equals the full check for every letter token that passes the one-piece test
    /// (whether or not the class tree leaves it to the extension).
    #[test]
    fn o200k_letter_rows_equal_token_by_token_rows() {
        let toks: [&[u8]; 30] = [
            // merges across a case change first: a pair row rejects `"foo" + "Bar"`, which is
            // valid as two pieces
            b"oB",
            b"rB",
            b"fo",
            b"foo",
            b"ba",
            b"bar",
            b"BA",
            b"BAR",
            b"Ba",
            b"Bar",
            b"FO",
            b"FOO",
            b"Fo",
            b"Foo",
            b"ob",
            b"ooB",
            b" f",
            b" foo",
            b"'b",
            b"'s",
            b"(b",
            b"(bar",
            b"ab",
            b"rb",
            "\u{e9}".as_bytes(),
            "\u{c9}".as_bytes(),
            "\u{3053}".as_bytes(),
            "\u{2b0}".as_bytes(),
            "o\u{e9}".as_bytes(),
            "\u{301}".as_bytes(),
        ];
        let texts = [
            "foo", "Foo", "FOO", "fooBar", "FOObar", "FooBar", " foo", " Foo", "'bar", "(bar",
            "BAR", "Ba", "foo's", "ob", "rB",
        ];
        let bpe = bpe_with(&toks, Pretokenizer::new("o200k").unwrap());
        let v = Validity::new(bpe.clone(), Rule::Pieces, 1024).unwrap();
        let heads = v.heads.get_or_init(|| v.build_heads());
        // rows checked, letter tokens valid by a pair row, letter tokens the pair row would get
        // wrong (not one piece)
        let (mut rows, mut by_pair, mut split) = (0, 0, 0);
        for text in texts {
            let t = text.as_bytes();
            for (ids, key, tail) in open_tails(&v, t) {
                let (key, tail_str) = (key.as_slice(), std::str::from_utf8(&tail).unwrap());
                if let Some(x) = v.extension(key, tail_str).unwrap() {
                    if let Some(letters) = v.letter_extensions(heads, &x) {
                        for &u in &v.regular {
                            let ub = bpe.token_bytes(u).unwrap();
                            if !bit(&heads.plain_letters, u) {
                                continue;
                            }
                            let l_u = [x.l.as_slice(), ub].concat();
                            if !v.one_growing_piece(&l_u).unwrap() {
                                // two pieces: the pair row does not apply (and is wrong
                                // for some, e.g. `"FOO" + "rB"`, valid by the pair rule)
                                let full = v.valid_after(key, &tail, u).unwrap();
                                split += usize::from(bit(&letters, u) != full);
                                continue;
                            }
                            // one growing piece: the pair row's bit is the full check's
                            let full = v.valid_after(key, &tail, u).unwrap();
                            assert_eq!(bit(&letters, u), full, "{text:?} {ids:?} + {u}");
                            by_pair += usize::from(full);
                        }
                    }
                }
                let by_class = v.compute_row_heads(key, tail_str).unwrap();
                let one_by_one = v.compute_row(key, &tail).unwrap();
                assert_eq!(*by_class, *one_by_one, "{text:?} as {ids:?}");
                rows += 1;
            }
        }
        assert!(
            rows > 50 && by_pair > 20 && split > 0,
            "{rows} {by_pair} {split}"
        );
    }

    /// `punct_grows` and `punct_token` (no scan) imply the scan of `one_growing_piece` on every
    /// short text over an alphabet of punctuation (ASCII and not), an apostrophe, a space, a
    /// tab, newlines, a letter, a digit and a combining mark, three presets.
    #[test]
    fn punct_grows_implies_the_scan() {
        let ls = strings_upto(
            &[
                " ", "(", "'", "/", "\t", "a", "0", "\n", "\u{301}", "\u{3002}", "\u{2019}",
            ],
            3,
        );
        let vs = strings_upto(
            &["(", "'", "/", "\n", "\r", "\u{3002}", " ", "a", "\u{301}"],
            3,
        );
        for preset in [Preset::Gpt2, Preset::Cl100k, Preset::O200k] {
            let bpe = bpe_with(&[], Pretokenizer::new(preset.name()).unwrap());
            let v = Validity::new(bpe, Rule::Pieces, 16).unwrap();
            let mut fast = 0;
            for l in &ls {
                if !punct_grows(preset, l.as_bytes()) {
                    continue;
                }
                for w in &vs {
                    if punct_token(preset, w) {
                        fast += 1;
                        let lw = [l.as_bytes(), w.as_bytes()].concat();
                        assert!(
                            v.one_growing_piece(&lw).unwrap(),
                            "{preset:?}: {l:?} + {w:?}"
                        );
                    }
                }
            }
            assert!(fast > 300, "{preset:?}: {fast}");
        }
    }

    /// Rows after punctuation pieces, where punctuation tokens take the pair row over
    /// `Heads::punct` (`punct_extensions`), equal the full check token by token on every token
    /// split of the texts, three presets; and the pair row's bit equals the full check for every
    /// punctuation token, each of which makes one growing piece with the tail's piece.
    #[test]
    fn punct_rows_equal_token_by_token_rows() {
        let toks: [&[u8]; 26] = [
            b"((",
            b"()",
            b"):",
            b" (",
            b" {",
            b"{}",
            b"}\n",
            b"(\n",
            b"::",
            b"\"(",
            b"\")",
            b"=(",
            b"==",
            b" ==",
            b"('",
            b"'(",
            b"(((",
            b"(()",
            b"::\n",
            b"\n\n",
            b"(a",
            b"a(",
            b"ab",
            "\u{3002}".as_bytes(),
            "(\u{3002}".as_bytes(),
            "\u{ff08}".as_bytes(),
        ];
        let texts = [
            "(",
            "((",
            ":",
            " (",
            " {",
            "\"",
            "=",
            " ==",
            "'",
            "\u{3002}",
            "()",
            "}",
            " ",
            "a(",
            "((\u{3002}",
            " '",
        ];
        let (mut rows, mut by_pair) = (0, 0);
        for preset in [Preset::Gpt2, Preset::Cl100k, Preset::O200k] {
            let bpe = bpe_with(&toks, Pretokenizer::new(preset.name()).unwrap());
            let v = Validity::new(bpe.clone(), Rule::Pieces, 1024).unwrap();
            let heads = v.heads.get_or_init(|| v.build_heads());
            for text in texts {
                let t = text.as_bytes();
                for (ids, key, tail) in open_tails(&v, t) {
                    let (key, tail_str) = (key.as_slice(), std::str::from_utf8(&tail).unwrap());
                    if let Some(x) = v.extension(key, tail_str).unwrap() {
                        if let Some(punct) = v.punct_extensions(heads, &x) {
                            for &u in &v.regular {
                                if !bit(&heads.punct, u) {
                                    continue;
                                }
                                let ub = bpe.token_bytes(u).unwrap();
                                let l_u = [x.l.as_slice(), ub].concat();
                                assert!(v.one_growing_piece(&l_u).unwrap(), "{l_u:?}");
                                let full = v.valid_after(key, &tail, u).unwrap();
                                assert_eq!(
                                    bit(&punct, u),
                                    full,
                                    "{preset:?}: {text:?} {ids:?} + {ub:?}"
                                );
                                by_pair += usize::from(full);
                            }
                        }
                    }
                    let by_class = v.compute_row_heads(key, tail_str).unwrap();
                    let one_by_one = v.compute_row(key, &tail).unwrap();
                    assert_eq!(*by_class, *one_by_one, "{preset:?}: {text:?} as {ids:?}");
                    rows += 1;
                }
            }
        }
        assert!(rows > 60 && by_pair > 100, "{rows} {by_pair}");
    }

    /// `o200k_ascii_grows` (no scan) implies the scan of `one_growing_piece` on every short
    /// text over an alphabet with each case class, punctuation, space, digits and newlines.
    #[test]
    fn o200k_ascii_grows_implies_the_scan() {
        let bpe = bpe_with(&[], Pretokenizer::new("o200k").unwrap());
        let v = Validity::new(bpe, Rule::Pieces, 16).unwrap();
        let ls = strings_upto(
            &[" ", "(", "'", "\t", "A", "B", "a", "b", "0", "\n", "\u{e9}"],
            4,
        );
        let vs = strings_upto(&["a", "b", "A", "'", "\u{e9}"], 2);
        let mut fast = 0;
        for l in &ls {
            for w in &vs {
                if o200k_ascii_grows(l.as_bytes(), w.as_bytes()) {
                    fast += 1;
                    let lw = [l.as_bytes(), w.as_bytes()].concat();
                    assert!(v.one_growing_piece(&lw).unwrap(), "{l:?} + {w:?}");
                }
            }
        }
        assert!(fast > 1000, "{fast}");
    }

    /// Tokens for the rows around multi-byte characters: byte fragments of `中`, `文` and `é`
    /// (leading, inner, spanning two characters, after a space or a letter), whole characters,
    /// and a few ASCII tokens.
    const FRAGMENT_TOKENS: [&[u8]; 22] = [
        b"\xe4\xb8",
        b"\xb8\xad",
        b"\xad\xe4",
        b"\xadx",
        b"\xe4\xb8\xad",
        b" \xe4\xb8\xad",
        b" \xe4\xb8",
        b" \xe4",
        b"\xe4\xb8\xad\xe6",
        b"\xe6\x96\x87",
        b"\x96\x87",
        b"\xe4\xb8\xad\xe6\x96\x87",
        b"\xc3\xa9",
        b" \xc3",
        b"a\xc3",
        b"ab",
        b" a",
        b"  ",
        b"\xa9\xe4\xb8",
        b"x\xe4",
        b"12",
        b"\xad ",
    ];

    /// Rows of tails that end inside a character (`compute_row_mid_char`) equal the full check
    /// token by token: every token split of every cut inside a character of texts with CJK and
    /// accented characters, three presets and a digit-split sequence.
    #[test]
    fn mid_character_rows_equal_token_by_token_rows() {
        let toks = FRAGMENT_TOKENS;
        let texts = [
            "a\u{4e2d}",
            " \u{4e2d}",
            "ab \u{4e2d}",
            "\u{4e2d}\u{6587}",
            "x \u{e9}",
            "a\u{e9}",
            "1\u{4e2d}",
        ];
        let mut valid_rows = 0;
        let digits =
            Pretokenizer::sequence(&[r"\p{N}", crate::pretokenize::LLAMA_CPP_GPT2]).unwrap();
        let mut rows = 0;
        for pre in [
            Pretokenizer::new("gpt2").unwrap(),
            Pretokenizer::new("cl100k").unwrap(),
            Pretokenizer::new("o200k").unwrap(),
            digits,
        ] {
            let bpe = bpe_with(&toks, pre);
            let v = Validity::new(bpe.clone(), Rule::Pieces, 1024).unwrap();
            for text in texts {
                let full = text.as_bytes();
                for cut in 1..full.len() {
                    if text.is_char_boundary(cut) {
                        continue;
                    }
                    let t = &full[..cut];
                    for ids in token_splits(&bpe, t) {
                        let Some((key, tail)) = v.tail(&ids).unwrap() else {
                            continue;
                        };
                        let Err(e) = std::str::from_utf8(&tail) else {
                            continue;
                        };
                        if key.is_empty() || e.valid_up_to() == 0 {
                            continue;
                        }
                        let fast = v.compute_row_mid_char(key, &tail).unwrap();
                        let one_by_one = v.compute_row(key, &tail).unwrap();
                        assert_eq!(*fast, *one_by_one, "{text:?} cut {cut} as {ids:?}");
                        rows += 1;
                        valid_rows += usize::from(fast.iter().any(|&w| w != 0));
                    }
                }
            }
        }
        assert!(rows > 40, "{rows}");
        assert!(valid_rows > 20, "{valid_rows}");
    }

    /// Byte fragments decided by their glue onto the tail (docs/byte_probs.md §15.7) equal the
    /// full check token by token, on every token split of texts with non-ASCII characters, for
    /// tails that settle inside themselves too (the second glue, after the settled boundary).
    #[test]
    fn fragment_bits_equal_token_by_token_rows() {
        fragment_rows_equal(&FRAGMENT_TOKENS, false);
        // the same tokens shortest first (each token's last merge after its parts' merges:
        // `MergeTables::monotone`), so the fragments take their pair rows (`glue_row`)
        let mut toks = FRAGMENT_TOKENS.to_vec();
        toks.sort_by_key(|t| t.len());
        // `zq\xc3` is a token the merges do not build: a whole-piece look-up finds it after
        // the tail `zq` (then `["z", "q", "\xc3"]` is not canonical, though its pair is)
        toks.extend_from_slice(&[
            b" \xe4\xb8\xad\xe6",
            b"ab\xc3",
            b"a\xc3\xa9",
            b"x\xe4\xb8",
            b"zq\xc3",
        ]);
        fragment_rows_equal(&toks, true);
    }

    fn fragment_rows_equal(toks: &[&[u8]], monotone: bool) {
        let texts = [
            "\u{4e2d}",
            " \u{4e2d}",
            "a\u{4e2d}",
            "\u{4e2d}a",
            "\u{e9}",
            " \u{e9}",
            "a\u{e9}",
            "ab \u{4e2d}",
            "x  ",
            "\u{4e2d}\u{6587} a",
            "a 12",
            "ab",
            " ",
            "zq",
        ];
        let mut fragments_valid = 0;
        let mut walked = 0;
        for preset in ["gpt2", "cl100k", "o200k"] {
            let bpe = bpe_with(toks, Pretokenizer::new(preset).unwrap());
            let v = Validity::new(bpe.clone(), Rule::Pieces, 1024).unwrap();
            let heads = v.build_heads();
            assert_eq!(v.merge_tables().monotone, monotone);
            assert!(heads.fragments.len() > 128);
            for text in texts {
                let t = text.as_bytes();
                for ids in token_splits(&bpe, t) {
                    let by_class = v.compute_row_heads(&ids, text).unwrap();
                    let one_by_one = v.compute_row(&ids, t).unwrap();
                    assert_eq!(*by_class, *one_by_one, "{preset}: {text:?} as {ids:?}");
                    // the rows above took the fragments' pair rows (`glue_row`) where they apply
                    let glue = v.glue(&ids, t).unwrap();
                    walked += usize::from(
                        v.glue_row(&heads, &glue)
                            .is_some_and(|row| heads.fragments.iter().any(|&(f, _)| bit(&row, f))),
                    );
                    fragments_valid += heads
                        .fragments
                        .iter()
                        .filter(|&&(f, _)| bit(&by_class, f))
                        .count();
                }
            }
        }
        assert!(fragments_valid > 0);
        assert_eq!(walked > 0, monotone);
    }

    /// Every spelling of `t` as a sequence of tokens of `bpe` (ids in order).
    fn token_splits(bpe: &Bpe, t: &[u8]) -> Vec<Vec<u32>> {
        let mut done = Vec::new();
        let mut open: Vec<(usize, Vec<u32>)> = vec![(0, Vec::new())];
        while let Some((at, ids)) = open.pop() {
            if at == t.len() {
                done.push(ids);
                continue;
            }
            for k in at + 1..=t.len() {
                if let Some(id) = bpe.id_of(&t[at..k]) {
                    open.push((k, [ids.as_slice(), &[id]].concat()));
                }
            }
        }
        done
    }

    /// `(ids, key, tail)` for every token spelling `ids` of `t` whose open tail has a nonempty
    /// key ([`Validity::tail`]).
    fn open_tails(v: &Validity, t: &[u8]) -> Vec<(Vec<u32>, Vec<u32>, Vec<u8>)> {
        let mut out = Vec::new();
        for ids in token_splits(&v.bpe, t) {
            if let Some((key, tail)) = v.tail(&ids).unwrap() {
                if !key.is_empty() {
                    let key = key.to_vec();
                    out.push((ids, key, tail));
                }
            }
        }
        out
    }

    /// Every string of 1 to `n` letters of `alphabet`, shortest first.
    fn strings_upto(alphabet: &[&str], n: usize) -> Vec<String> {
        let mut texts = vec![String::new()];
        let mut all = Vec::new();
        for _ in 0..n {
            let next: Vec<String> = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            all.extend(next.iter().cloned());
            texts = next;
        }
        all
    }

    /// Checks that every text's settled boundary is final: a piece end at or before it, and
    /// the same piece ends up to it after every continuation in `conts`. Returns the sum of
    /// the boundaries (how much the rule settled).
    fn settled_is_final<S: AsRef<str>>(
        v: &Validity,
        texts: &[String],
        conts: &[S],
        label: &str,
    ) -> usize {
        let ends = |t: &str| -> Vec<usize> {
            let mut e = 0;
            v.bpe
                .pretokenizer()
                .pieces(t)
                .unwrap()
                .iter()
                .map(|p| {
                    e += p.len();
                    e
                })
                .collect()
        };
        let mut moved = 0usize;
        for t in texts {
            let a = v.settled(t.as_bytes());
            let want: Vec<usize> = ends(t).into_iter().filter(|&e| e <= a).collect();
            assert!(a == 0 || want.last() == Some(&a), "{label} {t:?}");
            for s in conts {
                let s = s.as_ref();
                let got: Vec<usize> = ends(&format!("{t}{s}"))
                    .into_iter()
                    .filter(|&e| e <= a)
                    .collect();
                assert_eq!(got, want, "{label}: {t:?} + {s:?}, settled {a}");
            }
            moved += a;
        }
        moved
    }

    /// o200k's settled boundary after letter pieces (docs/byte_probs.md §15.1: the upper run, not
    /// the whole letter run, must end before the text does) holds for every text of up to four
    /// characters over letters of every case class, a mark, space, punctuation and apostrophes,
    /// and every continuation of up to two.
    #[test]
    fn o200k_settled_boundary_after_letter_pieces() {
        let alphabet = [
            "a", "A", "s", "\u{4e2d}", "\u{1c5}", "\u{2b0}", "\u{301}", " ", "(", "'",
        ];
        let all = strings_upto(&alphabet, 4);
        let conts: Vec<&String> = all.iter().filter(|t| t.chars().count() <= 2).collect();
        let v = Validity::new(
            toy_bpe(Pretokenizer::new("o200k").unwrap()),
            Rule::Pieces,
            8,
        )
        .unwrap();
        let moved = settled_is_final(&v, &all, &conts, "o200k");
        assert!(moved > 1000, "{moved}");
        // " InvalidVr": the upper run of "I" ends inside the text, so " Invalid" is settled
        assert_eq!(v.settled(b" InvalidVr"), 8);
    }

    /// The non-ASCII o200k pieces that `grows_only` accepts never end earlier when the text
    /// goes on (docs/byte_probs.md §15.2): every text of up to three characters over letters of
    /// every case class (ASCII, `\p{Ll}`, `\p{Lu}`, `\p{Lt}`, `\p{Lo}`, `\p{Lm}`), a combining
    /// mark, ASCII and non-ASCII punctuation, space, apostrophe, slash, newline and a digit that
    /// is one accepted piece keeps a piece boundary at or after its end for every continuation
    /// of up to two characters.
    #[test]
    fn o200k_letter_pieces_only_grow() {
        let alphabet = [
            "a", "A", "s", "\u{e9}", "\u{3a3}", "\u{1c5}", "\u{4e2d}", "\u{2b0}", "\u{301}", " ",
            "(", "'", "\n", "1", "\u{ab}", "/",
        ];
        let v = Validity::new(
            toy_bpe(Pretokenizer::new("o200k").unwrap()),
            Rule::Pieces,
            8,
        )
        .unwrap();
        let all = strings_upto(&alphabet, 3);
        let conts: Vec<String> = all
            .iter()
            .filter(|t| t.chars().count() <= 2)
            .cloned()
            .collect();
        let mut checked = 0;
        for x in &all {
            let pieces: Vec<&str> = crate::pretokenize::presets::pieces(Preset::O200k, x).collect();
            if pieces.len() != 1 || !v.grows_only(x) || x.is_ascii() {
                continue;
            }
            checked += 1;
            for s in &conts {
                let xs = format!("{x}{s}");
                let first = crate::pretokenize::presets::pieces(Preset::O200k, &xs)
                    .next()
                    .map_or(0, str::len);
                assert!(first >= x.len(), "{x:?} + {s:?}: first piece {first} bytes");
            }
        }
        assert!(checked > 500, "{checked}");
    }

    /// `[\p{N}, gpt2]` (docs/byte_probs.md §15.8): a number character ends the haystack of the
    /// preset, so the text up to the last one is settled (just before it when it ends the text).
    #[test]
    fn digit_split_sequence_settles_at_number_characters() {
        let pre = Pretokenizer::sequence(&[r"\p{N}", crate::pretokenize::LLAMA_CPP_GPT2]).unwrap();
        let v = Validity::new(toy_bpe(pre), Rule::Pieces, 8).unwrap();
        assert_eq!(v.settled(b"ab  1"), 4);
        assert_eq!(v.settled(b"ab  12"), 5);
        assert_eq!(v.settled(b"ab  12 x"), 6);
        assert_eq!(v.settled(b"x 1 yy z"), 6);
        assert_eq!(v.settled(b"\xd9\xa3a"), 2);
        assert!(v.may_change(b"  ").unwrap());
        assert!(!v.may_change(b" ab").unwrap());
    }

    /// The settled boundary never moves (docs/byte_probs.md §15.1): for every text up to four
    /// characters over a whitespace-, digit- and punctuation-rich alphabet and every continuation
    /// up to two characters, the pieces of `text + s` up to `settled(text)` are those of `text`.
    #[test]
    fn settled_boundary_holds_for_every_short_continuation() {
        // ASCII classes, an upper and a lower non-ASCII letter, a combining mark, a non-ASCII
        // digit: texts up to three characters over all, four over the first nine
        let alphabet = [
            " ", "\t", "\n", "\r", "a", "1", "!", "'", "s", "A", "\u{e9}", "\u{301}", "\u{663}",
        ];
        let mut texts = vec![String::new()];
        let mut all = Vec::new();
        for len in 0..4 {
            let mut next = Vec::new();
            for t in &texts {
                for c in alphabet
                    .iter()
                    .take(if len == 3 { 9 } else { alphabet.len() })
                {
                    if len == 3 && !t.is_ascii() {
                        continue;
                    }
                    next.push(format!("{t}{c}"));
                }
            }
            all.extend(next.iter().cloned());
            texts = next;
        }
        let mut conts = vec![String::new()];
        for c in alphabet {
            conts.push(c.to_string());
            for d in alphabet {
                conts.push(format!("{c}{d}"));
            }
        }
        let digits = |p: &str| Pretokenizer::sequence(&[r"\p{N}", p]).unwrap();
        for (preset, pre) in [
            ("gpt2", Pretokenizer::new("gpt2").unwrap()),
            ("cl100k", Pretokenizer::new("cl100k").unwrap()),
            ("o200k", Pretokenizer::new("o200k").unwrap()),
            ("digits+gpt2", digits(crate::pretokenize::LLAMA_CPP_GPT2)),
            ("digits+cl100k", digits(Preset::Cl100k.pattern())),
        ] {
            let v = Validity::new(toy_bpe(pre), Rule::Pieces, 8).unwrap();
            assert!(settled_is_final(&v, &all, &conts, preset) > 0);
        }
    }
}
