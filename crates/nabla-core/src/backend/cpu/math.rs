//! Fast scalar functions for the hot loops of activations and recurrent
//! cells: branch-free and call-free, so loops over them vectorize.
//!
//! - `exp`: range reduction `x = k·ln2 + r`, `|r| ≤ ln2/2`, and a degree-6
//!   Taylor polynomial for `e^r`; relative error below 2e-7 (x is clamped to
//!   [−87, 88], where f32 neither overflows nor loses all precision).
//! - `sigmoid(x) = 1/(1 + e^(−x))`; `tanh(x) = (1 − e)/(1 + e)` with
//!   `e = e^(−2|x|)`, sign restored, and its Taylor polynomial below
//!   |x| = 1/4; absolute error below 3e-7, relative below 4e-7.

/// `a·b + c`: one fused instruction with `FMA` (for code compiled with the
/// `fma` target feature; elsewhere `mul_add` is a slow library call), two
/// rounded ones without.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp_with::<false>(x)
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    sigmoid_with::<false>(x)
}

#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    tanh_with::<false>(x)
}

/// `ln(1 + eˣ)` without overflow or loss for large |x|:
/// `max(x, 0) + ln(1 + e^(−|x|))` (softplus, and Mish's inner function).
#[inline(always)]
pub fn softplus(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// [`exp`], with fused multiply-adds when `FMA` (a third faster in the LSTM
/// cells; call it so only from code compiled with the `fma` feature).
#[inline(always)]
pub fn exp_with<const FMA: bool>(x: f32) -> f32 {
    // Adding 1.5·2²³ rounds x·log2(e) to the nearest integer k and leaves k
    // in the low bits of the sum, so 2^k is built with integer adds and a
    // shift. (`k as i32` would be a saturating conversion that LLVM does
    // lane by lane, which made the vectorized loops several times slower.)
    const SHIFT: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = madd::<FMA>(x, std::f32::consts::LOG2_E, SHIFT);
    let k = t - SHIFT;
    // ln 2 split in two so k·ln2 is exact enough
    let r = madd::<FMA>(-k, 1.428_606_8e-6, madd::<FMA>(-k, 0.693_145_75, x));
    let mut p = madd::<FMA>(r, 1.0 / 720.0, 1.0 / 120.0);
    for c in [1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = madd::<FMA>(r, p, c);
    }
    let two_k = t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127) << 23;
    p * f32::from_bits(two_k)
}

#[inline(always)]
pub fn sigmoid_with<const FMA: bool>(x: f32) -> f32 {
    let s = 1.0 / (1.0 + exp_with::<FMA>(-x));
    // below −88, e^(−x) is clamped at e^88 and s would stay at 6e-39,
    // where σ(x) falls on to 0 (x·σ(x), SiLU, made −1e-36 of −1e-91)
    if x < -88.0 {
        0.0
    } else {
        s
    }
}

/// `tanh` to an absolute error below 3e-7 only, `(1 − e)/(1 + e)` at every
/// x (its relative error grows as x shrinks: 0.3% at 1e-5). For the LSTM
/// and GRU cells, whose tanh values are multiplied into sums where an
/// absolute error is what counts; the accurate [`tanh_with`] cost their
/// forward 3–5%.
#[inline(always)]
pub fn tanh_abs_with<const FMA: bool>(x: f32) -> f32 {
    let e = exp_with::<FMA>(-2.0 * x.abs());
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

/// [`tanh`]: for |x| < 1/4 its odd Taylor polynomial to x¹¹ (next term
/// below 1e-10 of the value); above, `1 − 2e/(1 + e)`, where `1 − e`
/// would lose the relative precision of a small x (tanh(1e-5) was off by
/// 0.3%). Relative error below 4e-7 everywhere; both sides computed and
/// one picked, so the loop stays branch-free.
#[inline(always)]
pub fn tanh_with<const FMA: bool>(x: f32) -> f32 {
    let ax = x.abs();
    let e = exp_with::<FMA>(-2.0 * ax);
    // (1 − e)/(1 + e) written as 1 − 2e/(1 + e): one rounding at the end,
    // so near ±1 the value is the nearest float (1 − y², tanh's
    // derivative, is made of its last bits there)
    let far = 1.0 - 2.0 * e / (1.0 + e);
    // x·(1 + u·q(u)), u = x², q = −1/3 + 2u/15 − 17u²/315 + 62u³/2835 − 1382u⁴/155925
    let u = ax * ax;
    let mut q = madd::<FMA>(u, -1382.0 / 155_925.0, 62.0 / 2835.0);
    for c in [-17.0 / 315.0, 2.0 / 15.0, -1.0 / 3.0] {
        q = madd::<FMA>(u, q, c);
    }
    let near = madd::<FMA>(ax * u, q, ax);
    let t = if ax < 0.25 { near } else { far };
    t.copysign(x)
}

/// The max `m` of a row and `ln Σ_j e^(x_j − m)`, the log as `ln_1p` of
/// the sum without the max's own term (that term is 1): where one logit
/// dominates, the sum is 1 + t with t tiny, and `ln` of the rounded sum
/// keeps few digits of t (log-probabilities of −2e-5 were 0.3% off).
pub fn max_and_ln_sum_exp(r: &[f32]) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if super::has_avx512() {
        // SAFETY: the CPU has AVX-512; the function only reads the slice.
        return unsafe { max_and_ln_sum_exp_avx512(r) };
    }
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA; the function only reads the slice.
        return unsafe { max_and_ln_sum_exp_avx2(r) };
    }
    max_and_ln_sum_exp_with(r)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn max_and_ln_sum_exp_avx2(r: &[f32]) -> (f32, f32) {
    max_and_ln_sum_exp_with(r)
}

/// [`max_and_ln_sum_exp`] on the AVX-512 path (the same eight lanes, the
/// same values).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
unsafe fn max_and_ln_sum_exp_avx512(r: &[f32]) -> (f32, f32) {
    max_and_ln_sum_exp_with(r)
}

/// The max and the sum eight lanes at a time, with [`exp`] (a language
/// model's log-softmax over 20,000 words spent a quarter of its step in
/// the library's scalar exp): the chunk holding the max is summed alone,
/// without it.
#[inline(always)]
fn max_and_ln_sum_exp_with(r: &[f32]) -> (f32, f32) {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = r.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = l.max(v);
        }
    }
    let m = lanes.iter().fold(tail, |a, &b| a.max(b));
    if !m.is_finite() {
        return (m, ln_1p_of_rest(std::iter::empty(), m));
    }
    let top = r.iter().position(|&v| v == m).unwrap_or(0);
    let mut sums = [0f32; 8];
    let mut rest = 0f32;
    for (k, c) in r.chunks(8).enumerate() {
        if k == top / 8 || c.len() < 8 {
            let skip = top.checked_sub(k * 8);
            for (j, &v) in c.iter().enumerate() {
                if Some(j) != skip {
                    rest += exp(v - m);
                }
            }
        } else {
            for (s, &v) in sums.iter_mut().zip(c) {
                *s += exp(v - m);
            }
        }
    }
    (m, (sums.iter().sum::<f32>() + rest).ln_1p())
}

/// [`max_and_ln_sum_exp`]'s log from a row's exponentials already taken,
/// `e_j = e^(x_j − m)` (cross-entropy keeps them for its probabilities):
/// a term equal to 1 is the max's.
pub fn ln_sum_of_shifted_exps(e: &[f32], m: f32) -> f32 {
    let top = e.iter().position(|&v| v == 1.0);
    let rest = e
        .iter()
        .enumerate()
        .filter(|&(k, _)| Some(k) != top)
        .map(|(_, &v)| v);
    ln_1p_of_rest(rest, m)
}

fn ln_1p_of_rest(rest: impl Iterator<Item = f32>, m: f32) -> f32 {
    // (the max's own term is e^(m − m): NaN, not 1, for an infinite m or a
    // row of NaN, and so is the sum, as PyTorch has it)
    match m.is_finite() {
        true => rest.sum::<f32>().ln_1p(),
        false => f32::NAN,
    }
}

/// erf(x), absolute error below 3e-7: Numerical Recipes' Chebyshev fit of
/// erfc, `erfc(z) ≈ t·exp(−z² + P(t))` with `t = 1/(1 + z/2)`, in f32 with
/// [`exp`], so that a loop over it vectorizes (evaluated in f64 with the
/// library's exp it was half of a GPT's step).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77f32;
    for c in [
        -0.822_152_23,
        1.488_515_9,
        -1.135_204,
        0.278_868_07,
        -0.186_288_06,
        0.096_784_18,
        0.374_091_96,
        1.000_023_7,
        -1.265_512_2,
    ] {
        p = p * t + c;
    }
    let erfc = t * exp(p - z * z);
    let r = 1.0 - erfc;
    if x >= 0.0 {
        r
    } else {
        -r
    }
}

/// The standard normal's distribution function Φ(x).
#[inline(always)]
pub fn normal_cdf(x: f32) -> f32 {
    0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The standard normal's density φ(x).
#[inline(always)]
pub fn normal_pdf(x: f32) -> f32 {
    exp(-0.5 * x * x) * 0.398_942_3
}

#[cfg(test)]
mod tests {
    /// erf against f64's series over [−6, 6].
    #[test]
    fn erf_is_within_3e7_everywhere() {
        let exact = |x: f64| {
            // erf by its Taylor series (converges fast for |x| ≤ 6 in f64 terms up to 200)
            let (mut term, mut sum, mut n) = (x, x, 0);
            while n < 400 {
                n += 1;
                term *= -x * x / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        };
        for k in -600..=600 {
            let x = k as f32 / 100.0;
            let want = if x.abs() > 4.0 {
                x.signum() as f64
            } else {
                exact(x as f64)
            };
            let got = super::erf(x) as f64;
            assert!((got - want).abs() < 3e-7, "erf({x}) = {got} vs {want}");
        }
    }

    use super::{exp_with, sigmoid_with, tanh_abs_with, tanh_with};

    /// Relative accuracy where the value is small: tanh(x) ≈ x.
    fn relative_tanh<const FMA: bool>() {
        for i in 0..=400 {
            let x = 10f32.powf(-8.0 + i as f32 * 0.02); // 1e-8 … 1
            for x in [x, -x] {
                let (a, b) = (tanh_with::<FMA>(x) as f64, (x as f64).tanh());
                assert!((a - b).abs() <= 4e-7 * b.abs(), "tanh({x}): {a} vs {b}");
            }
        }
    }

    fn accurate<const FMA: bool>() {
        relative_tanh::<FMA>();
        for i in -8000..=8000 {
            let x = i as f32 * 0.01;
            let (a, b) = (exp_with::<FMA>(x), x.exp());
            assert!((a - b).abs() <= 3e-7 * b, "exp({x}): {a} vs {b}");
            assert!((tanh_with::<FMA>(x) - x.tanh()).abs() < 3e-7, "tanh({x})");
            assert!(
                (tanh_abs_with::<FMA>(x) - x.tanh()).abs() < 3e-7,
                "tanh({x})"
            );
            let s = 1.0 / (1.0 + (-x as f64).exp());
            assert!(
                (sigmoid_with::<FMA>(x) as f64 - s).abs() < 3e-7,
                "sigmoid({x})"
            );
        }
        assert!(sigmoid_with::<FMA>(-1000.0) < 1e-30);
        // past the clamp σ still falls (to 0, as f32's own e^x does)
        assert_eq!(sigmoid_with::<FMA>(-214.0), 0.0);
        assert!(sigmoid_with::<FMA>(-87.9) > 0.0);
        assert_eq!(sigmoid_with::<FMA>(1000.0), 1.0);
        assert_eq!(tanh_with::<FMA>(-0.0), -0.0);
    }

    #[test]
    fn accurate_over_the_useful_range() {
        accurate::<false>();
    }

    #[test]
    fn accurate_over_the_useful_range_with_fused_multiply_adds() {
        accurate::<true>();
    }
}
