//! The core's peak of fused multiply-adds for each vector width this CPU
//! has, on one thread and on every thread of the pool at once: what the
//! kernels' GFLOP/s in docs/benchmarks.md are fractions of.
//!
//!     cargo bench -p nabla-core --bench fma_peak
//!
//! A CPU that executes 512-bit vectors in two 256-bit halves (AMD Zen 4)
//! shows the same peak for both widths; one with full-width units, twice.

use nabla_core::isa::{fma_peak, Isa};

/// `vendor family model (name)` and the flags that matter, from /proc/cpuinfo.
fn cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
            .and_then(|l| l.split_once(':'))
            .map_or(String::from("?"), |(_, v)| v.trim().to_string())
    };
    let flags = field("flags");
    let wanted = [
        "avx2",
        "fma",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512_bf16",
        "avx512_vnni",
    ];
    let has: Vec<&str> = wanted
        .into_iter()
        .filter(|f| flags.split(' ').any(|x| x == *f))
        .collect();
    format!(
        "{} family {} model {} ({}); {}",
        field("vendor_id"),
        field("cpu family"),
        field("model"),
        field("model name"),
        has.join(" ")
    )
}

fn main() {
    println!("# FMA peak; {}", cpu());
    println!(
        "# the kernels' path: {} (NABLA_ISA to force one)",
        nabla_core::isa()
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for isa in [Isa::Avx2, Isa::Avx512] {
        let Some(one) = fma_peak(isa, 0.3) else {
            println!("# {isa}: not on this CPU");
            continue;
        };
        // every core at once: the sum of what each thread reached
        let all: f64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| s.spawn(move || fma_peak(isa, 0.3).unwrap_or(0.0)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
        });
        println!("fma_peak_{isa}_1thread {one:.1} GFLOP/s");
        println!("fma_peak_{isa}_{threads}threads {all:.1} GFLOP/s");
    }
}
