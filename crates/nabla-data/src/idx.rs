//! The IDX format of MNIST-style files, raw or gzip-compressed.
//!
//! Layout (big-endian): two zero bytes, a type byte (0x08 = unsigned byte,
//! the only one MNIST uses), the number of dimensions, one u32 per
//! dimension, then the values row-major. `train-images-idx3-ubyte` is
//! `[N, 28, 28]`, `train-labels-idx1-ubyte` is `[N]`.

use std::io::Read;
use std::path::Path;

use crate::error::{DataError, Result};

/// Largest unpacked IDX file accepted (full MNIST's largest is 47 MB).
pub const MAX_UNPACKED: u64 = 1 << 31;

/// A u8 array read from an IDX file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file, gunzipping it when it starts with the gzip magic.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode_idx(&raw).map_err(|msg| DataError::invalid(path, msg))
}

/// Gunzips (when the bytes start with the gzip magic) and parses IDX bytes.
pub fn decode_idx(raw: &[u8]) -> std::result::Result<IdxArray, String> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        // a bound on the unpacked size, so a hostile file cannot exhaust memory
        flate2::read::GzDecoder::new(raw)
            .take(MAX_UNPACKED + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("corrupt or truncated gzip data: {e}"))?;
        if out.len() as u64 > MAX_UNPACKED {
            return Err(format!(
                "unpacks to more than {MAX_UNPACKED} bytes; not an IDX data set"
            ));
        }
        parse_idx(&out)
    } else {
        parse_idx(raw)
    }
}

/// Parses IDX bytes; the error says what is wrong (the caller adds the file).
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!(
            "truncated header: {} bytes, an IDX header needs at least 4",
            bytes.len()
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "wrong magic number 0x{:02x}{:02x}{:02x}{:02x}: not an IDX file",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ));
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "unsupported IDX data type 0x{:02x} (only unsigned bytes, 0x08, are supported)",
            bytes[2]
        ));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 || ndim > 4 {
        return Err(format!(
            "unsupported number of dimensions {ndim} (expected 1 to 4)"
        ));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(format!(
            "truncated header: {} bytes, {ndim} dimensions need {header}",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("dimensions {dims:?} are too large"))?;
    let body = bytes.len() - header;
    if body < count {
        return Err(format!(
            "truncated body: dimensions {dims:?} need {count} bytes of data, found {body}"
        ));
    }
    if body > count {
        return Err(format!(
            "{} unexpected bytes after the data of dimensions {dims:?}",
            body - count
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Writes an IDX u8 file (used by tests and tools), atomically.
pub fn write_idx(path: impl AsRef<Path>, dims: &[usize], data: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        bytes.extend_from_slice(&(d as u32).to_be_bytes());
    }
    bytes.extend_from_slice(data);
    crate::write_atomically(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(dims: &[u32]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        dims.iter()
            .for_each(|d| b.extend_from_slice(&d.to_be_bytes()));
        b
    }

    #[test]
    fn parses_and_rejects() {
        let mut ok = header(&[2, 3]);
        ok.extend([1, 2, 3, 4, 5, 6]);
        assert_eq!(
            parse_idx(&ok).unwrap(),
            IdxArray {
                dims: vec![2, 3],
                data: vec![1, 2, 3, 4, 5, 6]
            }
        );
        assert!(parse_idx(&ok[..ok.len() - 1])
            .unwrap_err()
            .starts_with("truncated body"));
        assert!(parse_idx(&ok[..6])
            .unwrap_err()
            .starts_with("truncated header"));
        assert!(parse_idx(&[1, 2])
            .unwrap_err()
            .starts_with("truncated header"));
        let mut bad = ok.clone();
        bad[0] = 0x1f;
        assert!(parse_idx(&bad)
            .unwrap_err()
            .starts_with("wrong magic number"));
        let mut long = ok.clone();
        long.push(0);
        assert!(parse_idx(&long).unwrap_err().contains("unexpected bytes"));
        let mut f32s = ok;
        f32s[2] = 0x0d;
        assert!(parse_idx(&f32s)
            .unwrap_err()
            .contains("unsupported IDX data type 0x0d"));
        assert!(parse_idx(&header(&[u32::MAX, u32::MAX, u32::MAX, u32::MAX])).is_err());
    }
}
