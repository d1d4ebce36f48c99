//! Closed sets of names: an enum whose every variant has one configuration name, parsed,
//! displayed and (with `serde`) serialized by that name.

use std::fmt;

/// A name that is not one of a closed set (an error class, a hook event, a backoff, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What the name was meant to be: `"error class"`, `"hook event"`, `"backoff"`, ...
    pub what: &'static str,
    /// The name given.
    pub given: String,
    /// Every accepted name.
    pub valid: &'static [&'static str],
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} `{}`; expected one of: {}",
            self.what,
            self.given,
            self.valid.join(", ")
        )
    }
}

impl std::error::Error for UnknownName {}

/// Declares an enum of named values: `ALL`, `NAMES`, `as_str`, `variant_name`,
/// `FromStr` (failing with [`UnknownName`]), `Display`, and with the `serde` feature
/// `Serialize`/`Deserialize` as the name.
macro_rules! named {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// Every configuration name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text,)+];

            /// Every Rust variant's name, in declaration order.
            pub const VARIANTS: &'static [&'static str] = &[$(stringify!($variant),)+];

            /// The configuration name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The Rust variant's name (what generated code writes after `::`).
            pub const fn variant_name(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::UnknownName {
                        what: $what,
                        given: s.to_owned(),
                        valid: $name::NAMES,
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[cfg(feature = "serde")]
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(deserializer)?;
                name.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use named;
