//! The order-preserving key encoding of the key-value seam: a typed key becomes bytes whose
//! lexicographic order is the key's logical order, so any backend that orders keys as bytes
//! (redb's `&[u8]` tables, a `bytea` primary key in PostgreSQL) ranges over them correctly.
//!
//! - unsigned integers: big-endian, fixed width;
//! - `[u8; N]`: as is (fixed width);
//! - `String` and [`Var`] (variable-length bytes): each 0x00 written as 0x00 0xFF, then the
//!   terminator 0x00 0x00 — so a string sorts before every longer string it is a prefix of,
//!   and a component after it can never be mistaken for part of it;
//! - tuples: their components one after another.
//!
//! A tuple key's leading components, encoded alone, are a byte prefix of every key that starts
//! with them ([`Prefix`]), which is how a table is ranged over "all rows of this user".
//!
//! Values are not ordered; [`Value`] keeps them compact (raw bytes, fixed-width byte arrays as
//! they are, big-endian integers, or the key encoding for tuples).

use super::super::StoreError;

/// A key component or whole key, encoded so that byte order is logical order.
pub trait Key: Sized {
    /// Appends the encoding of `self` to `out`.
    fn put(&self, out: &mut Vec<u8>);
    /// Reads one value from the front of `input`, advancing it.
    fn take(input: &mut &[u8]) -> Result<Self, StoreError>;

    /// The whole encoding of `self`.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        self.put(&mut out);
        out
    }

    /// Decodes a whole key; bytes left over are damage.
    fn decode(mut bytes: &[u8]) -> Result<Self, StoreError> {
        let k = Self::take(&mut bytes)?;
        if !bytes.is_empty() {
            return Err(damaged());
        }
        Ok(k)
    }
}

/// `P` is made of the leading components of this key: encoded alone, it is a byte prefix of
/// the encoding of every key that starts with it.
pub trait Prefix<P: Key>: Key {}

fn damaged() -> StoreError {
    StoreError::Corrupt("key")
}

fn split<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], StoreError> {
    if input.len() < n {
        return Err(damaged());
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Key for $t {
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            fn take(input: &mut &[u8]) -> Result<Self, StoreError> {
                let b = split(input, std::mem::size_of::<$t>())?;
                Ok(<$t>::from_be_bytes(b.try_into().map_err(|_| damaged())?))
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64);

impl<const N: usize> Key for [u8; N] {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn take(input: &mut &[u8]) -> Result<Self, StoreError> {
        split(input, N)?.try_into().map_err(|_| damaged())
    }
}

/// Variable-length bytes as a key component (escaped and terminated, see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Var(pub Vec<u8>);

fn put_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

fn take_escaped(input: &mut &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b != 0 {
            out.push(b);
            i += 1;
            continue;
        }
        match input.get(i + 1) {
            Some(0) => {
                *input = &input[i + 2..];
                return Ok(out);
            }
            Some(0xFF) => {
                out.push(0);
                i += 2;
            }
            _ => return Err(damaged()),
        }
    }
    Err(damaged())
}

impl Key for Var {
    fn put(&self, out: &mut Vec<u8>) {
        put_escaped(&self.0, out);
    }
    fn take(input: &mut &[u8]) -> Result<Self, StoreError> {
        take_escaped(input).map(Var)
    }
}

impl Key for String {
    fn put(&self, out: &mut Vec<u8>) {
        put_escaped(self.as_bytes(), out);
    }
    fn take(input: &mut &[u8]) -> Result<Self, StoreError> {
        String::from_utf8(take_escaped(input)?).map_err(|_| damaged())
    }
}

impl Key for () {
    fn put(&self, _: &mut Vec<u8>) {}
    fn take(_: &mut &[u8]) -> Result<Self, StoreError> {
        Ok(())
    }
}

macro_rules! tuple {
    ($($n:ident),+) => {
        impl<$($n: Key),+> Key for ($($n,)+) {
            #[allow(non_snake_case)]
            fn put(&self, out: &mut Vec<u8>) {
                let ($($n,)+) = self;
                $($n.put(out);)+
            }
            fn take(input: &mut &[u8]) -> Result<Self, StoreError> {
                Ok(($($n::take(input)?,)+))
            }
        }
    };
}
tuple!(A, B);
tuple!(A, B, C);
tuple!(A, B, C, D);
tuple!(A, B, C, D, E);

impl<A: Key, B: Key> Prefix<A> for (A, B) {}
impl<A: Key, B: Key, C: Key> Prefix<A> for (A, B, C) {}
impl<A: Key, B: Key, C: Key> Prefix<(A, B)> for (A, B, C) {}
impl<A: Key, B: Key, C: Key, D: Key> Prefix<A> for (A, B, C, D) {}
impl<A: Key, B: Key, C: Key, D: Key> Prefix<(A, B)> for (A, B, C, D) {}
impl<A: Key, B: Key, C: Key, D: Key> Prefix<(A, B, C)> for (A, B, C, D) {}
impl<A: Key, B: Key, C: Key, D: Key, E: Key> Prefix<A> for (A, B, C, D, E) {}

/// The smallest byte string greater than every string that starts with `prefix`; `None`
/// when there is none (the prefix is all 0xFF, or empty).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A stored value's encoding. Values are not compared, only kept.
pub trait Value: Sized {
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError>;
}

/// Raw bytes (an encoded record, a sealed box), kept as they are.
impl Value for Vec<u8> {
    fn to_bytes(&self) -> Vec<u8> {
        self.clone()
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        Ok(bytes.to_vec())
    }
}

/// A fixed-width byte array (a keyed hash), kept as it is; any other length is damage.
impl<const N: usize> Value for [u8; N] {
    fn to_bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        bytes.try_into().map_err(|_| StoreError::Corrupt("value"))
    }
}

macro_rules! value_by_key {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn to_bytes(&self) -> Vec<u8> {
                self.encode()
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
                <$t as Key>::decode(bytes).map_err(|_| StoreError::Corrupt("value"))
            }
        }
    )*};
}
value_by_key!((), u8, u64, String);

/// Tuples are kept in the key encoding (fixed-width integers, terminated strings).
macro_rules! value_tuple {
    ($($n:ident),+) => {
        impl<$($n: Key),+> Value for ($($n,)+) {
            fn to_bytes(&self) -> Vec<u8> {
                self.encode()
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
                <Self as Key>::decode(bytes).map_err(|_| StoreError::Corrupt("value"))
            }
        }
    };
}
value_tuple!(A, B);
value_tuple!(A, B, C);
value_tuple!(A, B, C, D);
value_tuple!(A, B, C, D, E);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn byte_order_is_the_order_of_u64_pairs(a: (u64, u64), b: (u64, u64)) {
            prop_assert_eq!(a.encode().cmp(&b.encode()), a.cmp(&b));
        }

        #[test]
        fn byte_order_is_the_order_of_strings_then_integers(
            a in ("[a\\x00b\\u{ff}é]{0,6}", any::<u32>()),
            b in ("[a\\x00b\\u{ff}é]{0,6}", any::<u32>()),
        ) {
            let (ea, eb) = (a.encode(), b.encode());
            prop_assert_eq!(ea.cmp(&eb), a.cmp(&b));
            prop_assert_eq!(<(String, u32)>::decode(&ea).unwrap(), a);
        }

        #[test]
        fn byte_order_is_the_order_of_variable_bytes(
            a in prop::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xFF), any::<u8>()], 0..6),
            b in prop::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xFF), any::<u8>()], 0..6),
        ) {
            let (a, b) = ((Var(a), 7u8), (Var(b), 3u8));
            prop_assert_eq!(a.encode().cmp(&b.encode()), a.cmp(&b));
            prop_assert_eq!(<(Var, u8)>::decode(&a.encode()).unwrap(), a);
        }

        #[test]
        fn a_leading_component_is_a_byte_prefix_of_the_whole_key(
            s in "[a\\x00b]{0,5}", n: u64, m: u64
        ) {
            let whole = (s.clone(), n, m).encode();
            prop_assert!(whole.starts_with(&s.encode()));
            prop_assert!(whole.starts_with(&(s.clone(), n).encode()));
            let end = prefix_end(&s.encode()).unwrap();
            prop_assert!(whole < end);
        }

        #[test]
        fn damaged_keys_are_errors_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..12)) {
            let _ = <(String, u64)>::decode(&bytes);
            let _ = <(Var, [u8; 3])>::decode(&bytes);
            let _ = <u64>::decode(&bytes);
        }
    }

    #[test]
    fn a_string_sorts_before_the_longer_strings_it_begins() {
        let keys = ["", "a", "a\0", "a\0\0", "a\u{1}", "ab", "b"];
        let encoded: Vec<Vec<u8>> = keys.iter().map(|k| k.to_string().encode()).collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(encoded, sorted);
    }

    #[test]
    fn a_key_with_bytes_left_over_or_cut_short_is_damaged() {
        let mut k = (1u64, "x".to_string()).encode();
        k.push(9);
        assert!(<(u64, String)>::decode(&k).is_err());
        k.truncate(k.len() - 2);
        assert!(<(u64, String)>::decode(&k).is_err(), "terminator missing");
        assert!(<u64>::decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn a_byte_array_value_is_kept_as_is_and_only_at_its_width() {
        let v = [7u8; 32];
        assert_eq!(Value::to_bytes(&v), vec![7u8; 32]);
        assert_eq!(<[u8; 32] as Value>::from_bytes(&[7u8; 32]).unwrap(), v);
        assert!(<[u8; 32] as Value>::from_bytes(&[7u8; 31]).is_err());
        assert!(<[u8; 32] as Value>::from_bytes(&[7u8; 33]).is_err());
    }

    #[test]
    fn the_end_of_a_prefix_is_past_all_its_keys() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(&[]), None);
    }
}
