//! Character-level text for language models: a vocabulary of the distinct
//! characters (sorted), the text as indices, and [`CharSequences`], a
//! dataset of `seq_len`-long windows whose target is the same window moved
//! one character on.

use std::path::Path;

use nabla_core::{DType, Generator};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};

#[derive(Clone, Debug)]
pub struct TextCorpus {
    pub vocab: Vec<char>,
    pub ids: Vec<u32>,
}

impl TextCorpus {
    pub fn load(path: impl AsRef<Path>) -> Result<TextCorpus> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        if text.chars().count() < 2 {
            return Err(DataError::invalid(
                path,
                "text too short: a language model needs at least two characters",
            ));
        }
        Ok(TextCorpus::new(&text))
    }

    pub fn new(text: &str) -> TextCorpus {
        let mut vocab: Vec<char> = text.chars().collect();
        vocab.sort_unstable();
        vocab.dedup();
        let ids = text
            .chars()
            .map(|c| vocab.binary_search(&c).expect("in vocabulary") as u32)
            .collect();
        TextCorpus { vocab, ids }
    }

    /// Indices of `s`'s characters; None if one is not in the vocabulary.
    pub fn encode(&self, s: &str) -> Option<Vec<u32>> {
        s.chars()
            .map(|c| self.vocab.binary_search(&c).ok().map(|i| i as u32))
            .collect()
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .filter_map(|&i| self.vocab.get(i as usize))
            .collect()
    }

    /// Non-overlapping windows of `seq_len` characters over `ids[range]`.
    pub fn sequences(&self, seq_len: usize, range: std::ops::Range<usize>) -> CharSequences {
        CharSequences {
            ids: self.ids[range].to_vec(),
            seq_len: seq_len.max(1),
        }
    }
}

#[derive(Clone, Debug)]
pub struct CharSequences {
    ids: Vec<u32>,
    seq_len: usize,
}

impl Dataset for CharSequences {
    fn len(&self) -> usize {
        self.ids.len().saturating_sub(1) / self.seq_len
    }

    fn input_shape(&self) -> Vec<usize> {
        vec![self.seq_len]
    }

    fn target_shape(&self) -> Vec<usize> {
        vec![self.seq_len]
    }

    /// Character ids, as an embedding takes them.
    fn input_dtype(&self) -> DType {
        DType::I64
    }

    fn target_dtype(&self) -> DType {
        DType::I64
    }

    fn get(
        &self,
        index: usize,
        input: &mut [f32],
        target: &mut [f32],
        _rng: &mut Generator,
    ) -> Result<()> {
        let s = index * self.seq_len;
        for k in 0..self.seq_len {
            input[k] = self.ids[s + k] as f32;
            target[k] = self.ids[s + k + 1] as f32;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_windows_and_round_trip() {
        let c = TextCorpus::new("hello world");
        assert_eq!(c.vocab, vec![' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
        assert_eq!(c.decode(&c.encode("low").unwrap()), "low");
        assert!(c.encode("z").is_none());
        let s = c.sequences(4, 0..c.ids.len());
        assert_eq!(s.len(), 2);
        let (mut x, mut y) = ([0f32; 4], [0f32; 4]);
        s.get(1, &mut x, &mut y, &mut Generator::new(0)).unwrap();
        assert_eq!(c.decode(&x.map(|v| v as u32)), "o wo");
        assert_eq!(c.decode(&y.map(|v| v as u32)), " wor");
    }
}
