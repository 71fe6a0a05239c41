//! A job's `selector`: which executor labels a run's executor must have.
//!
//! Written as a map from label key to a requirement: a string (the label
//! equals it), `{"in": [..]}` (the label is one of the values),
//! `{"not_in": [..]}` (the label is missing or none of them) or
//! `{"exists": true|false}` (the label is there, or not). Every entry must
//! hold. What it selects is decided by the router (`actors::router`).

use std::{collections::BTreeMap, fmt};

use schemars::JsonSchema;
use serde::{
    de::{self, MapAccess, Visitor},
    Deserialize, Deserializer, Serialize,
};

/// Label key to requirement; all must hold. Empty: every executor of the
/// group matches.
pub type Selector = BTreeMap<String, Requirement>;

/// What one label of an executor must be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Requirement {
    /// The label is present with exactly this value.
    Equals(#[schemars(length(max = 1024))] String),
    /// `{"in": [..]}`, `{"not_in": [..]}` or `{"exists": bool}`.
    Op(Op),
}

/// A requirement written as a one-key object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// The label is present and one of these values (1 to 64, each at most
    /// 1024 bytes).
    In(
        #[schemars(length(min = 1, max = crate::validate::MAX_SELECTOR_VALUES), inner(length(max = 1024)))]
         Vec<String>,
    ),
    /// The label is missing, or none of these values (1 to 64, each at
    /// most 1024 bytes).
    NotIn(
        #[schemars(length(min = 1, max = crate::validate::MAX_SELECTOR_VALUES), inner(length(max = 1024)))]
         Vec<String>,
    ),
    /// `true`: the label is present, whatever its value; `false`: it is not.
    Exists(bool),
}

impl Requirement {
    /// Whether an executor's value of the label (`None`: it has no such
    /// label) meets the requirement.
    pub fn holds_for(&self, value: Option<&str>) -> bool {
        match self {
            Requirement::Equals(want) => value == Some(want.as_str()),
            Requirement::Op(Op::In(set)) => value.is_some_and(|v| set.iter().any(|s| s == v)),
            Requirement::Op(Op::NotIn(set)) => !value.is_some_and(|v| set.iter().any(|s| s == v)),
            Requirement::Op(Op::Exists(present)) => value.is_some() == *present,
        }
    }
}

/// Whether executor labels meet every requirement of `selector`.
pub fn matches(selector: &Selector, labels: &BTreeMap<String, String>) -> bool {
    selector
        .iter()
        .all(|(key, req)| req.holds_for(labels.get(key).map(String::as_str)))
}

/// A selector as people read it: `{zone=eu-1, tier in [a,b], gpu exists}`.
pub struct Shown<'a>(pub &'a Selector);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (key, req)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match req {
                Requirement::Equals(v) => write!(f, "{key}={v}")?,
                Requirement::Op(Op::In(set)) => write!(f, "{key} in [{}]", set.join(","))?,
                Requirement::Op(Op::NotIn(set)) => write!(f, "{key} not in [{}]", set.join(","))?,
                Requirement::Op(Op::Exists(true)) => write!(f, "{key} exists")?,
                Requirement::Op(Op::Exists(false)) => write!(f, "{key} does not exist")?,
            }
        }
        f.write_str("}")
    }
}

/// A string, or an object with exactly one of `in`, `not_in`, `exists`
/// (so a typo is an error, not a requirement that silently vanishes).
impl<'de> Deserialize<'de> for Requirement {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RequirementVisitor)
    }
}

struct RequirementVisitor;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpFields {
    #[serde(rename = "in")]
    within: Option<Vec<String>>,
    not_in: Option<Vec<String>>,
    exists: Option<bool>,
}

impl<'de> Visitor<'de> for RequirementVisitor {
    type Value = Requirement;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"a string, or an object {"in": [..]}, {"not_in": [..]} or {"exists": bool}"#)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Requirement, E> {
        Ok(Requirement::Equals(v.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Requirement, A::Error> {
        let fields = OpFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
        match (fields.within, fields.not_in, fields.exists) {
            (Some(set), None, None) => Ok(Requirement::Op(Op::In(set))),
            (None, Some(set), None) => Ok(Requirement::Op(Op::NotIn(set))),
            (None, None, Some(present)) => Ok(Requirement::Op(Op::Exists(present))),
            _ => Err(de::Error::custom(
                "give exactly one of `in`, `not_in` or `exists`",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(json: &str) -> Selector {
        serde_json::from_str(json).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn each_requirement_holds_as_documented() {
        let eu = labels(&[("zone", "eu-1"), ("tier", "a")]);
        let us = labels(&[("zone", "us-1"), ("tier", "c"), ("gpu", "")]);
        let bare = labels(&[]);
        let check = |json: &str, expected: [bool; 3]| {
            let s = selector(json);
            assert_eq!(
                [matches(&s, &eu), matches(&s, &us), matches(&s, &bare)],
                expected,
                "{json}"
            );
        };
        check(r#"{}"#, [true, true, true]);
        check(r#"{"zone":"eu-1"}"#, [true, false, false]);
        check(r#"{"tier":{"in":["a","b"]}}"#, [true, false, false]);
        check(r#"{"tier":{"not_in":["a"]}}"#, [false, true, true]);
        check(r#"{"gpu":{"exists":true}}"#, [false, true, false]);
        check(r#"{"gpu":{"exists":false}}"#, [true, false, true]);
        check(r#"{"zone":"eu-1","tier":"c"}"#, [false, false, false]);
    }

    #[test]
    fn objects_need_exactly_one_known_operator() {
        for bad in [
            r#"{"k":{}}"#,
            r#"{"k":{"in":["a"],"exists":true}}"#,
            r#"{"k":{"is":"a"}}"#,
            r#"{"k":1}"#,
            r#"{"k":["a"]}"#,
            r#"{"k":{"in":"a"}}"#,
        ] {
            assert!(serde_json::from_str::<Selector>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trips_through_json_and_the_store_encoding() {
        let s = selector(
            r#"{"zone":"eu-1","tier":{"in":["a","b"]},"old":{"not_in":["x"]},"gpu":{"exists":true}}"#,
        );
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"gpu":{"exists":true},"old":{"not_in":["x"]},"tier":{"in":["a","b"]},"zone":"eu-1"}"#
        );
        let stored = crate::wire::encode(&s).unwrap();
        assert_eq!(crate::wire::decode::<Selector>(&stored).unwrap(), s);
    }

    #[test]
    fn shows_as_people_read_it() {
        let s = selector(
            r#"{"zone":"eu-1","tier":{"in":["a","b"]},"old":{"not_in":["x"]},"gpu":{"exists":false}}"#,
        );
        assert_eq!(
            Shown(&s).to_string(),
            "{gpu does not exist, old not in [x], tier in [a,b], zone=eu-1}"
        );
    }
}
