//! 16-bit floats: `bfloat16` (f32's 8-bit exponent, 7 bits of mantissa)
//! and IEEE binary16, `f16` (5-bit exponent, 10 bits of mantissa), as
//! PyTorch's `torch.bfloat16` and `torch.float16` store them.
//!
//! Conversion from f32 rounds to nearest, ties to even, as PyTorch does:
//! values past a format's largest become infinities, values too small for
//! f16's subnormals become zeros (signed), a NaN becomes a quiet NaN
//! (bf16: PyTorch's canonical `0x7FC0`; f16: the sign kept, `0x7E00`).
//! Conversion to f32 is exact: every bf16 and f16 value is an f32.

use std::fmt;

/// A bfloat16 value (its bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bf16(pub u16);

/// An IEEE binary16 value (its bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct F16(pub u16);

impl Bf16 {
    /// `x` rounded to the nearest bfloat16, ties to even.
    pub fn from_f32(x: f32) -> Bf16 {
        if x.is_nan() {
            return Bf16(0x7FC0);
        }
        let bits = x.to_bits();
        // adding 0x7FFF plus the kept part's lowest bit rounds the 16
        // dropped bits to nearest, a tie towards the even kept part; a
        // carry runs into the exponent (up to infinity) as it should
        let round = 0x7FFF + ((bits >> 16) & 1);
        Bf16((bits.wrapping_add(round) >> 16) as u16)
    }

    /// The value as f32 (exact).
    pub fn to_f32(self) -> f32 {
        f32::from_bits(u32::from(self.0) << 16)
    }
}

impl F16 {
    /// `x` rounded to the nearest binary16, ties to even: subnormals
    /// below 2⁻¹⁴, infinity from 65,520 on.
    pub fn from_f32(x: f32) -> F16 {
        let bits = x.to_bits();
        let sign = ((bits >> 16) & 0x8000) as u16;
        let abs = bits & 0x7FFF_FFFF;
        if abs > 0x7F80_0000 {
            return F16(sign | 0x7E00); // NaN
        }
        if abs >= 0x4780_0000 {
            return F16(sign | 0x7C00); // ≥ 2¹⁶ (and ∞): infinity
        }
        if abs >= 0x3880_0000 {
            // a normal f16: the exponent rebiased (127 → 15), the mantissa
            // rounded at its 13th bit; a carry may reach infinity (65,520)
            let rounded = abs + 0x0FFF + ((abs >> 13) & 1);
            return F16(sign | ((rounded - (112 << 23)) >> 13) as u16);
        }
        if abs >= 0x3300_0000 {
            // a subnormal f16: multiples of 2⁻²⁴
            let (exp, mant) = (abs >> 23, (abs & 0x7F_FFFF) | 0x80_0000);
            let shift = 126 - exp; // 14 (2⁻¹⁵) to 24 (2⁻²⁵)
            let (kept, rest, half) = (mant >> shift, mant & ((1 << shift) - 1), 1 << (shift - 1));
            let up = rest > half || (rest == half && kept & 1 == 1);
            return F16(sign | (kept + u32::from(up)) as u16);
        }
        F16(sign) // below half the smallest subnormal: zero
    }

    /// The value as f32 (exact): the exponent rebiased (15 → 127), the
    /// mantissa shifted up; subnormals are `mantissa · 2⁻²⁴`.
    pub fn to_f32(self) -> f32 {
        let h = self.0;
        let sign = u32::from(h & 0x8000) << 16;
        let (exp, mant) = (u32::from(h >> 10) & 0x1F, u32::from(h) & 0x3FF);
        match exp {
            0 => {
                let v = mant as f32 * 2f32.powi(-24);
                f32::from_bits(v.to_bits() | sign)
            }
            0x1F => f32::from_bits(sign | 0x7F80_0000 | mant << 13),
            _ => f32::from_bits(sign | (exp + 112) << 23 | mant << 13),
        }
    }
}

impl fmt::Display for Bf16 {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Display::fmt(&self.to_f32(), f)
    }
}

impl fmt::Display for F16 {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Display::fmt(&self.to_f32(), f)
    }
}

/// The 16-bit formats, for conversions of whole buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HalfKind {
    Bf16,
    F16,
}

impl HalfKind {
    /// `values` rounded to this format, as little-endian bytes (what
    /// safetensors stores).
    pub fn encode(self, values: &[f32]) -> Vec<u8> {
        let bits = |v: f32| match self {
            HalfKind::Bf16 => Bf16::from_f32(v).0,
            HalfKind::F16 => F16::from_f32(v).0,
        };
        values.iter().flat_map(|&v| bits(v).to_le_bytes()).collect()
    }

    /// Little-endian 16-bit values as f32 (exact).
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        bytes
            .chunks_exact(2)
            .map(|b| {
                let bits = u16::from_le_bytes([b[0], b[1]]);
                match self {
                    HalfKind::Bf16 => Bf16(bits).to_f32(),
                    HalfKind::F16 => F16(bits).to_f32(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even() {
        let b = |x: f32| Bf16::from_f32(x).0;
        assert_eq!(b(1.0), 0x3F80);
        // 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷: to the even, 1
        assert_eq!(b(1.0 + 2f32.powi(-8)), 0x3F80);
        // 1 + 3·2⁻⁸ halfway between 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶: up
        assert_eq!(b(1.0 + 3.0 * 2f32.powi(-8)), 0x3F82);
        assert_eq!(b(f32::INFINITY), 0x7F80);
        assert_eq!(b(f32::NEG_INFINITY), 0xFF80);
        assert_eq!(b(f32::MAX), 0x7F80, "past bf16's largest: infinity");
        assert_eq!(b(-0.0), 0x8000);
        assert_eq!(b(f32::NAN), 0x7FC0);
        assert_eq!(
            b(f32::from_bits(0x0000_8000)),
            0x0000,
            "a subnormal tie rounds to even"
        );
        assert_eq!(b(f32::from_bits(0x0001_8000)), 0x0002);
        assert_eq!(Bf16(0x4049).to_f32(), 3.140625);
        assert_eq!(format!("{}", Bf16(0xC000)), "-2");
    }

    #[test]
    fn f16_rounds_to_nearest_even_with_subnormals() {
        let h = |x: f32| F16::from_f32(x).0;
        assert_eq!(h(1.0), 0x3C00);
        assert_eq!(h(65504.0), 0x7BFF);
        assert_eq!(h(65519.0), 0x7BFF);
        assert_eq!(h(65520.0), 0x7C00, "halfway to 2¹⁶: infinity");
        assert_eq!(h(-1e10), 0xFC00);
        assert_eq!(h(2f32.powi(-14)), 0x0400, "the smallest normal");
        assert_eq!(h(2f32.powi(-24)), 0x0001, "the smallest subnormal");
        assert_eq!(h(2f32.powi(-25)), 0x0000, "half of it: to even, zero");
        assert_eq!(h(1.5 * 2f32.powi(-24)), 0x0002, "1.5 of it: to even, 2");
        assert_eq!(h(-2f32.powi(-26)), 0x8000);
        assert_eq!(h(f32::NAN) & 0x7E00, 0x7E00);
        // 1 + 2⁻¹¹ halfway between 1 and 1 + 2⁻¹⁰: to even
        assert_eq!(h(1.0 + 2f32.powi(-11)), 0x3C00);
        assert_eq!(h(1.0 + 3.0 * 2f32.powi(-11)), 0x3C02);
        // every f16 converts to f32 and back to itself
        for bits in 0..=u16::MAX {
            let v = F16(bits).to_f32();
            if v.is_nan() {
                assert!(F16::from_f32(v).to_f32().is_nan());
            } else {
                assert_eq!(F16::from_f32(v).0, bits, "{bits:#06x} = {v}");
            }
        }
        assert_eq!(
            HalfKind::F16.decode(&HalfKind::F16.encode(&[0.5, -3.0])),
            [0.5, -3.0]
        );
    }
}
