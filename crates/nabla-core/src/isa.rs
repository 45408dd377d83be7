//! Which vector instructions the CPU kernels use: 512-bit AVX-512, 256-bit
//! AVX2 with FMA, or plain loops.
//!
//! The path is chosen once per process: `NABLA_ISA=avx512|avx2|scalar`
//! when set (a path the CPU lacks is an error, not a silent fallback), else
//! the best the CPU runs at full speed. AVX-512 is the default where the
//! CPU has AVX-512F, BW, VL and DQ, except on AMD's Zen 4 (family 0x19),
//! which executes each 512-bit instruction as two 256-bit halves: there
//! AVX2 reaches the same peak with the kernels measured longest. Each path
//! gives the same results run after run; paths differ in rounding only
//! (their sums run in other orders), within the fixtures' tolerances. The
//! scalar path makes nabla's own kernels plain loops; the `gemm` crate,
//! which the AVX2 and scalar paths use for large products, picks its
//! kernels itself.

use std::sync::OnceLock;

/// A family of kernels, from the plainest to the widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain loops (what the compiler vectorizes for the baseline target).
    Scalar,
    /// 256-bit AVX2 with FMA.
    Avx2,
    /// 512-bit AVX-512 (F, BW, VL, DQ), with AVX2 and FMA.
    Avx512,
}

impl Isa {
    /// Every path, plainest first.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// The name `NABLA_ISA` takes.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the path.
    pub fn supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.supported()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512dq")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The path from a `NABLA_ISA` value; an error names what is wrong.
    pub fn parse(value: &str) -> Result<Isa, String> {
        let isa = Isa::ALL
            .into_iter()
            .find(|i| i.name() == value.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("NABLA_ISA={value:?}: expected avx512, avx2 or scalar"))?;
        if !isa.supported() {
            return Err(format!(
                "NABLA_ISA={value}: this CPU lacks {} (it runs {})",
                match isa {
                    Isa::Avx512 => "AVX-512 (F, BW, VL, DQ)",
                    _ => "AVX2 with FMA",
                },
                Isa::best().name()
            ));
        }
        Ok(isa)
    }

    /// The widest path this CPU runs at full speed (see the module docs).
    pub fn best() -> Isa {
        if Isa::Avx512.supported() && !executes_512_in_halves() {
            Isa::Avx512
        } else if Isa::Avx2.supported() {
            Isa::Avx2
        } else {
            Isa::Scalar
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the CPU is an AMD family 0x19 (Zen 3 and Zen 4; only Zen 4 has
/// AVX-512), whose 512-bit instructions issue as two 256-bit halves.
fn executes_512_in_halves() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        // (CPUID leaves 0 and 1 exist on every x86-64)
        let (vendor, signature) = (__cpuid(0), __cpuid(1).eax);
        let amd = (vendor.ebx, vendor.edx, vendor.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163);
        let family = ((signature >> 8) & 0xf) + ((signature >> 20) & 0xff);
        amd && family == 0x19
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

static ACTIVE: OnceLock<Result<Isa, String>> = OnceLock::new();

fn active() -> &'static Result<Isa, String> {
    ACTIVE.get_or_init(|| match std::env::var("NABLA_ISA") {
        Ok(v) if !v.is_empty() => Isa::parse(&v),
        _ => Ok(Isa::best()),
    })
}

/// The path the kernels take. A bad `NABLA_ISA` falls back to the best
/// path here; [`check_isa`] reports it (the `nabla` binary calls it first).
pub fn isa() -> Isa {
    active().clone().unwrap_or_else(|_| Isa::best())
}

/// The error of a `NABLA_ISA` that names no path, or one the CPU lacks.
pub fn check_isa() -> Result<Isa, String> {
    active().clone()
}

/// Whether the CPU has AVX-512 VNNI (`VPDPBUSD`: u8 × s8 dot products of
/// four into i32) besides the AVX-512 path's features.
pub fn has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        Isa::Avx512.supported() && is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU runs `isa`'s int8 kernels ([`Isa::Avx512`] stands for
/// the VNNI kernels, which need VNNI besides AVX-512).
pub fn int8_supported(isa: Isa) -> bool {
    match isa {
        Isa::Avx512 => has_vnni(),
        _ => isa.supported(),
    }
}

/// The path of the int8 kernels (`backend/cpu/int8_gemm.rs`;
/// [`Isa::Avx512`] is VNNI). VNNI wherever the CPU has it, Zen 4 included:
/// there AVX2 is the f32 default because 512-bit FMAs gain nothing, but a
/// `VPDPBUSD` does the work of eight AVX2 instructions on int8. A
/// `NABLA_ISA` that names a path is followed: `avx2` and `scalar` test the
/// fallbacks, and `avx512` without VNNI runs AVX2's int8 kernels.
pub fn int8_isa() -> Isa {
    let chosen = isa();
    let named = std::env::var("NABLA_ISA").is_ok_and(|v| !v.is_empty());
    match chosen {
        Isa::Scalar => Isa::Scalar,
        _ if has_vnni() && (chosen == Isa::Avx512 || !named) => Isa::Avx512,
        _ => Isa::Avx2,
    }
}

/// The single-thread peak of fused multiply-adds on `isa`'s vectors, in
/// GFLOP/s (two per lane each), measured over about `seconds`:
/// independent chains of FMAs, 12 on AVX2's 16 registers (16 would spill
/// with the two constants) and 24 on AVX-512's 32, more than two FMA units
/// of latency 4 or 5 need. `None` for the scalar path or a
/// path the CPU lacks. What a kernel's speed is measured against.
pub fn fma_peak(isa: Isa, seconds: f64) -> Option<f64> {
    if isa == Isa::Scalar || !isa.supported() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        const ROUNDS: usize = 1 << 16;
        let (lanes, mut best) = (if isa == Isa::Avx512 { 16 } else { 8 }, f64::INFINITY);
        let start = std::time::Instant::now();
        while best.is_infinite() || start.elapsed().as_secs_f64() < seconds {
            let t = std::time::Instant::now();
            // SAFETY: the CPU has the path's instructions (checked above).
            let sink = unsafe {
                match isa {
                    Isa::Avx512 => peak::chains_512(ROUNDS),
                    _ => peak::chains_256(ROUNDS),
                }
            };
            std::hint::black_box(sink);
            best = best.min(t.elapsed().as_secs_f64());
        }
        let chains = if isa == Isa::Avx512 { 24 } else { 12 };
        Some((ROUNDS * chains * lanes * 2) as f64 / best / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = seconds;
        None
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_op_in_unsafe_fn)]
mod peak {
    use std::arch::x86_64::*;

    /// `rounds` × 12 chains of FMAs on 8-lane vectors.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn chains_256(rounds: usize) -> f32 {
        let (m, a) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); 12];
        for _ in 0..rounds {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, m, a);
            }
        }
        let mut s = _mm256_setzero_ps();
        for v in acc {
            s = _mm256_add_ps(s, v);
        }
        _mm256_cvtss_f32(s)
    }

    /// `rounds` × 24 chains of FMAs on 16-lane vectors.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn chains_512(rounds: usize) -> f32 {
        let (m, a) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); 24];
        for _ in 0..rounds {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, m, a);
            }
        }
        _mm512_reduce_add_ps(
            acc.iter()
                .fold(_mm512_setzero_ps(), |s, v| _mm512_add_ps(s, *v)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unsupported_or_unknown_paths_are_errors() {
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            assert_eq!(Isa::parse(isa.name()), Ok(isa));
            assert_eq!(Isa::parse(&isa.name().to_uppercase()), Ok(isa));
        }
        let err = Isa::parse("sse9").unwrap_err();
        assert!(err.contains("NABLA_ISA=\"sse9\"") && err.contains("avx512, avx2 or scalar"));
        for isa in Isa::ALL.into_iter().filter(|i| !i.supported()) {
            assert!(Isa::parse(isa.name())
                .unwrap_err()
                .contains("this CPU lacks"));
        }
        assert!(Isa::best().supported() && isa().supported());
    }
}
