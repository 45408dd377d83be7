//! Fast scalar functions for the hot loops of activations and recurrent
//! cells: branch-free and call-free, so loops over them vectorize.
//!
//! - `exp`: range reduction `x = k·ln2 + r`, `|r| ≤ ln2/2`, and a degree-6
//!   Taylor polynomial for `e^r`; relative error below 2e-7 (x is clamped to
//!   [−87, 88], where f32 neither overflows nor loses all precision).
//! - `sigmoid(x) = 1/(1 + e^(−x))`; `tanh(x) = (1 − e)/(1 + e)` with
//!   `e = e^(−2|x|)`, sign restored; absolute error below 3e-7.

#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // Adding 1.5·2²³ rounds x·log2(e) to the nearest integer k and leaves k
    // in the low bits of the sum, so 2^k is built with integer adds and a
    // shift. (`k as i32` would be a saturating conversion that LLVM does
    // lane by lane, which made the vectorized loops several times slower.)
    const SHIFT: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let k = t - SHIFT;
    // ln 2 split in two so k·ln2 is exact enough
    let r = x - k * 0.693_145_75 - k * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let two_k = t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127) << 23;
    p * f32::from_bits(two_k)
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let e = exp(-2.0 * x.abs());
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

#[cfg(test)]
mod tests {
    #[test]
    fn accurate_over_the_useful_range() {
        for i in -8000..=8000 {
            let x = i as f32 * 0.01;
            let (a, b) = (super::exp(x), x.exp());
            assert!((a - b).abs() <= 3e-7 * b, "exp({x}): {a} vs {b}");
            assert!((super::tanh(x) - x.tanh()).abs() < 3e-7, "tanh({x})");
            let s = 1.0 / (1.0 + (-x as f64).exp());
            assert!((super::sigmoid(x) as f64 - s).abs() < 3e-7, "sigmoid({x})");
        }
        assert!(super::sigmoid(-1000.0) < 1e-30);
        assert_eq!(super::sigmoid(1000.0), 1.0);
        assert_eq!(super::tanh(-0.0), -0.0);
    }
}
