use super::*;
use crate::backend::cpu::test_values;
use crate::isa::Isa;

/// The paths this CPU has; those it lacks are named as skipped.
fn supported_paths() -> Vec<Isa> {
    for isa in Isa::ALL.into_iter().filter(|i| !i.supported()) {
        eprintln!("{isa} path skipped: this CPU lacks it");
    }
    Isa::ALL.into_iter().filter(|i| i.supported()).collect()
}

/// The product in f64, for reference.
fn reference(m: usize, k: usize, n: usize, a: &Strided, b: &Strided) -> Vec<f64> {
    let mut c = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|kk| a.data[i * a.rs + kk * a.cs] as f64 * b.data[kk * b.rs + j * b.cs] as f64)
                .sum();
        }
    }
    c
}

/// At bf16 both forms of B — pairs for the AVX-512 kernel, rounded
/// f32 panels elsewhere — give the product of the rounded operands,
/// over all of K or a prefix, written or added.
#[test]
fn bf16_packed_products_are_the_rounded_product() {
    use crate::backend::cpu::bf16_gemm::round_to_bf16;
    for (m, k, n, ku) in [
        (13, 7, 37, 7),
        (64, 157, 512, 29),
        (5, 4, 16, 3),
        (12, 33, 70, 33),
    ] {
        let scaled =
            |len, seed| -> Vec<f32> { test_values(len, seed).iter().map(|v| v * 1.1).collect() };
        let (a, b) = (scaled(m * k, 7), scaled(k * n, 8));
        let a = Strided {
            data: &a,
            rs: k,
            cs: 1,
        };
        let b = Strided {
            data: &b,
            rs: n,
            cs: 1,
        };
        let round = |s: &Strided, len: usize| -> Vec<f32> {
            s.data[..len].iter().map(|v| round_to_bf16(*v)).collect()
        };
        let (ar, br) = (round(&a, m * k), round(&b, k * n));
        let want = reference(
            m,
            ku,
            n,
            &Strided { data: &ar, ..a },
            &Strided { data: &br, ..b },
        );
        let mut forms = vec![];
        if crate::isa::Isa::Avx512.supported() {
            let pairs = PackedRhs::new(b, k, n).with_precision(Precision::Bf16);
            assert!(matches!(pairs.bf16, Some(Bf16Rhs::Pairs(_))) && pairs.data.is_empty());
            forms.push(("pairs", pairs));
        }
        let mut rounded = PackedRhs::new(b, k, n);
        rounded.data.iter_mut().for_each(|v| *v = round_to_bf16(*v));
        rounded.bf16 = Some(Bf16Rhs::Rounded);
        forms.push(("rounded", rounded));
        for (form, packed) in &forms {
            for accumulate in [false, true] {
                let mut c = vec![0.5f32; m * n];
                gemm_packed_prefix(m, a, packed, ku, &mut c, n, accumulate);
                for (i, (got, w)) in c.iter().zip(&want).enumerate() {
                    let w = w + if accumulate { 0.5 } else { 0.0 };
                    assert!(
                        (*got as f64 - w).abs() < 1e-5 * (1.0 + w.abs()),
                        "{form} {m}x{k}x{n} over {ku} acc {accumulate} at {i}: {got} vs {w}"
                    );
                }
            }
        }
    }
}

/// Packing the transpose of side-by-side row-major blocks gives the
/// same panels as packing the joined matrix read by columns.
#[test]
fn packing_transposed_blocks_equals_packing_by_columns() {
    for (n, widths) in [
        (512, vec![28, 1, 128]),
        (37, vec![5, 9]),
        (8, vec![3]),
        (17, vec![1, 1]),
    ] {
        let blocks: Vec<Vec<f32>> = widths
            .iter()
            .enumerate()
            .map(|(b, &w)| test_values(n * w, b + 1))
            .collect();
        let k: usize = widths.iter().sum();
        let joined: Vec<f32> = (0..n)
            .flat_map(|r| {
                let blocks = &blocks;
                widths
                    .iter()
                    .enumerate()
                    .flat_map(move |(b, &w)| blocks[b][r * w..(r + 1) * w].iter().copied())
            })
            .collect();
        let by_columns = PackedRhs::new(
            Strided {
                data: &joined,
                rs: 1,
                cs: k,
            },
            k,
            n,
        );
        let pairs: Vec<(&[f32], usize)> = blocks
            .iter()
            .zip(&widths)
            .map(|(b, &w)| (&b[..], w))
            .collect();
        let packed = PackedRhs::transposed(&pairs, n);
        assert_eq!((packed.k, packed.n), (k, n));
        assert_eq!(packed.data, by_columns.data, "n {n}, widths {widths:?}");
    }
}

/// Over a prefix of K the product is that of A's first columns and B's
/// first rows: the panels' stride stays B's whole K.
#[test]
fn prefix_products_use_only_the_first_rows() {
    for (m, k, n, ku) in [
        (13, 7, 37, 3),
        (64, 157, 512, 29),
        (8, 5, 20, 0),
        (5, 4, 16, 4),
    ] {
        let (a, b) = (test_values(m * k, 5), test_values(k * n, 6));
        let a = Strided {
            data: &a,
            rs: k,
            cs: 1,
        };
        let b = Strided {
            data: &b,
            rs: n,
            cs: 1,
        };
        let want = reference(m, ku, n, &a, &b);
        let mut c = vec![0.5f32; m * n];
        gemm_packed_prefix(m, a, &PackedRhs::new(b, k, n), ku, &mut c, n, false);
        for (got, expect) in c.iter().zip(&want) {
            assert!((*got as f64 - expect).abs() < 1e-4, "{m}x{k}x{n} over {ku}");
        }
    }
}

/// Every tile height (1 to 6, and the 4 + 4 and 4 + 3 endings), full
/// and partial panels, both layouts of B and of A, and both write modes.
#[test]
fn packed_products_match_the_definition() {
    for (m, k, n) in [
        (13, 7, 37),
        (64, 128, 48),
        (32, 9, 16),
        (8, 5, 20),
        (5, 3, 17),
        (2, 4, 9),
        (1, 1, 1),
        (3, 0, 5),
        (7, 19, 8),
    ] {
        let a_rm = test_values(m * k, 1);
        let a_cm = test_values(m * k, 2);
        let b_rm = test_values(k * n, 3);
        let b_cm = test_values(k * n, 4);
        let a_views = [
            Strided {
                data: &a_rm,
                rs: k,
                cs: 1,
            },
            Strided {
                data: &a_cm,
                rs: 1,
                cs: m,
            },
        ];
        let b_views = [
            Strided {
                data: &b_rm,
                rs: n,
                cs: 1,
            },
            Strided {
                data: &b_cm,
                rs: 1,
                cs: k,
            },
        ];
        for a in &a_views {
            for b in &b_views {
                let want = reference(m, k, n, a, b);
                let packed = PackedRhs::new(*b, k, n);
                // C with a wider leading dimension: the gap must stay untouched
                let ldc = n + 3;
                for (isa, accumulate) in supported_paths()
                    .into_iter()
                    .flat_map(|isa| [(isa, false), (isa, true)])
                {
                    let mut c = vec![0.5f32; m * ldc];
                    gemm_packed_on(isa, m, *a, &packed, k, &mut c, ldc, accumulate);
                    if isa == Isa::Avx512 {
                        // the same sums in the same order as AVX2's
                        let mut on_avx2 = vec![0.5f32; m * ldc];
                        gemm_packed_on(Isa::Avx2, m, *a, &packed, k, &mut on_avx2, ldc, accumulate);
                        assert_eq!(c, on_avx2, "{m}x{k}x{n}: AVX-512 and AVX2 differ");
                    }
                    for i in 0..m {
                        for j in 0..ldc {
                            let got = c[i * ldc + j] as f64;
                            let expect = match j < n {
                                true => want[i * n + j] + if accumulate { 0.5 } else { 0.0 },
                                false => 0.5,
                            };
                            assert!(
                                (got - expect).abs() < 1e-4,
                                "{isa}: {m}x{k}x{n} acc {accumulate} ({i},{j}): {got} vs {expect}"
                            );
                        }
                    }
                }
            }
        }
    }
}
