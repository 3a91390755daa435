//! GPT-2's byte <-> character table, used by HF `tokenizer.json` to spell byte strings as text.
//!
//! Bytes 33..=126, 161..=172 and 174..=255 map to the code point of the same value; the other
//! 68 bytes map, in ascending byte order, to U+0100, U+0101, ... (0 -> U+0100, 32 -> U+0120 `Ġ`,
//! 127 -> U+0121, 173 -> U+0143). Sorting bytes by their character gives OpenAI's byte-rank order
//! (rank 0 = `!`), which is also the order HF's trainer gives the 256-byte alphabet.

use std::sync::OnceLock;

fn is_printable(b: u8) -> bool {
    matches!(b, 33..=126 | 161..=172 | 174..=255)
}

struct Tables {
    to_char: [char; 256],
    /// bytes in OpenAI rank order: `order[rank] = byte`
    order: [u8; 256],
    rank: [u16; 256],
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut to_char = ['\0'; 256];
        let mut next = 0x100u32;
        for b in 0..=255u8 {
            to_char[b as usize] = if is_printable(b) {
                char::from(b)
            } else {
                let c = char::from_u32(next).unwrap_or('\u{fffd}');
                next += 1;
                c
            };
        }
        let mut order: [u8; 256] = std::array::from_fn(|i| i as u8);
        order.sort_by_key(|&b| to_char[b as usize]);
        let mut rank = [0u16; 256];
        for (r, &b) in order.iter().enumerate() {
            rank[b as usize] = r as u16;
        }
        Tables {
            to_char,
            order,
            rank,
        }
    })
}

/// The character that spells byte `b` in a byte-level `tokenizer.json`.
pub fn byte_to_char(b: u8) -> char {
    tables().to_char[b as usize]
}

/// The byte a byte-level character stands for, if it is one of the 256.
pub fn char_to_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    if cp < 256 && is_printable(cp as u8) {
        return Some(cp as u8);
    }
    if (0x100..0x100 + 68).contains(&cp) {
        let t = tables();
        return (0..=255u8).find(|&b| t.to_char[b as usize] == c);
    }
    None
}

/// Spell a byte string in the byte-level alphabet.
pub fn encode_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| byte_to_char(b)).collect()
}

/// Read back a byte-level spelling; `None` if a character is outside the alphabet.
pub fn decode_str(s: &str) -> Option<Vec<u8>> {
    s.chars().map(char_to_byte).collect()
}

/// Bytes in OpenAI/HF alphabet order: `byte_order()[rank] = byte` (rank 0 is `!`).
pub fn byte_order() -> &'static [u8; 256] {
    &tables().order
}

/// Rank of a byte in that order (`b' '` -> 220, `b'a'` -> 64).
pub fn byte_rank(b: u8) -> u16 {
    tables().rank[b as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_table_matches_known_points() {
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(0), '\u{100}');
        assert_eq!(byte_to_char(127), '\u{121}');
        assert_eq!(byte_to_char(160), '\u{142}');
        assert_eq!(byte_to_char(173), '\u{143}');
        assert_eq!(byte_rank(b' '), 220);
        assert_eq!(byte_rank(b'a'), 64);
        assert_eq!(byte_order()[0], b'!');
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_str(&encode_bytes(&all)), Some(all));
        assert_eq!(decode_str("a\u{3000}"), None);
    }
}
