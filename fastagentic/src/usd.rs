//! Dollar amounts on the wire: written as JSON numbers for clients, read back from a
//! number or a decimal string.
//!
//! `rust_decimal`'s own float helpers refuse to read a number back with the features
//! this crate builds it with, so a [`Completion`](crate::llm::Completion) written by one
//! process could not be read by another; these accept both forms.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};

/// For `#[serde(with = "crate::usd::float_option")]` on an `Option<Decimal>`.
pub(crate) mod float_option {
    use super::{Amount, Decimal, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::float_option::serialize(value, serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        Ok(Option::<Amount>::deserialize(deserializer)?.map(|amount| amount.0))
    }
}

/// A dollar amount read from a JSON number or a decimal string.
struct Amount(Decimal);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AmountVisitor)
    }
}

#[derive(Clone, Copy)]
struct AmountVisitor;

impl Visitor<'_> for AmountVisitor {
    type Value = Amount;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an amount of US dollars, as a number or a decimal string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Amount, E> {
        Decimal::from_str(text)
            .or_else(|_| Decimal::from_scientific(text))
            .map(Amount)
            .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Amount, E> {
        // The shortest text that reads back as `number` is what was written: a decimal
        // serialized as a float comes back digit for digit.
        self.visit_str(&number.to_string())
            .map_err(|_: E| E::invalid_value(de::Unexpected::Float(number), &self))
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Amount, E> {
        Ok(Amount(Decimal::from(number)))
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Amount, E> {
        Ok(Amount(Decimal::from(number)))
    }
}
