//! Byte-level byte-pair encoding (Sennrich et al. 2016; GPT-2's byte-level
//! variant), trained on a corpus.
//!
//! Ids 0–255 are the bytes themselves, so any text encodes and every id
//! sequence decodes; each later id is a merge of two earlier ones, learnt
//! by repeatedly joining the most frequent adjacent pair. Pairs are counted
//! inside words only (a word is a run of letters and digits, or of other
//! non-space characters, with the spaces before it, as GPT-2 pre-splits), so
//! tokens do not straddle word boundaries. Ties between equally frequent
//! pairs go to the smaller pair, so training is deterministic.
//!
//! A tokenizer is saved as text, one merge per line (`left right`).

use std::collections::HashMap;
use std::path::Path;

use crate::error::{DataError, Result};

/// A trained byte-level BPE tokenizer.
#[derive(Clone, Debug, PartialEq)]
pub struct Bpe {
    /// Merge k makes id 256 + k from these two ids.
    merges: Vec<(u32, u32)>,
    /// The bytes of every id.
    pieces: Vec<Vec<u8>>,
    /// A pair's merge rank.
    ranks: HashMap<(u32, u32), u32>,
}

/// GPT-2's pre-split, simplified: the spaces before a word go with it, and
/// a word is a run of alphanumerics or a run of other non-space characters.
fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let class = |c: char| match c {
        c if c.is_whitespace() => 0,
        c if c.is_alphanumeric() => 1,
        _ => 2,
    };
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        // the spaces, then one run of one class
        while i < chars.len() && class(chars[i].1) == 0 {
            i += 1;
        }
        if i < chars.len() {
            let k = class(chars[i].1);
            while i < chars.len() && class(chars[i].1) == k {
                i += 1;
            }
        }
        let end = chars.get(i).map_or(text.len(), |c| c.0);
        out.push(&text[start..end]);
        start = end;
    }
    out
}

impl Bpe {
    fn from_merges(merges: Vec<(u32, u32)>) -> Bpe {
        let mut pieces: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        let mut ranks = HashMap::new();
        for (k, &(a, b)) in merges.iter().enumerate() {
            let piece = [pieces[a as usize].clone(), pieces[b as usize].clone()].concat();
            pieces.push(piece);
            ranks.insert((a, b), k as u32);
        }
        Bpe {
            merges,
            pieces,
            ranks,
        }
    }

    /// Learns merges from `text` until the vocabulary has `vocab_size` ids
    /// (at least the 256 bytes), or no pair occurs twice.
    pub fn train(text: &str, vocab_size: usize) -> Bpe {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for w in words(text) {
            *counts.entry(w).or_default() += 1;
        }
        // each distinct word as ids, with its count (sorted: deterministic)
        let mut seqs: Vec<(Vec<u32>, usize)> = counts
            .into_iter()
            .map(|(w, c)| (w.bytes().map(u32::from).collect(), c))
            .collect();
        seqs.sort();
        let mut merges = Vec::new();
        while 256 + merges.len() < vocab_size {
            let mut pairs: HashMap<(u32, u32), usize> = HashMap::new();
            for (s, c) in &seqs {
                for p in s.windows(2) {
                    *pairs.entry((p[0], p[1])).or_default() += c;
                }
            }
            let Some((&best, &n)) = pairs.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            else {
                break;
            };
            if n < 2 {
                break;
            }
            let id = 256 + merges.len() as u32;
            for (s, _) in &mut seqs {
                *s = merge(s, best, id);
            }
            merges.push(best);
        }
        Bpe::from_merges(merges)
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// The ids of `text`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for w in words(text) {
            let mut s: Vec<u32> = w.bytes().map(u32::from).collect();
            // apply the earliest-learnt merge present, until none is
            while let Some((rank, pair)) = s
                .windows(2)
                .filter_map(|p| self.ranks.get(&(p[0], p[1])).map(|&r| (r, (p[0], p[1]))))
                .min()
            {
                s = merge(&s, pair, 256 + rank);
            }
            out.extend(s);
        }
        out
    }

    /// The bytes of `ids` (ids past the vocabulary are skipped).
    pub fn decode_bytes(&self, ids: &[u32]) -> Vec<u8> {
        ids.iter()
            .filter_map(|&i| self.pieces.get(i as usize))
            .flatten()
            .copied()
            .collect()
    }

    /// The text of `ids` (invalid UTF-8, from a sequence cut mid-character,
    /// shown as U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids)).into_owned()
    }

    /// The merges, one `left right` per line.
    pub fn to_text(&self) -> String {
        self.merges
            .iter()
            .map(|(a, b)| format!("{a} {b}\n"))
            .collect()
    }

    /// A tokenizer from [`to_text`](Self::to_text)'s form; `source` names
    /// it in errors.
    pub fn from_text(text: &str, source: &Path) -> Result<Bpe> {
        let mut merges = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let bad = || {
                DataError::invalid(
                    source,
                    format!("line {}: expected two ids, got {line:?}", n + 1),
                )
            };
            let mut parts = line.split_whitespace().map(str::parse::<u32>);
            let (Some(Ok(a)), Some(Ok(b)), None) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            // a merge can only join ids that exist before it
            let next = 256 + merges.len() as u32;
            if a >= next || b >= next {
                return Err(bad());
            }
            merges.push((a, b));
        }
        Ok(Bpe::from_merges(merges))
    }
}

/// `s` with every non-overlapping occurrence of `pair`, left to right,
/// replaced by `id`.
fn merge(s: &[u32], pair: (u32, u32), id: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if i + 1 < s.len() && (s[i], s[i + 1]) == pair {
            out.push(id);
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_their_leading_spaces() {
        assert_eq!(
            words("Hello, world!  ok"),
            ["Hello", ",", " world", "!", "  ok"]
        );
        assert_eq!(words(""), Vec::<&str>::new());
        assert_eq!(words("  "), ["  "]);
    }

    /// Merges join the most frequent pairs; encoding round-trips any text,
    /// including characters never seen; the text form round-trips.
    #[test]
    fn training_encoding_and_round_trips() {
        let text = "the theme of the thesis: the other theory. ".repeat(20);
        let bpe = Bpe::train(&text, 300);
        assert!(bpe.vocab_size() > 256 && bpe.vocab_size() <= 300);
        // the most frequent pairs are 't' 'h' and 'h' 'e' (7 each a
        // repeat): the tie goes to the smaller pair
        assert_eq!(bpe.merges[0], (b'h' as u32, b'e' as u32));
        let ids = bpe.encode(&text);
        assert!(
            ids.len() < text.len() / 3,
            "{} ids for {} bytes",
            ids.len(),
            text.len()
        );
        assert_eq!(bpe.decode(&ids), text);
        let other = "Ünïcode ☃ and the unseen";
        assert_eq!(bpe.decode(&bpe.encode(other)), other);
        let saved = bpe.to_text();
        assert_eq!(Bpe::from_text(&saved, Path::new("t")).unwrap(), bpe);
        assert!(Bpe::from_text("1 2 3\n", Path::new("t")).is_err());
        assert!(Bpe::from_text("300 1\n", Path::new("t")).is_err());
        // deterministic
        assert_eq!(Bpe::train(&text, 300), bpe);
    }
}
