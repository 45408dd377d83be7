//! One seeded random generator (ChaCha8) for initialization, shuffling and
//! dropout, so a fixed seed gives the same run every time.
//!
//! The process-wide generator is seeded with [`manual_seed`] (as
//! `torch.manual_seed`); code that needs its own stream makes a [`Generator`].
//! A generator's state is (seed, position), which checkpoints store.

use std::sync::Mutex;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// A reproducible random stream.
#[derive(Clone, Debug)]
pub struct Generator {
    seed: u64,
    rng: ChaCha8Rng,
}

/// The generator's state: enough to continue the same stream later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneratorState {
    pub seed: u64,
    pub word_pos: u128,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Generator {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub fn state(&self) -> GeneratorState {
        GeneratorState {
            seed: self.seed,
            word_pos: self.rng.get_word_pos(),
        }
    }

    pub fn from_state(state: GeneratorState) -> Self {
        let mut g = Generator::new(state.seed);
        g.rng.set_word_pos(state.word_pos);
        g
    }

    pub fn next_u32(&mut self) -> u32 {
        self.rng.next_u32()
    }

    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Uniform in [0, 1), 24 random bits.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Standard normal by Box-Muller (computed in f64 for accuracy).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64);
        let u2 = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    /// Uniform integer in `0..n` (n > 0), without modulo bias.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Generator::below(0)");
        let n = n as u64;
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return (v % n) as usize;
            }
        }
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

static GLOBAL: Mutex<Option<Generator>> = Mutex::new(None);

/// Seeds the process-wide generator (`torch.manual_seed`).
pub fn manual_seed(seed: u64) {
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Generator::new(seed));
}

/// Runs `f` with the process-wide generator (seeded with 0 if never seeded).
pub fn with_global_generator<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    let mut guard = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(|| Generator::new(0)))
}

/// State of the process-wide generator, for checkpoints.
pub fn global_generator_state() -> GeneratorState {
    with_global_generator(|g| g.state())
}

/// Restores the process-wide generator from a checkpoint.
pub fn set_global_generator_state(state: GeneratorState) {
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Generator::from_state(state));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_state_round_trips() {
        let mut a = Generator::new(7);
        let mut b = Generator::new(7);
        let xs: Vec<f32> = (0..10).map(|_| a.normal()).collect();
        let ys: Vec<f32> = (0..10).map(|_| b.normal()).collect();
        assert_eq!(xs, ys);
        let s = a.state();
        let next = a.uniform();
        assert_eq!(Generator::from_state(s).uniform(), next);
    }

    #[test]
    fn normal_has_unit_variance() {
        let mut g = Generator::new(1);
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|_| g.normal() as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }
}
