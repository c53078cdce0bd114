//! Reading and writing NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), C order only.
//!
//! Used by the runner for inputs, outputs and goldens. A `.npy` file is untrusted: the header is
//! parsed strictly, the shape product is checked for overflow, and the data length must match.

use std::fmt;
use std::io::Write;
use std::path::Path;

/// Element types sparq reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NpyDtype {
    F32,
    F16,
    F64,
    I8,
    U8,
    I16,
    I32,
    I64,
    Bool,
}

impl NpyDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            NpyDtype::I8 | NpyDtype::U8 | NpyDtype::Bool => 1,
            NpyDtype::F16 | NpyDtype::I16 => 2,
            NpyDtype::F32 | NpyDtype::I32 => 4,
            NpyDtype::F64 | NpyDtype::I64 => 8,
        }
    }

    /// The little-endian `descr` string NumPy writes.
    pub fn descr(self) -> &'static str {
        match self {
            NpyDtype::F32 => "<f4",
            NpyDtype::F16 => "<f2",
            NpyDtype::F64 => "<f8",
            NpyDtype::I8 => "|i1",
            NpyDtype::U8 => "|u1",
            NpyDtype::I16 => "<i2",
            NpyDtype::I32 => "<i4",
            NpyDtype::I64 => "<i8",
            NpyDtype::Bool => "|b1",
        }
    }

    fn from_descr(d: &str) -> Option<NpyDtype> {
        // Single-byte types may carry any byte-order mark; wider ones must be little-endian
        // ('<', or '=' / no mark, which mean native: sparq only runs on little-endian targets).
        let (order, code) = match d.as_bytes().first() {
            Some(b'<' | b'|' | b'=') => (d.as_bytes()[0], &d[1..]),
            Some(b'>') => (b'>', &d[1..]),
            _ => (b'=', d),
        };
        let t = match code {
            "f4" => NpyDtype::F32,
            "f2" => NpyDtype::F16,
            "f8" => NpyDtype::F64,
            "i1" => NpyDtype::I8,
            "u1" => NpyDtype::U8,
            "i2" => NpyDtype::I16,
            "i4" => NpyDtype::I32,
            "i8" => NpyDtype::I64,
            "b1" => NpyDtype::Bool,
            _ => return None,
        };
        if order == b'>' && t.size() > 1 {
            return None;
        }
        Some(t)
    }
}

impl fmt::Display for NpyDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            NpyDtype::F32 => "float32",
            NpyDtype::F16 => "float16",
            NpyDtype::F64 => "float64",
            NpyDtype::I8 => "int8",
            NpyDtype::U8 => "uint8",
            NpyDtype::I16 => "int16",
            NpyDtype::I32 => "int32",
            NpyDtype::I64 => "int64",
            NpyDtype::Bool => "bool",
        };
        f.write_str(s)
    }
}

/// Why a `.npy` could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not a .npy file: {0}")]
    Format(String),
    #[error(
        "unsupported .npy dtype {0:?} (sparq reads f2/f4/f8, i1/u1/i2/i4/i8, b1, little-endian)"
    )]
    Dtype(String),
    #[error("Fortran-order .npy arrays are not supported; save with np.ascontiguousarray")]
    FortranOrder,
    #[error(".npy data is {found} bytes but shape {shape:?} of {dtype} needs {expected}")]
    Length {
        shape: Vec<usize>,
        dtype: NpyDtype,
        expected: usize,
        found: usize,
    },
}

/// An n-dimensional array as stored in a `.npy`: element type, shape and little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub dtype: NpyDtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl NpyArray {
    /// An array from raw little-endian bytes; checks that the length matches the shape.
    pub fn new(dtype: NpyDtype, shape: Vec<usize>, data: Vec<u8>) -> Result<NpyArray, NpyError> {
        let expected = byte_len(&shape, dtype)
            .ok_or_else(|| NpyError::Format(format!("shape {shape:?} overflows")))?;
        if expected != data.len() {
            return Err(NpyError::Length {
                shape,
                dtype,
                expected,
                found: data.len(),
            });
        }
        Ok(NpyArray { dtype, shape, data })
    }

    /// An f32 array.
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Result<NpyArray, NpyError> {
        NpyArray::new(NpyDtype::F32, shape, bytemuck::cast_slice(values).to_vec())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// True if the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements widened or converted to f32 (integers as their values, not dequantized).
    pub fn to_f32(&self) -> Vec<f32> {
        let d = &self.data;
        match self.dtype {
            NpyDtype::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            NpyDtype::F16 => d
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            NpyDtype::F64 => d
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            NpyDtype::I8 => d.iter().map(|&b| b as i8 as f32).collect(),
            NpyDtype::U8 | NpyDtype::Bool => d.iter().map(|&b| b as f32).collect(),
            NpyDtype::I16 => d
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
                .collect(),
            NpyDtype::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            NpyDtype::I64 => d
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
        }
    }

    /// Parses a `.npy` image.
    pub fn from_bytes(bytes: &[u8]) -> Result<NpyArray, NpyError> {
        const MAGIC: &[u8] = b"\x93NUMPY";
        if bytes.len() < 10 || &bytes[..6] != MAGIC {
            return Err(NpyError::Format("missing the \\x93NUMPY magic".into()));
        }
        let major = bytes[6];
        let (header_len, start) = match major {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
            2 | 3 => {
                if bytes.len() < 12 {
                    return Err(NpyError::Format("truncated header length".into()));
                }
                (
                    u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                    12,
                )
            }
            v => return Err(NpyError::Format(format!("unknown format version {v}"))),
        };
        let end = start
            .checked_add(header_len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| NpyError::Format("header runs past the end of the file".into()))?;
        let header = std::str::from_utf8(&bytes[start..end])
            .map_err(|_| NpyError::Format("header is not text".into()))?;
        let (dtype, fortran, shape) = parse_header(header)?;
        if fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
            return Err(NpyError::FortranOrder);
        }
        NpyArray::new(dtype, shape, bytes[end..].to_vec())
    }

    /// Reads a `.npy` file.
    pub fn read(path: impl AsRef<Path>) -> Result<NpyArray, NpyError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| NpyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        NpyArray::from_bytes(&bytes)
    }

    /// The `.npy` image of this array (format 1.0, or 2.0 if the header needs it).
    pub fn to_bytes(&self) -> Vec<u8> {
        let shape = match self.shape.len() {
            0 => "()".to_string(),
            1 => format!("({},)", self.shape[0]),
            _ => format!(
                "({})",
                self.shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
            self.dtype.descr(),
            shape
        );
        // Pad with spaces so that the data starts at a multiple of 64, ending in a newline.
        let mut prefix = 10;
        if header.len() + 1 + prefix > u16::MAX as usize {
            prefix = 12;
        }
        let unpadded = prefix + header.len() + 1;
        header.extend(std::iter::repeat_n(
            ' ',
            unpadded.next_multiple_of(64) - unpadded,
        ));
        header.push('\n');
        let mut out = Vec::with_capacity(prefix + header.len() + self.data.len());
        out.extend_from_slice(b"\x93NUMPY");
        if prefix == 10 {
            out.extend_from_slice(&[1, 0]);
            out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&[2, 0]);
            out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&self.data);
        out
    }

    /// Writes this array to a `.npy` file.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), NpyError> {
        let path = path.as_ref();
        let io = |source| NpyError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut f = std::fs::File::create(path).map_err(io)?;
        f.write_all(&self.to_bytes()).map_err(io)
    }
}

fn byte_len(shape: &[usize], dtype: NpyDtype) -> Option<usize> {
    shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
}

/// Parses the Python dict literal of a `.npy` header: `descr`, `fortran_order`, `shape`.
fn parse_header(h: &str) -> Result<(NpyDtype, bool, Vec<usize>), NpyError> {
    let bad = |what: &str| NpyError::Format(format!("header {what}: {}", h.trim_end()));
    let h = h.trim();
    let body = h
        .strip_prefix('{')
        .and_then(|s| s.trim_end().strip_suffix('}'))
        .ok_or_else(|| bad("is not a dict"))?;
    let mut dtype = None;
    let mut fortran = None;
    let mut shape = None;
    let mut rest = body.trim();
    while !rest.is_empty() {
        let (key, after) = parse_str(rest).ok_or_else(|| bad("has a bad key"))?;
        let after = after
            .trim_start()
            .strip_prefix(':')
            .ok_or_else(|| bad("misses ':'"))?;
        let after = after.trim_start();
        rest = match key {
            "descr" => {
                let (d, r) = parse_str(after).ok_or_else(|| bad("has a bad descr"))?;
                dtype = Some(NpyDtype::from_descr(d).ok_or_else(|| NpyError::Dtype(d.into()))?);
                r
            }
            "fortran_order" => {
                if let Some(r) = after.strip_prefix("False") {
                    fortran = Some(false);
                    r
                } else if let Some(r) = after.strip_prefix("True") {
                    fortran = Some(true);
                    r
                } else {
                    return Err(bad("has a bad fortran_order"));
                }
            }
            "shape" => {
                let inner = after
                    .strip_prefix('(')
                    .ok_or_else(|| bad("has a bad shape"))?;
                let close = inner
                    .find(')')
                    .ok_or_else(|| bad("has an unclosed shape"))?;
                let mut dims = Vec::new();
                for part in inner[..close].split(',') {
                    let p = part.trim();
                    if p.is_empty() {
                        continue;
                    }
                    // NumPy may write `3L` on Python 2.
                    let p = p.strip_suffix('L').unwrap_or(p);
                    dims.push(p.parse::<usize>().map_err(|_| bad("has a bad dimension"))?);
                }
                shape = Some(dims);
                &inner[close + 1..]
            }
            _ => return Err(bad("has an unknown key")),
        }
        .trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    match (dtype, fortran, shape) {
        (Some(d), Some(f), Some(s)) => Ok((d, f, s)),
        _ => Err(bad("misses descr, fortran_order or shape")),
    }
}

/// Parses a quoted Python string literal (no escapes are needed in `.npy` headers).
fn parse_str(s: &str) -> Option<(&str, &str)> {
    let q = s.chars().next().filter(|&c| c == '\'' || c == '"')?;
    let inner = &s[1..];
    let close = inner.find(q)?;
    Some((&inner[..close], &inner[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_dtype_and_rank() {
        let dtypes = [
            NpyDtype::F32,
            NpyDtype::F16,
            NpyDtype::F64,
            NpyDtype::I8,
            NpyDtype::U8,
            NpyDtype::I16,
            NpyDtype::I32,
            NpyDtype::I64,
            NpyDtype::Bool,
        ];
        for dtype in dtypes {
            for shape in [vec![], vec![5], vec![2, 3], vec![1, 4, 4, 3], vec![0, 7]] {
                let n: usize = shape.iter().product();
                let data: Vec<u8> = (0..n * dtype.size()).map(|i| (i * 7 % 251) as u8).collect();
                let a = NpyArray::new(dtype, shape.clone(), data).unwrap();
                let bytes = a.to_bytes();
                let header_end = bytes.len() - a.data.len();
                assert!(
                    header_end.is_multiple_of(64),
                    "{dtype} {shape:?}: data not 64-aligned"
                );
                assert_eq!(
                    NpyArray::from_bytes(&bytes).unwrap(),
                    a,
                    "{dtype} {shape:?}"
                );
            }
        }
    }

    #[test]
    fn reads_numpy_written_header() {
        // Exactly what numpy 1.x writes for np.zeros((2, 3), np.float32).
        let mut b = b"\x93NUMPY\x01\x00v\x00".to_vec();
        let mut h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        b[8] = h.len() as u8;
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(bytemuck::cast_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]));
        let a = NpyArray::from_bytes(&b).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.to_f32(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn rejects_bad_files() {
        let good = NpyArray::from_f32(vec![2, 2], &[1.0, 2.0, 3.0, 4.0])
            .unwrap()
            .to_bytes();
        // Every truncation fails cleanly.
        for cut in 0..good.len() {
            assert!(
                NpyArray::from_bytes(&good[..cut]).is_err(),
                "truncated at {cut}"
            );
        }
        let replace = |from: &str, to: &str| {
            let (from, to) = (from.as_bytes(), to.as_bytes());
            let at = good.windows(from.len()).position(|w| w == from).unwrap();
            let mut b = good[..at].to_vec();
            b.extend_from_slice(to);
            b.extend_from_slice(&good[at + from.len()..]);
            if from.len() != to.len() {
                let hl = u16::from_le_bytes([b[8], b[9]]) as isize;
                let hl = (hl + to.len() as isize - from.len() as isize) as u16;
                b[8..10].copy_from_slice(&hl.to_le_bytes());
            }
            NpyArray::from_bytes(&b)
        };
        assert!(matches!(replace("<f4", ">f4"), Err(NpyError::Dtype(_))));
        assert!(matches!(replace("<f4", "<c8"), Err(NpyError::Dtype(_))));
        assert!(matches!(
            replace("False", "True "),
            Err(NpyError::FortranOrder)
        ));
        assert!(matches!(
            replace("(2, 2)", "(2, 3)"),
            Err(NpyError::Length { .. })
        ));
        assert!(replace("(2, 2)", "(99999999999999999999, 2)").is_err());
        assert!(replace("(2, 2)", "(4611686018427387904, 4)").is_err());
        assert!(replace("'shape'", "'shoop'").is_err());
    }
}
