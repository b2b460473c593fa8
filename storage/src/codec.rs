//! A small, versioned binary encoding for stored records: each record starts with a version
//! byte, then fields in a fixed order — integers as big-endian u64, byte strings and text with
//! a u32 length prefix. Compact (database bytes per row matter) and independent of serde.

use super::StoreError;

/// Builds an encoded record.
#[derive(Debug)]
pub struct Enc(Vec<u8>);

impl Enc {
    pub fn new(version: u8) -> Self {
        let mut v = Vec::with_capacity(64);
        v.push(version);
        Enc(v)
    }
    pub fn u64(mut self, x: u64) -> Self {
        self.0.extend_from_slice(&x.to_be_bytes());
        self
    }
    pub fn bool(mut self, b: bool) -> Self {
        self.0.push(u8::from(b));
        self
    }
    pub fn bytes(mut self, b: &[u8]) -> Self {
        let len = u32::try_from(b.len()).unwrap_or_else(|_| unreachable!("fields are < 4 GiB"));
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }
    pub fn str(self, s: &str) -> Self {
        self.bytes(s.as_bytes())
    }
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads an encoded record; every read checks bounds, so a damaged row is an error, never a panic.
#[derive(Debug)]
pub struct Dec<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Dec<'a> {
    pub fn new(buf: &'a [u8], what: &'static str, version: u8) -> Result<Self, StoreError> {
        match buf.split_first() {
            Some((&v, rest)) if v == version => Ok(Dec { buf: rest, what }),
            _ => Err(StoreError::Corrupt(what)),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.buf.len() < n {
            return Err(StoreError::Corrupt(self.what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    pub fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(
            b.try_into().map_err(|_| StoreError::Corrupt(self.what))?,
        ))
    }
    pub fn bool(&mut self) -> Result<bool, StoreError> {
        match self.take(1)? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(StoreError::Corrupt(self.what)),
        }
    }
    pub fn bytes(&mut self) -> Result<Vec<u8>, StoreError> {
        let len = self.take(4)?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| StoreError::Corrupt(self.what))?);
        Ok(self.take(len as usize)?.to_vec())
    }
    pub fn string(&mut self) -> Result<String, StoreError> {
        String::from_utf8(self.bytes()?).map_err(|_| StoreError::Corrupt(self.what))
    }
    pub fn end(self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Corrupt(self.what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_damage_is_detected() {
        let rec = Enc::new(1)
            .u64(42)
            .bool(true)
            .str("héllo")
            .bytes(&[0, 1, 2])
            .finish();
        let mut d = Dec::new(&rec, "t", 1).unwrap();
        assert_eq!(d.u64().unwrap(), 42);
        assert!(d.bool().unwrap());
        assert_eq!(d.string().unwrap(), "héllo");
        assert_eq!(d.bytes().unwrap(), vec![0, 1, 2]);
        d.end().unwrap();
        assert!(Dec::new(&rec, "t", 2).is_err(), "wrong version");
        let mut short = Dec::new(&rec[..rec.len() - 1], "t", 1).unwrap();
        short.u64().unwrap();
        short.bool().unwrap();
        short.string().unwrap();
        assert!(short.bytes().is_err(), "truncated");
    }
}
