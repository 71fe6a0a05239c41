//! Pretty-prints the server's JSON for `--output json`; keys keep the
//! server's order.

/// Two-space indented JSON, or `None` when `input` is not valid JSON.
pub fn pretty_json(input: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(input).ok()?;
    serde_json::to_string_pretty(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_and_keeps_key_order() {
        let out = pretty_json(br#"{"z":1,"a":[true,null]}"#).expect("valid");
        assert_eq!(
            out,
            "{\n  \"z\": 1,\n  \"a\": [\n    true,\n    null\n  ]\n}"
        );
    }

    #[test]
    fn scalars_and_invalid_input() {
        assert_eq!(pretty_json(b" \"x\" ").as_deref(), Some("\"x\""));
        assert_eq!(pretty_json(b"[]").as_deref(), Some("[]"));
        assert_eq!(pretty_json(b"{\"a\":"), None);
        assert_eq!(pretty_json(b"not json"), None);
    }
}
