//! The closed set of error classes and a compact set type over them, defined in
//! `fastagentic-policy` so the macros check attribute class names against the very same
//! list.

pub use fastagentic_policy::{ClassSet, ErrorClass, UnknownName};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_sets_serialize_as_names() {
        let set = ClassSet::of(&[ErrorClass::Timeout, ErrorClass::RateLimit]);
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["rate_limit","timeout"]"#);
        let back: ClassSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        assert!(serde_json::from_str::<ClassSet>(r#"["nope"]"#).is_err());
        assert_eq!(
            serde_json::to_string(&ErrorClass::ServerError).unwrap(),
            r#""server_error""#
        );
    }
}
