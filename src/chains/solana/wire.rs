//! The wire format's primitives: a bounded byte reader and compact-u16 (shortvec) lengths.

use super::*;

pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(super) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(WireError::Truncated {
            field,
            offset: self.buf.len(),
        })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(super) fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, field)?[0])
    }

    pub(super) fn pubkey(&mut self, field: &'static str) -> Result<Pubkey, WireError> {
        let mut out = [0u8; PUBKEY_LEN];
        out.copy_from_slice(self.take(PUBKEY_LEN, field)?);
        Ok(out)
    }

    pub(super) fn bytes_with_len(&mut self, field: &'static str) -> Result<Vec<u8>, WireError> {
        let n = self.shortvec(field)?;
        Ok(self.take(n, field)?.to_vec())
    }

    /// Decodes compact-u16 the way the validator does: an encoding that has a
    /// shorter form is rejected, otherwise one payload could have two
    /// byte-different (and differently signed) serialisations.
    pub(super) fn shortvec(&mut self, field: &'static str) -> Result<usize, WireError> {
        let start = self.pos;
        let mut value: u32 = 0;
        for nth in 0..3 {
            let byte = self.u8(field)?;
            if byte == 0 && nth > 0 {
                return Err(WireError::NonCanonicalLength {
                    field,
                    offset: start,
                });
            }
            value |= u32::from(byte & 0x7f) << (7 * nth);
            let done = byte & 0x80 == 0;
            if value > u32::from(u16::MAX) || (nth == 2 && !done) {
                return Err(WireError::LengthOverflow {
                    field,
                    offset: start,
                });
            }
            if done {
                return Ok(value as usize);
            }
        }
        // Not reached: the third byte either finishes or overflows above.
        Err(WireError::LengthOverflow {
            field,
            offset: start,
        })
    }

    pub(super) fn finish(&self) -> Result<(), WireError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            count => Err(WireError::TrailingBytes {
                offset: self.pos,
                count,
            }),
        }
    }
}

/// Number of bytes compact-u16 uses for `n`.
pub(super) fn shortvec_len(n: usize) -> usize {
    match n {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        _ => 3,
    }
}
