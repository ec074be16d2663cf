//! The list of step verbs, read from the [`Step`] type itself: an error about an unknown verb
//! lists them, and they can never drift from what the parser accepts.

use serde::Deserialize;

use super::file::Step;

/// Every step verb, as serde spells it (the variant names of [`Step`], in declaration order).
pub fn step_verbs() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    use std::cell::Cell;

    /// A deserializer that only records the variant names serde asks an enum for.
    struct Capture<'a>(&'a Cell<&'static [&'static str]>);
    impl<'de> de::Deserializer<'de> for Capture<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not an enum"))
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(variants);
            Err(de::Error::custom("variants recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
            ignored_any
        }
    }
    let variants = Cell::new(&[][..]);
    let _ = Step::deserialize(Capture(&variants));
    variants.get()
}
