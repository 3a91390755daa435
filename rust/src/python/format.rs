//! Token ids as decimal text for the CLI's `tokenize` (a conversion of outputs, like the rest of
//! the bindings): ids of document `i` are `ids[offsets[i]..offsets[i+1]]`, written separated by
//! spaces, each document followed by one `line_end` byte. O(total digits), one output buffer,
//! the GIL released; about 20x faster than the same in numpy passes (16 M ids: 0.05 s against
//! 0.8 s CPU, measured with the cl100k ids of a 50 MB text).

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::InputError;

/// `ids` / `offsets` as decimal lines; offsets must start at 0, never decrease and end at
/// `ids.len()` (what `encode_batch_numpy` returns).
#[pyfunction]
#[pyo3(signature = (ids, offsets, line_end = b'\n'))]
pub(crate) fn format_ids<'py>(
    py: Python<'py>,
    ids: PyReadonlyArray1<'py, u32>,
    offsets: PyReadonlyArray1<'py, i64>,
    line_end: u8,
) -> PyResult<Bound<'py, PyBytes>> {
    let ids = ids.as_slice()?;
    let offsets = offsets.as_slice()?;
    let bad = offsets.first().is_some_and(|&o| o != 0)
        || offsets.windows(2).any(|w| w[1] < w[0])
        || offsets
            .last()
            .map_or(!ids.is_empty(), |&o| o != ids.len() as i64);
    if bad {
        return Err(InputError::new_err(format!(
            "offsets must rise from 0 to len(ids) = {} (as encode_batch_numpy returns them)",
            ids.len()
        )));
    }
    let out = py.detach(|| {
        let mut out = Vec::with_capacity(ids.len() * 6 + offsets.len());
        let mut digits = [0u8; 10];
        for w in offsets.windows(2) {
            for (k, &id) in ids[w[0] as usize..w[1] as usize].iter().enumerate() {
                if k > 0 {
                    out.push(b' ');
                }
                let (mut v, mut n) = (id, 0);
                loop {
                    digits[n] = b'0' + (v % 10) as u8;
                    n += 1;
                    v /= 10;
                    if v == 0 {
                        break;
                    }
                }
                out.extend(digits[..n].iter().rev());
            }
            out.push(line_end);
        }
        out
    });
    Ok(PyBytes::new(py, &out))
}
