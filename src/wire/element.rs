//! A set element: any JSON value, as Maelstrom's `broadcast` and g-set `add` take it
//! (docs/maelstrom-compatibility.md 6.3, 6.4), bounded in size so that one request cannot
//! grow every node's state and every message without limit.
//!
//! The order is total and the same on every node: integers first, numerically (what the
//! workloads send, so their `read_ok` lists are sorted as numbers), then every other value
//! by its canonical JSON text (object keys sorted).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The largest element accepted, as canonical JSON text.
pub const MAX_ELEMENT_BYTES: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    /// An integer that fits an `i64`.
    Int(i64),
    /// Any other value, as canonical JSON text.
    Json(Box<str>),
}

impl Element {
    /// About how many bytes it takes in a message (its JSON and a separator).
    pub fn wire_len(&self) -> usize {
        match self {
            Element::Int(n) => {
                let digits = n
                    .unsigned_abs()
                    .checked_ilog10()
                    .map_or(1, |d| d as usize + 1);
                digits + usize::from(*n < 0) + 2
            }
            Element::Json(text) => text.len() + 1,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Element::Int(n) => Some(*n),
            Element::Json(_) => None,
        }
    }
}

impl From<i64> for Element {
    fn from(n: i64) -> Self {
        Element::Int(n)
    }
}

impl TryFrom<Value> for Element {
    type Error = String;

    fn try_from(mut value: Value) -> Result<Self, String> {
        if let Some(n) = value.as_i64() {
            return Ok(Element::Int(n));
        }
        value.sort_all_objects();
        let text = value.to_string();
        if text.len() > MAX_ELEMENT_BYTES {
            return Err(format!(
                "value too large: {} bytes as JSON, at most {MAX_ELEMENT_BYTES}",
                text.len()
            ));
        }
        Ok(Element::Json(text.into()))
    }
}

impl Serialize for Element {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Element::Int(n) => s.serialize_i64(*n),
            Element::Json(text) => {
                let value: Value = serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
                value.serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Element::try_from(Value::deserialize(d)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_length_never_undercounts_an_integer() {
        for n in [
            0,
            7,
            -1,
            10,
            -10,
            123_456_789,
            -123_456_789,
            i64::MAX,
            i64::MIN,
        ] {
            let text = serde_json::to_string(&Element::Int(n)).unwrap();
            assert!(Element::Int(n).wire_len() > text.len(), "{n}");
        }
    }
    use serde_json::json;

    fn element(v: Value) -> Element {
        Element::try_from(v).unwrap()
    }

    #[test]
    fn integers_sort_numerically_before_any_other_value() {
        let mut all = [
            json!("b"),
            json!(10),
            json!({"a": 1}),
            json!(-3),
            json!(1.5),
            json!(null),
            json!(2),
        ]
        .map(element);
        all.sort();
        let back: Vec<Value> = all
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect();
        assert_eq!(
            back,
            vec![
                json!(-3),
                json!(2),
                json!(10),
                json!("b"),
                json!(1.5),
                json!(null),
                json!({"a": 1})
            ]
        );
    }

    #[test]
    fn equal_objects_are_one_element_whatever_their_key_order() {
        let a: Element = serde_json::from_str(r#"{"x":1,"y":[true,{"b":2,"a":1}]}"#).unwrap();
        let b: Element = serde_json::from_str(r#"{"y":[true,{"a":1,"b":2}],"x":1}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"x":1,"y":[true,{"a":1,"b":2}]}"#
        );
    }

    #[test]
    fn integers_keep_their_wire_form_and_others_are_not_integers() {
        assert_eq!(serde_json::to_string(&Element::Int(-7)).unwrap(), "-7");
        assert_eq!(element(json!(7)), Element::Int(7));
        assert_ne!(element(json!(7.0)), Element::Int(7), "7.0 is another value");
        assert_eq!(element(json!(u64::MAX)).as_i64(), None);
    }

    #[test]
    fn oversized_values_are_refused() {
        let fits = "x".repeat(MAX_ELEMENT_BYTES - 2);
        assert!(Element::try_from(json!(fits)).is_ok());
        let err = Element::try_from(json!(format!("{fits}y"))).unwrap_err();
        assert!(err.contains("too large"), "{err}");
    }
}
