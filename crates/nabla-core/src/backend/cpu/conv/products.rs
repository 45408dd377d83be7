//! The products of a convolution at the caller's precision: which kernels
//! run them ([`Kernels`]: f32's, or bf16's where their packing pays) and
//! the operands the f32 kernels need rounded beforehand.

use super::super::small_gemm::{Rows, Strided};
use crate::autocast::Precision;

/// The kernels a convolution's product runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// `small_gemm.rs`'s f32 kernels; at bf16, on operands rounded beforehand
    F32,
    /// `bf16_gemm/rows.rs`'s, which round as they pack
    Bf16,
}

impl Kernels {
    /// The kernels for a product at `precision` whose packing for the bf16
    /// kernels pays (`worth`): those where `VDPBF16PS` (or its emulation)
    /// runs, else f32's. Packing costs a pass over the vector operand, so
    /// it pays with enough rows to broadcast against it: with LeNet's 6
    /// and 16 output channels the bf16 passes measured 0.67–0.87× of f32's,
    /// with 64 channels 1.55× (`cargo bench --bench kernels conv_parts`).
    fn at(precision: Precision, worth: bool) -> Kernels {
        use crate::isa::Isa;
        let bf16 = precision == Precision::Bf16 && worth;
        match bf16 && super::super::bf16_gemm::bf16_isa() == Isa::Avx512 {
            true => Kernels::Bf16,
            false => Kernels::F32,
        }
    }

    /// For `C[M,N] = A·B` with B packed: M rows broadcast against it.
    pub fn for_bcast(precision: Precision, m: usize) -> Kernels {
        Kernels::at(precision, m >= 32)
    }

    /// For `C[M,N] = A·Bᵀ`, both packed: M·N products per M + N rows.
    pub fn for_dot(precision: Precision, m: usize, n: usize) -> Kernels {
        Kernels::at(precision, m * n >= 10 * (m + n))
    }

    /// The precision the operands must be rounded to before these kernels
    /// see them: `precision` for the f32 kernels, none for the bf16 ones
    /// (they round as they pack).
    pub fn rounding(self, precision: Precision) -> Precision {
        match self {
            Kernels::F32 => precision,
            Kernels::Bf16 => Precision::F32,
        }
    }
}

/// `x` as the f32 kernels take it at `precision`: itself, or at bf16 a
/// copy rounded to bfloat16.
pub fn f32_operand(x: &[f32], precision: Precision) -> std::borrow::Cow<'_, [f32]> {
    match precision {
        Precision::F32 => std::borrow::Cow::Borrowed(x),
        Precision::Bf16 => {
            let mut v = x.to_vec();
            super::super::bf16_gemm::round_slice(&mut v);
            std::borrow::Cow::Owned(v)
        }
    }
}

/// `C[M,N] (+)= A·B` on `kernels` (`small_gemm::gemm_bcast`'s arguments).
#[allow(clippy::too_many_arguments)]
pub fn gemm_bcast(
    kernels: Kernels,
    m: usize,
    n: usize,
    k: usize,
    a: Strided,
    b: Rows,
    c: &mut [f32],
    c_rows: &[usize],
    accumulate: bool,
) {
    match kernels {
        Kernels::F32 => super::super::small_gemm::gemm_bcast(m, n, k, a, b, c, c_rows, accumulate),
        Kernels::Bf16 => {
            super::super::bf16_gemm::rows::gemm_bcast(m, n, k, a, b, c, c_rows, accumulate)
        }
    }
}

/// `C[M,N] (+)= A·Bᵀ` on `kernels` (`small_gemm::gemm_dot`'s arguments).
#[allow(clippy::too_many_arguments)]
pub fn gemm_dot(
    kernels: Kernels,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: Rows,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    match kernels {
        Kernels::F32 => super::super::small_gemm::gemm_dot(m, n, k, a, lda, b, c, ldc, accumulate),
        Kernels::Bf16 => {
            super::super::bf16_gemm::rows::gemm_dot(m, n, k, a, lda, b, c, ldc, accumulate)
        }
    }
}
