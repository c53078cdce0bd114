//! Which instruction sets this CPU has, capped by the `SPARQ_ISA` environment variable.
//!
//! Every dispatch table in this crate starts from the scalar floor and lets each ISA tier at or
//! below [`Isa::active`] overwrite the slots it does better. `SPARQ_ISA` caps the tier so that one
//! machine can run the tests of every path: `SPARQ_ISA=scalar|avx2|avx512vnni` on x86-64,
//! `SPARQ_ISA=scalar|neon|dotprod|i8mm` on aarch64. A cap above what the CPU has is ignored (the
//! CPU's best is used); an unknown name falls back to the CPU's best with a warning on stderr.

use std::sync::OnceLock;

/// An instruction-set tier. Tiers of one architecture are ordered: a higher tier implies the
/// features of the lower ones (as detected here, not merely as architected).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust, always present.
    Scalar,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512 F/BW/DQ/VL + VNNI (`vpdpbusd`).
    Avx512Vnni,
    /// aarch64 Advanced SIMD.
    Neon,
    /// aarch64 NEON + `sdot`/`udot` (FEAT_DotProd).
    Dotprod,
    /// aarch64 NEON + dotprod + `smmla` (FEAT_I8MM).
    I8mm,
}

impl Isa {
    /// The name used by `SPARQ_ISA` and in kernel names.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
            Isa::Neon => "neon",
            Isa::Dotprod => "dotprod",
            Isa::I8mm => "i8mm",
        }
    }

    /// Parses a `SPARQ_ISA` value.
    pub fn from_name(s: &str) -> Option<Isa> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "scalar" | "generic" => Isa::Scalar,
            "avx2" => Isa::Avx2,
            "avx512vnni" | "avx512" => Isa::Avx512Vnni,
            "neon" => Isa::Neon,
            "dotprod" => Isa::Dotprod,
            "i8mm" => Isa::I8mm,
            _ => return None,
        })
    }

    /// The best tier this CPU supports, ignoring `SPARQ_ISA`.
    pub fn detected() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512vnni")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx512Vnni;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
            Isa::Scalar
        }
        #[cfg(target_arch = "aarch64")]
        {
            let neon = std::arch::is_aarch64_feature_detected!("neon");
            let dot = std::arch::is_aarch64_feature_detected!("dotprod");
            let i8mm = std::arch::is_aarch64_feature_detected!("i8mm");
            if neon && dot && i8mm {
                return Isa::I8mm;
            }
            if neon && dot {
                return Isa::Dotprod;
            }
            if neon {
                return Isa::Neon;
            }
            Isa::Scalar
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            Isa::Scalar
        }
    }

    /// The tier the dispatch tables use: [`Isa::detected`] capped by `SPARQ_ISA`. Read once.
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| {
            let best = Isa::detected();
            match std::env::var("SPARQ_ISA") {
                Ok(v) => match Isa::from_name(&v) {
                    Some(cap) => cap_to(best, cap),
                    None => {
                        eprintln!("sparq: unknown SPARQ_ISA={v:?}; using {}", best.name());
                        best
                    }
                },
                Err(_) => best,
            }
        })
    }

    /// True when kernels of tier `self` may run under the active tier.
    pub fn enabled(self) -> bool {
        self == Isa::Scalar || (same_family(self, Isa::active()) && self <= Isa::active())
    }
}

fn same_family(a: Isa, b: Isa) -> bool {
    let fam = |i: Isa| match i {
        Isa::Scalar => 0,
        Isa::Avx2 | Isa::Avx512Vnni => 1,
        Isa::Neon | Isa::Dotprod | Isa::I8mm => 2,
    };
    fam(a) == fam(b)
}

/// The highest tier ≤ `cap` that `best` provides (a cap of another architecture means scalar).
fn cap_to(best: Isa, cap: Isa) -> Isa {
    if cap == Isa::Scalar || !same_family(best, cap) {
        return if same_family(best, cap) {
            cap
        } else {
            Isa::Scalar
        };
    }
    best.min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps() {
        assert_eq!(cap_to(Isa::Avx512Vnni, Isa::Avx2), Isa::Avx2);
        assert_eq!(cap_to(Isa::Avx2, Isa::Avx512Vnni), Isa::Avx2);
        assert_eq!(cap_to(Isa::Avx512Vnni, Isa::Scalar), Isa::Scalar);
        assert_eq!(cap_to(Isa::I8mm, Isa::Neon), Isa::Neon);
        assert_eq!(cap_to(Isa::Neon, Isa::Avx2), Isa::Scalar);
        assert_eq!(Isa::from_name("AVX2"), Some(Isa::Avx2));
        assert_eq!(Isa::from_name("sse"), None);
        assert!(Isa::Scalar.enabled());
    }
}
