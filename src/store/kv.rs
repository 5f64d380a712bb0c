//! The ordered key-value layer every backend provides, and the typed tables on top of it.
//!
//! A backend stores, per logical table, byte keys in byte order with byte values: redb as
//! one redb table each, PostgreSQL as one `(k bytea primary key, v bytea)` table each. Keys
//! are tuples of strings and integers encoded so that byte order is the tuple order (each
//! string escapes `0x00` as `00 FF` and ends with `00 00`; an integer is 8 big-endian bytes
//! with the sign bit flipped), so a range of tuples is a range of bytes on every backend. A
//! multimap is a table whose key is the key tuple followed by the value, with an empty
//! value: the values of one key are a prefix range.

use std::marker::PhantomData;
use std::ops::Bound;

use super::{Result, StoreError};

/// One part of a key tuple (also usable as a whole key or as a value).
pub(super) trait Part {
    type Ref<'a>: Copy;
    type Owned;
    fn put(value: Self::Ref<'_>, out: &mut Vec<u8>);
    fn take(input: &mut &[u8]) -> Result<Self::Owned>;
}

/// A string part.
pub(super) struct S;
/// A signed 64-bit integer part.
pub(super) struct I;

impl Part for S {
    type Ref<'a> = &'a str;
    type Owned = String;

    fn put(value: &str, out: &mut Vec<u8>) {
        for &b in value.as_bytes() {
            out.push(b);
            if b == 0 {
                out.push(0xFF);
            }
        }
        out.extend_from_slice(&[0, 0]);
    }

    fn take(input: &mut &[u8]) -> Result<String> {
        let mut bytes = Vec::new();
        let mut i = 0;
        loop {
            match (input.get(i), input.get(i + 1)) {
                (Some(0), Some(0)) => break,
                (Some(0), Some(0xFF)) => {
                    bytes.push(0);
                    i += 2;
                }
                (Some(&b), _) if b != 0 => {
                    bytes.push(b);
                    i += 1;
                }
                _ => return Err(corrupt("a key string is not terminated")),
            }
        }
        *input = &input[i + 2..];
        String::from_utf8(bytes).map_err(|_| corrupt("a key string is not UTF-8"))
    }
}

impl Part for I {
    type Ref<'a> = i64;
    type Owned = i64;

    fn put(value: i64, out: &mut Vec<u8>) {
        out.extend_from_slice(&((value as u64) ^ (1 << 63)).to_be_bytes());
    }

    fn take(input: &mut &[u8]) -> Result<i64> {
        let Some((head, rest)) = input.split_first_chunk::<8>() else {
            return Err(corrupt("a key integer is cut short"));
        };
        *input = rest;
        Ok((u64::from_be_bytes(*head) ^ (1 << 63)) as i64)
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// A whole key: one part or a tuple of parts.
pub(super) trait Key {
    type Ref<'a>: Copy;
    type Owned;
    fn put(value: Self::Ref<'_>, out: &mut Vec<u8>);
    fn take(input: &mut &[u8]) -> Result<Self::Owned>;

    fn encode(value: Self::Ref<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(48);
        Self::put(value, &mut out);
        out
    }

    /// Decode a whole key: nothing may follow it.
    fn decode(mut bytes: &[u8]) -> Result<Self::Owned> {
        let key = Self::take(&mut bytes)?;
        if !bytes.is_empty() {
            return Err(corrupt("a key has trailing bytes"));
        }
        Ok(key)
    }
}

impl Key for S {
    type Ref<'a> = &'a str;
    type Owned = String;
    fn put(value: &str, out: &mut Vec<u8>) {
        <S as Part>::put(value, out)
    }
    fn take(input: &mut &[u8]) -> Result<String> {
        <S as Part>::take(input)
    }
}

impl<A: Part, B: Part> Key for (A, B) {
    type Ref<'a> = (A::Ref<'a>, B::Ref<'a>);
    type Owned = (A::Owned, B::Owned);
    fn put((a, b): Self::Ref<'_>, out: &mut Vec<u8>) {
        A::put(a, out);
        B::put(b, out);
    }
    fn take(input: &mut &[u8]) -> Result<Self::Owned> {
        Ok((A::take(input)?, B::take(input)?))
    }
}

impl<A: Part, B: Part, C: Part> Key for (A, B, C) {
    type Ref<'a> = (A::Ref<'a>, B::Ref<'a>, C::Ref<'a>);
    type Owned = (A::Owned, B::Owned, C::Owned);
    fn put((a, b, c): Self::Ref<'_>, out: &mut Vec<u8>) {
        A::put(a, out);
        B::put(b, out);
        C::put(c, out);
    }
    fn take(input: &mut &[u8]) -> Result<Self::Owned> {
        Ok((A::take(input)?, B::take(input)?, C::take(input)?))
    }
}

/// A stored value.
pub(super) trait Value {
    type Ref<'a>: Copy;
    type Owned;
    fn encode(value: Self::Ref<'_>) -> Vec<u8>;
    fn decode(bytes: &[u8]) -> Result<Self::Owned>;
}

/// Bytes as they are (the JSON records).
pub(super) struct Bytes;
/// A non-negative counter.
pub(super) struct U;

impl Value for Bytes {
    type Ref<'a> = &'a [u8];
    type Owned = Vec<u8>;
    fn encode(value: &[u8]) -> Vec<u8> {
        value.to_vec()
    }
    fn decode(bytes: &[u8]) -> Result<Vec<u8>> {
        Ok(bytes.to_vec())
    }
}

impl Value for S {
    type Ref<'a> = &'a str;
    type Owned = String;
    fn encode(value: &str) -> Vec<u8> {
        value.as_bytes().to_vec()
    }
    fn decode(bytes: &[u8]) -> Result<String> {
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("a stored string is not UTF-8"))
    }
}

impl Value for I {
    type Ref<'a> = i64;
    type Owned = i64;
    fn encode(value: i64) -> Vec<u8> {
        value.to_be_bytes().to_vec()
    }
    fn decode(bytes: &[u8]) -> Result<i64> {
        let b: [u8; 8] = bytes
            .try_into()
            .map_err(|_| corrupt("a stored integer is not 8 bytes"))?;
        Ok(i64::from_be_bytes(b))
    }
}

impl Value for U {
    type Ref<'a> = u64;
    type Owned = u64;
    fn encode(value: u64) -> Vec<u8> {
        value.to_be_bytes().to_vec()
    }
    fn decode(bytes: &[u8]) -> Result<u64> {
        let b: [u8; 8] = bytes
            .try_into()
            .map_err(|_| corrupt("a stored counter is not 8 bytes"))?;
        Ok(u64::from_be_bytes(b))
    }
}

/// A table: keys of shape `K`, values of kind `V`.
pub(super) struct Table<K, V> {
    pub(super) name: &'static str,
    _shape: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Table<K, V> {
    pub(super) const fn new(name: &'static str) -> Self {
        Table {
            name,
            _shape: PhantomData,
        }
    }
}

impl<K, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Table<K, V> {}

/// A multimap: keys of shape `K`, each with a set of values of kind `V`, kept in value order.
pub(super) struct Multimap<K, V> {
    pub(super) name: &'static str,
    _shape: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Multimap<K, V> {
    pub(super) const fn new(name: &'static str) -> Self {
        Multimap {
            name,
            _shape: PhantomData,
        }
    }
}

impl<K, V> Clone for Multimap<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Multimap<K, V> {}

/// The smallest byte string greater than every string starting with `prefix` (`None`:
/// there is none, the prefix is all `FF`).
pub(super) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Owned byte bounds.
pub(super) type Range = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Encode a range of whole keys.
pub(super) fn key_range<K: Key>(lo: Bound<K::Ref<'_>>, hi: Bound<K::Ref<'_>>) -> Range {
    (lo.map(K::encode), hi.map(K::encode))
}

/// The byte range of a multimap's entries whose key is in the given key range: an entry is
/// the key followed by a value, so an included upper key covers everything it prefixes,
/// and an excluded lower key starts after everything it prefixes.
pub(super) fn multimap_range<K: Key>(lo: Bound<K::Ref<'_>>, hi: Bound<K::Ref<'_>>) -> Range {
    let after = |k: Vec<u8>| match prefix_end(&k) {
        Some(end) => Bound::Included(end),
        None => Bound::Unbounded,
    };
    let lo = match lo {
        Bound::Included(k) => Bound::Included(K::encode(k)),
        Bound::Excluded(k) => after(K::encode(k)),
        Bound::Unbounded => Bound::Unbounded,
    };
    let hi = match hi {
        Bound::Included(k) => match prefix_end(&K::encode(k)) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        },
        Bound::Excluded(k) => Bound::Excluded(K::encode(k)),
        Bound::Unbounded => Bound::Unbounded,
    };
    (lo, hi)
}

/// Whether `key` lies inside `range`.
#[cfg(test)]
fn in_range(range: &Range, key: &[u8]) -> bool {
    let above = match &range.0 {
        Bound::Included(lo) => key >= lo.as_slice(),
        Bound::Excluded(lo) => key > lo.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match &range.1 {
        Bound::Included(hi) => key <= hi.as_slice(),
        Bound::Excluded(hi) => key < hi.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

/// What a scan's visitor says after each entry.
pub(super) type Visit<'f> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'f;

/// Reading through a transaction of any backend, in bytes. The typed helpers of
/// [`super::View`] are built on this; nothing else calls it.
pub trait Txn {
    /// The value under `key`.
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The values under `keys`, in their order (a backend with round trips answers in
    /// one).
    fn get_many(&self, table: &'static str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(table, k)).collect()
    }
    /// The entries of `range` in key order (or reversed), until `visit` returns false.
    fn scan(
        &self,
        table: &'static str,
        range: &Range,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<()>;
    /// How many entries the table holds.
    fn count(&self, table: &'static str) -> Result<u64>;
}

/// Writing through a write transaction of any backend, in bytes.
pub(super) trait TxnMut: Txn {
    fn put(&mut self, table: &'static str, key: &[u8], value: &[u8]) -> Result<()>;
    /// Whether there was an entry to remove.
    fn delete(&mut self, table: &'static str, key: &[u8]) -> Result<bool>;
    /// Remove every entry of `range`; how many went.
    fn delete_range(&mut self, table: &'static str, range: &Range) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type K3 = (S, I, S);

    proptest! {
        /// Byte order of encoded keys is the order of the tuples, and decoding gives the
        /// tuple back.
        #[test]
        fn encoding_keeps_tuple_order(
            a in ("[a\\x00\\x01\\u{FF}z]{0,4}", any::<i64>(), "[a\\x00b]{0,3}"),
            b in ("[a\\x00\\x01\\u{FF}z]{0,4}", any::<i64>(), "[a\\x00b]{0,3}"),
        ) {
            let ea = K3::encode((&a.0, a.1, &a.2));
            let eb = K3::encode((&b.0, b.1, &b.2));
            prop_assert_eq!(ea.cmp(&eb), a.cmp(&b));
            prop_assert_eq!(K3::decode(&ea).unwrap(), a);
        }

        /// A multimap's entries under a key range are exactly the entries of keys in it.
        #[test]
        fn multimap_ranges_cover_their_keys(
            key in ("[ab]{0,2}", "[ab\\x00]{0,2}"),
            value in "[ab\\x00]{0,2}",
            lo in "[ab\\x00]{0,2}",
            hi in "[ab\\x00]{0,2}",
            lo_incl in any::<bool>(),
            hi_incl in any::<bool>(),
        ) {
            let mut entry = <(S, S)>::encode((&key.0, &key.1));
            <S as Part>::put(&value, &mut entry);
            fn r<'a>(first: &'a str, s: &'a str, incl: bool) -> Bound<(&'a str, &'a str)> {
                if incl { Bound::Included((first, s)) } else { Bound::Excluded((first, s)) }
            }
            let range = multimap_range::<(S, S)>(r(&key.0, &lo, lo_incl), r(&key.0, &hi, hi_incl));
            let k = (key.0.clone(), key.1.clone());
            let lo_k = (key.0.clone(), lo.clone());
            let hi_k = (key.0.clone(), hi.clone());
            let inside = (if lo_incl { k >= lo_k } else { k > lo_k })
                && (if hi_incl { k <= hi_k } else { k < hi_k });
            prop_assert_eq!(in_range(&range, &entry), inside);
        }
    }

    #[test]
    fn cut_or_foreign_keys_are_corrupt_not_panics() {
        for bytes in [
            &b"ab"[..],
            &b"a\x00"[..],
            &b"\xff\xfe\x00\x00"[..],
            &[0, 1][..],
        ] {
            assert!(<S as Key>::decode(bytes).is_err(), "{bytes:?}");
        }
        assert!(<(S, I)>::decode(b"a\x00\x00\x01\x02").is_err());
        assert!(<S as Key>::decode(b"a\x00\x00tail").is_err());
    }
}
