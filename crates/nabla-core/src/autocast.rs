//! Mixed precision in the spirit of `torch.autocast`: inside
//! [`autocast`]`(Precision::Bf16, ..)` the matrix products of `matmul`,
//! `linear`, `conv2d`, `conv_transpose2d`, `scaled_dot_product_attention`
//! and the recurrent layers (forward and backward) round their operands
//! to bfloat16 and accumulate in f32; everything else — weights, optimizer
//! state, losses, softmax, normalization, biases, the outputs themselves —
//! stays f32.
//!
//! Where PyTorch's CPU autocast casts a product's inputs to `bfloat16`
//! tensors and returns a `bfloat16` output, nabla rounds inside the kernel
//! as it packs the operands and writes the f32 sums: the same products,
//! one rounding fewer (the output's). On CPUs with AVX512-BF16 the products
//! run on `VDPBF16PS` (two bf16 multiply-adds per f32 lane); elsewhere the
//! same rounded operands go through the f32 kernels (correct, no faster).
//!
//! A convolution's products run on `VDPBF16PS` where their packing pays
//! (enough output channels or taps to broadcast against it: 1.5–1.7× f32
//! at 32 → 64 channels); LeNet-sized ones (6 and 16 channels) run the f32
//! kernels on operands rounded beforehand — the same values, at about
//! f32's speed. The scope is per thread, like PyTorch's, and carried into
//! [`in_pool`](crate::in_pool) (which runs a closure on a pool thread, as
//! evaluation and training do). An op records the precision it ran its
//! forward at and runs its backward products at the same one, so
//! `loss.backward()` may be called inside the scope or after it.
//!
//! ```
//! use nabla_core::{autocast::{autocast, Precision}, Tensor};
//! let x = Tensor::from_vec(vec![1.0, 1.0 / 3.0], [1, 2]).unwrap();
//! let w = Tensor::from_vec(vec![3.0, 3.0], [1, 2]).unwrap();
//! let exact = x.linear(&w, None).unwrap().to_vec()[0];
//! let bf16 = autocast(Precision::Bf16, || x.linear(&w, None)).unwrap().to_vec()[0];
//! assert!((exact - 4.0).abs() < 1e-6);
//! // 1/3 has 8 significant bits in bfloat16: 0.333984375
//! assert_eq!(bf16, 3.0 + 3.0 * 0.333_984_38);
//! ```

use std::cell::Cell;
use std::fmt;

/// The precision of a product's operands (its sums are always f32).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Operands as they are: f32.
    #[default]
    F32,
    /// Operands rounded to bfloat16 (nearest, ties to even).
    Bf16,
}

impl Precision {
    /// Every precision, as `--precision` takes them.
    pub const ALL: [Precision; 2] = [Precision::F32, Precision::Bf16];

    /// The name `--precision` takes: `f32` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// The precision named `value`; an error lists the names.
    pub fn parse(value: &str) -> Result<Precision, String> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == value.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("precision {value:?}: expected f32 or bf16"))
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

thread_local! {
    static PRODUCTS: Cell<Precision> = const { Cell::new(Precision::F32) };
}

/// The precision products take on this thread now.
pub fn product_precision() -> Precision {
    PRODUCTS.with(Cell::get)
}

/// Runs `f` with this thread's products at `precision`, restoring the
/// previous one afterwards (also when `f` panics). Scopes nest.
pub fn autocast<R>(precision: Precision, f: impl FnOnce() -> R) -> R {
    /// Puts the previous precision back when dropped.
    struct Restore(Precision);
    impl Drop for Restore {
        fn drop(&mut self) {
            PRODUCTS.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(PRODUCTS.with(|p| p.replace(precision)));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_restore_even_after_a_panic() {
        assert_eq!(product_precision(), Precision::F32);
        autocast(Precision::Bf16, || {
            assert_eq!(product_precision(), Precision::Bf16);
            autocast(Precision::F32, || {
                assert_eq!(product_precision(), Precision::F32)
            });
            assert_eq!(product_precision(), Precision::Bf16);
        });
        let caught = std::panic::catch_unwind(|| autocast(Precision::Bf16, || panic!("inside")));
        assert!(caught.is_err());
        assert_eq!(product_precision(), Precision::F32);
    }

    #[test]
    fn the_scope_is_carried_into_the_pool() {
        let inside = autocast(Precision::Bf16, || crate::in_pool(product_precision));
        assert_eq!(inside, Precision::Bf16);
        assert_eq!(crate::in_pool(product_precision), Precision::F32);
    }

    #[test]
    fn names_parse_and_unknown_ones_are_errors() {
        for p in Precision::ALL {
            assert_eq!(Precision::parse(p.name()), Ok(p));
            assert_eq!(Precision::parse(&p.name().to_uppercase()), Ok(p));
        }
        let err = Precision::parse("fp8").unwrap_err();
        assert!(
            err.contains("\"fp8\"") && err.contains("f32 or bf16"),
            "{err}"
        );
    }
}
