//! Reading config.yml past keys Adit has no field for, as cloudflared does, without losing
//! the line that serde_yaml puts in every other error.
//!
//! [`Lenient`] wraps serde_yaml's deserializer. Where a struct is read (`FileConfig`, an
//! ingress rule, an `originRequest`), keys that are not among the struct's fields are
//! skipped before the struct's own (`deny_unknown_fields`) visitor sees them; every value
//! is still read by serde_yaml itself, so a bad value keeps its line and path.
//!
//! serde gives a deserializer's caller no positions, and serde_yaml tells one only in an
//! error. So a pass stops at the first unknown key it has not been told to skip, by
//! failing while that key is read: serde_yaml marks the error with the key's line. The
//! caller notes the key and parses again, skipping it; a file with N unknown keys is parsed
//! N + 1 times, which is nothing for a config file.

use std::{cell::RefCell, fmt};

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess,
    Visitor, value::StringDeserializer,
};

/// One step from the document's root to a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    Key(String),
    /// An item of a sequence, or the n-th entry of a map that is not a struct.
    Index(usize),
}

/// A key that the struct holding it has no field for.
#[derive(Debug)]
pub(super) struct UnknownKey {
    /// From the root to the key itself (its last segment).
    pub(super) path: Vec<Segment>,
    /// The Rust name of the struct, which tells which part of the file it is.
    pub(super) struct_name: &'static str,
    /// The keys that struct does have.
    pub(super) fields: &'static [&'static str],
    /// Where the key is written, when serde_yaml says.
    pub(super) line: Option<usize>,
}

impl UnknownKey {
    /// The key as written (the last segment of its path).
    pub(super) fn name(&self) -> &str {
        match self.path.last() {
            Some(Segment::Key(key)) => key,
            _ => "",
        }
    }
}

/// What one pass came to.
pub(super) enum Pass<T> {
    Parsed(T),
    /// The pass stopped at a key not yet known to be unknown.
    Stopped(UnknownKey),
}

/// Parses `text` into `T`, skipping the keys at `skip`; stops at any other unknown key.
pub(super) fn parse_once<T: DeserializeOwned>(
    text: &str,
    skip: &[Vec<Segment>],
) -> Result<Pass<T>, serde_yaml::Error> {
    let state = State {
        skip,
        stopped: RefCell::new(None),
    };
    let result = T::deserialize(Lenient {
        de: serde_yaml::Deserializer::from_str(text),
        at: Vec::new(),
        state: &state,
    });
    match (result, state.stopped.into_inner()) {
        (Ok(value), _) => Ok(Pass::Parsed(value)),
        (Err(e), Some(mut key)) => {
            key.line = e.location().map(|at| at.line());
            Ok(Pass::Stopped(key))
        }
        (Err(e), None) => Err(e),
    }
}

struct State<'s> {
    skip: &'s [Vec<Segment>],
    /// Set when the pass stops at an unknown key: the error that follows is that stop.
    stopped: RefCell<Option<UnknownKey>>,
}

fn child(at: &[Segment], segment: Segment) -> Vec<Segment> {
    let mut path = at.to_vec();
    path.push(segment);
    path
}

/// A deserializer whose structs skip unknown keys (see the module's doc).
struct Lenient<'s, D> {
    de: D,
    /// Where in the document its value is.
    at: Vec<Segment>,
    state: &'s State<'s>,
}

/// The visitor for what a [`Lenient`] reads: it passes on the same wrapping to what is
/// inside (an `Option`'s value, a sequence's items, a map's values).
struct Wrap<'s, V> {
    visitor: V,
    at: Vec<Segment>,
    state: &'s State<'s>,
    /// The struct being read and its fields, when it is one.
    fields: Option<(&'static str, &'static [&'static str])>,
}

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                let Self { de, at, state } = self;
                de.$method($($arg,)* Wrap { visitor, at, state, fields: None })
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Lenient<'_, D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any(); deserialize_bool(); deserialize_i8(); deserialize_i16();
        deserialize_i32(); deserialize_i64(); deserialize_i128(); deserialize_u8();
        deserialize_u16(); deserialize_u32(); deserialize_u64(); deserialize_u128();
        deserialize_f32(); deserialize_f64(); deserialize_char(); deserialize_str();
        deserialize_string(); deserialize_bytes(); deserialize_byte_buf(); deserialize_option();
        deserialize_unit(); deserialize_seq(); deserialize_map(); deserialize_identifier();
        deserialize_ignored_any();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let Self { de, at, state } = self;
        de.deserialize_struct(
            name,
            fields,
            Wrap {
                visitor,
                at,
                state,
                fields: Some((name, fields)),
            },
        )
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                self.visitor.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    forward_visit! {
        visit_bool(bool); visit_i8(i8); visit_i16(i16); visit_i32(i32); visit_i64(i64);
        visit_i128(i128); visit_u8(u8); visit_u16(u16); visit_u32(u32); visit_u64(u64);
        visit_u128(u128); visit_f32(f32); visit_f64(f64); visit_char(char);
        visit_str(&str); visit_borrowed_str(&'de str); visit_string(String);
        visit_bytes(&[u8]); visit_borrowed_bytes(&'de [u8]); visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.visitor.visit_some(Lenient {
            de,
            at: self.at,
            state: self.state,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.visitor.visit_newtype_struct(Lenient {
            de,
            at: self.at,
            state: self.state,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_seq(Seq {
            seq,
            at: self.at,
            state: self.state,
            index: 0,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_map(Map {
            map,
            at: self.at,
            state: self.state,
            fields: self.fields,
            entries: 0,
            value_at: None,
        })
    }

    // No enum in config.yml carries a struct, so an enum's content is read as it is.
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_enum(data)
    }
}

struct Seq<'s, A> {
    seq: A,
    at: Vec<Segment>,
    state: &'s State<'s>,
    index: usize,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let at = child(&self.at, Segment::Index(self.index));
        self.index += 1;
        self.seq.next_element_seed(Seed {
            seed,
            at,
            state: self.state,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}

struct Map<'s, A> {
    map: A,
    at: Vec<Segment>,
    state: &'s State<'s>,
    fields: Option<(&'static str, &'static [&'static str])>,
    /// Entries read, which name the values of a map that is not a struct.
    entries: usize,
    /// Where the value of the key just read is.
    value_at: Option<Segment>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some((struct_name, fields)) = self.fields else {
            self.value_at = Some(Segment::Index(self.entries));
            self.entries += 1;
            return self.map.next_key_seed(seed);
        };
        loop {
            let probe = KeyProbe {
                at: &self.at,
                state: self.state,
                struct_name,
                fields,
            };
            match self.map.next_key_seed(probe)? {
                None => return Ok(None),
                Some(Key::Field(name)) => {
                    self.value_at = Some(Segment::Key(name.clone()));
                    return seed
                        .deserialize(StringDeserializer::<A::Error>::new(name))
                        .map(Some);
                }
                Some(Key::Skipped) => {
                    self.map.next_value::<IgnoredAny>()?;
                }
            }
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let at = match self.value_at.take() {
            Some(segment) => child(&self.at, segment),
            None => self.at.clone(),
        };
        self.map.next_value_seed(Seed {
            seed,
            at,
            state: self.state,
        })
    }
}

struct Seed<'s, T> {
    seed: T,
    at: Vec<Segment>,
    state: &'s State<'s>,
}

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<T::Value, D::Error> {
        self.seed.deserialize(Lenient {
            de,
            at: self.at,
            state: self.state,
        })
    }
}

/// A struct's key: one of its fields, or an unknown key already noted.
enum Key {
    Field(String),
    Skipped,
}

/// Reads a struct's key; an unknown key not yet noted stops the pass right there, so that
/// serde_yaml's error carries the key's line.
struct KeyProbe<'a, 's> {
    at: &'a [Segment],
    state: &'s State<'s>,
    struct_name: &'static str,
    fields: &'static [&'static str],
}

impl<'de> DeserializeSeed<'de> for KeyProbe<'_, '_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Key, D::Error> {
        de.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KeyProbe<'_, '_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        if self.fields.contains(&key) {
            return Ok(Key::Field(key.to_owned()));
        }
        let path = child(self.at, Segment::Key(key.to_owned()));
        if self.state.skip.contains(&path) {
            return Ok(Key::Skipped);
        }
        *self.state.stopped.borrow_mut() = Some(UnknownKey {
            path,
            struct_name: self.struct_name,
            fields: self.fields,
            line: None,
        });
        Err(E::custom(format_args!("unknown key `{key}`")))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        #[serde(default)]
        items: Vec<Inner>,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        port: u16,
    }

    /// An unknown key's path and line.
    type Found = (Vec<Segment>, Option<usize>);

    /// Every unknown key with its line, and the value parsed without them.
    fn parse_all(text: &str) -> Result<(Outer, Vec<Found>), String> {
        let mut skip = Vec::new();
        let mut found = Vec::new();
        loop {
            match parse_once::<Outer>(text, &skip).map_err(|e| e.to_string())? {
                Pass::Parsed(value) => return Ok((value, found)),
                Pass::Stopped(key) => {
                    found.push((key.path.clone(), key.line));
                    skip.push(key.path);
                }
            }
        }
    }

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_owned())
    }

    #[test]
    fn unknown_keys_at_every_depth_are_skipped_with_their_lines() {
        let text = "name: a\nextra:\n  deep: [1, 2]\nitems:\n  - port: 1\n    colour: red\n  - {port: 2, size: 3}\ninner:\n  port: 3\n  more: x\n";
        let (value, found) = parse_all(text).unwrap();
        assert_eq!(
            value,
            Outer {
                name: "a".into(),
                items: vec![Inner { port: 1 }, Inner { port: 2 }],
                inner: Some(Inner { port: 3 }),
            }
        );
        assert_eq!(
            found,
            [
                (vec![key("extra")], Some(2)),
                (
                    vec![key("items"), Segment::Index(0), key("colour")],
                    Some(6)
                ),
                (vec![key("items"), Segment::Index(1), key("size")], Some(7)),
                (vec![key("inner"), key("more")], Some(10)),
            ]
        );
    }

    #[test]
    fn a_bad_value_after_an_unknown_key_keeps_its_line() {
        let err = parse_all("name: a\nextra: 1\ninner:\n  port: nope\n").unwrap_err();
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("inner.port"), "{err}");
    }
}
