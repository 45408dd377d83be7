use super::*;
use crate::backend::cpu::test_values;
use crate::half::Bf16;

/// Edge values: zeros, subnormals, the normal range's ends, ties both
/// ways, values that round up into the next binade and to infinity,
/// infinities and NaNs.
fn edge_values() -> Vec<f32> {
    let mut v: Vec<f32> = [
        0x0000_0000u32,
        0x8000_0000,
        0x0000_0001,
        0x807F_FFFF,
        0x0080_0000,
        0x3F80_8000, // 1 + 2⁻⁸: a tie, kept part even → down
        0x3F81_8000, // a tie, kept part odd → up
        0x3F80_8001,
        0x3FFF_FFFF, // rounds up into the next binade
        0x7F7F_FFFF, // f32::MAX → infinity
        0x7F80_0000,
        0xFF80_0000,
        0x7FC0_0000,
        0x7F80_0001, // a signalling NaN: stays a NaN
        0xFFFF_FFFF,
    ]
    .map(f32::from_bits)
    .to_vec();
    // and a spread of ordinary bits
    let mut x = 0x1234_5678u32;
    for _ in 0..1000 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        v.push(f32::from_bits(x));
    }
    v
}

#[test]
fn rounding_is_to_nearest_even_with_subnormals_flushed() {
    for x in edge_values() {
        let got = round_high(x);
        assert_eq!(got & 0xFFFF, 0, "{x:e}: low half not clear");
        let got = f32::from_bits(got);
        if x.is_nan() {
            assert!(got.is_nan(), "{:#x}: NaN lost", x.to_bits());
        } else if x.is_subnormal() {
            assert_eq!(got.to_bits(), x.to_bits() & 0x8000_0000, "{x:e}");
        } else {
            assert_eq!(got, Bf16::from_f32(x).to_f32(), "{:#x}", x.to_bits());
        }
    }
    assert_eq!(round_to_bf16(1.0 + 1.0 / 256.0), 1.0);
    assert_eq!(round_to_bf16(f32::MAX), f32::INFINITY);
}

/// Rounding a slice in place (16 at a time, then the rest) gives the
/// scalar rule's bits, NaNs included.
#[test]
fn slices_round_as_the_scalar_rule() {
    let values = edge_values();
    for n in [values.len(), 33, 16, 5, 0] {
        let mut got = values[..n].to_vec();
        round_slice(&mut got);
        for (g, v) in got.iter().zip(&values) {
            assert_eq!(g.to_bits(), round_high(*v), "{:#x}", v.to_bits());
        }
    }
}

/// The vector packing rounds every value as the scalar rule does, the
/// lone last value of an odd count paired with zero.
#[cfg(target_arch = "x86_64")]
#[test]
fn vector_packing_rounds_as_the_scalar_rule() {
    if !Isa::Avx512.supported() {
        eprintln!("skipped: this CPU lacks AVX-512");
        return;
    }
    let values = edge_values();
    for units in [false, true] {
        if units && !has_avx512_bf16() {
            eprintln!("VCVTNE2PS2BF16 skipped: this CPU lacks AVX512-BF16");
            continue;
        }
        for n in [values.len(), 37, 32, 31, 1] {
            let (a, b) = (&values[..n], &values[values.len() - n..]);
            // A row-major (pairs adjacent) and B row-major (pairs across rows)
            let lhs = MatRef::row_major(a, 1, n);
            let mut packed = vec![0u32; n.div_ceil(2)];
            // SAFETY: AVX-512 (and BF16 with units) is present; the view
            // holds one row of n.
            unsafe { pack::a_block(&mut packed, &lhs, 0, 1, 0, n.div_ceil(2), units) };
            for (q, p) in packed.iter().enumerate() {
                let hi = a.get(2 * q + 1).copied().unwrap_or(0.0);
                assert_eq!(*p, pair(a[2 * q], hi), "n {n}, pair {q}, units {units}");
            }
            let cols = n.min(32);
            let rhs = MatRef::row_major(&b[..cols], 1, cols);
            let mut panel = vec![0u32; NR];
            // SAFETY: as above; one pair of rows (the second missing).
            unsafe { pack::b_panel(&mut panel, &rhs, 0, 1, 0, units) };
            for j in 0..NR {
                let want = if j < cols { pair(b[j], 0.0) } else { 0 };
                assert_eq!(panel[j], want, "n {n}, column {j}, units {units}");
            }
        }
        // two rows of B for every 32 edge values: both halves of each pair
        for (c, two_rows) in values.chunks_exact(64).enumerate() {
            let rhs = MatRef::row_major(two_rows, 2, 32);
            let mut panel = vec![0u32; NR];
            // SAFETY: as above; one pair of rows.
            unsafe { pack::b_panel(&mut panel, &rhs, 0, 1, 0, units) };
            for j in 0..NR {
                let want = pair(two_rows[j], two_rows[32 + j]);
                assert_eq!(panel[j], want, "chunk {c}, column {j}, units {units}");
            }
        }
    }
}

/// The product of the rounded operands in f64.
fn reference(a: &MatRef, b: &MatRef) -> Vec<f64> {
    let at = |x: &MatRef, i: usize, j: usize| round_to_bf16(x.data[x.offset + i * x.rs + j * x.cs]);
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut c = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|p| at(a, i, p) as f64 * at(b, p, j) as f64)
                .sum();
        }
    }
    c
}

/// The paths this CPU has: (isa, on VDPBF16PS).
pub(super) fn paths() -> Vec<(Isa, bool)> {
    let mut paths = vec![(Isa::Scalar, false)];
    for isa in [Isa::Avx2, Isa::Avx512] {
        match isa.supported() {
            true => paths.push((isa, false)),
            false => eprintln!("{isa} path skipped: this CPU lacks it"),
        }
    }
    match has_avx512_bf16() {
        true => paths.push((Isa::Avx512, true)),
        false => eprintln!("VDPBF16PS path skipped: this CPU lacks AVX512-BF16"),
    }
    paths
}

/// Every edge (partial slivers and panels, an odd K, several blocks of
/// pairs, one row, one column), every layout of A and B (rows, columns
/// and neither contiguous), both write modes, one and two threads (the
/// same bits), `VDPBF16PS` and its emulation (the same bits), against
/// the rounded operands' product in f64.
#[test]
fn bf16_products_match_the_rounded_product_on_every_path() {
    for (m, k, n) in [
        (1, 1, 1),
        (13, 7, 37),
        (12, 256, 32),
        (64, 784, 256),
        (97, 301, 65),
        (5, 600, 3),
        (30, 2, 100),
    ] {
        // (scaled by 1.1 so that most are not bf16 values already)
        let scaled = |n: usize, seed: usize| -> Vec<f32> {
            test_values(n, seed).iter().map(|v| v * 1.1).collect()
        };
        let (av, bv) = (scaled(2 * m * k, 1), scaled(2 * k * n, 2));
        let lhs_views = [
            MatRef::row_major(&av, m, k),
            MatRef::row_major(&av, k, m).t(),
            MatRef {
                rs: 2 * k,
                cs: 1,
                ..MatRef::row_major(&av, m, k)
            },
            MatRef {
                rs: 1,
                cs: 2 * m,
                ..MatRef::row_major(&av, m, k)
            },
            MatRef {
                rs: 2 * k,
                cs: 2,
                ..MatRef::row_major(&av, m, k)
            },
        ];
        let rhs_views = [
            MatRef::row_major(&bv, k, n),
            MatRef::row_major(&bv, n, k).t(),
            MatRef {
                rs: 2,
                cs: 2 * k,
                ..MatRef::row_major(&bv, k, n)
            },
        ];
        let start = test_values(m * n, 3);
        for (li, lhs) in lhs_views.iter().enumerate() {
            for (ri, rhs) in rhs_views.iter().enumerate() {
                let want = reference(lhs, rhs);
                for accumulate in [false, true] {
                    let mut first: Option<Vec<f32>> = None;
                    for (isa, units) in paths() {
                        for threads in [1, 2] {
                            let mut c = start.clone();
                            // SAFETY: the CPU has the path; c holds m×n.
                            crate::threads::in_pool(|| unsafe {
                                gemm_on(isa, units, c.as_mut_ptr(), accumulate, *lhs, *rhs, threads)
                            });
                            let case = format!(
                                "{m}x{k}x{n} lhs {li} rhs {ri} acc {accumulate} {isa} units {units} threads {threads}"
                            );
                            for (idx, got) in c.iter().enumerate() {
                                let w =
                                    want[idx] + if accumulate { start[idx] as f64 } else { 0.0 };
                                assert!(
                                    (*got as f64 - w).abs()
                                        < 1e-5 * (1.0 + w.abs() + k as f64 / 64.0),
                                    "{case} at {idx}: {got} vs {w}"
                                );
                            }
                            if isa == Isa::Avx512 {
                                match &first {
                                    None => first = Some(c),
                                    Some(f) => assert_eq!(&c, f, "{case}: bits differ"),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The values are bf16's: a product that f32 gets exactly is off by
/// bf16's rounding of an operand.
#[test]
fn operands_are_rounded_to_bf16() {
    let a = [1.0 / 3.0f32, 1.0];
    let b = [3.0f32, 1.0 / 1024.0 + 1.0];
    let mut c = [0f32];
    let (lhs, rhs) = (MatRef::row_major(&a, 1, 2), MatRef::row_major(&b, 2, 1));
    // SAFETY: c holds the 1×1 product.
    unsafe { gemm_to(c.as_mut_ptr(), false, lhs, rhs, 1) };
    // 1/3 → 0.333984375, 1 + 2⁻¹⁰ → 1 (7 bits of mantissa)
    assert_eq!(c[0], 3.0 * 0.333_984_38 + 1.0);
}
