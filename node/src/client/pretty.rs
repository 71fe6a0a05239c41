//! Pretty-prints the server's JSON without changing it: keys keep their
//! order and numbers and strings their exact text; only whitespace changes.

/// Two-space indented JSON, or `None` when `input` is not valid JSON.
pub fn pretty_json(input: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(input).ok()?;
    let text = std::str::from_utf8(input).ok()?;
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // Just opened a container: its first item (or its close) decides the layout.
    let mut opened = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if opened {
            opened = false;
            if matches!(c, '}' | ']') {
                depth -= 1;
                out.push(c);
                continue;
            }
            newline(&mut out, depth);
        }
        match c {
            '{' | '[' => {
                out.push(c);
                depth += 1;
                opened = true;
            }
            '}' | ']' => {
                depth -= 1;
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            '"' => {
                in_string = true;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    Some(out)
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_serde_json_pretty_printing() {
        let value = json!({
            "a": [1, 2.5, -3e-7, {"b": null, "c": []}, {}],
            "s": "quote \" and backslash \\ and {[,:]}",
            "t": true,
            "u": "\u{e9}\u{1F600}"
        });
        let compact = serde_json::to_string(&value).expect("serializable");
        let expected = serde_json::to_string_pretty(&value).expect("serializable");
        assert_eq!(
            pretty_json(compact.as_bytes()).as_deref(),
            Some(expected.as_str())
        );
        // Already pretty input comes out the same.
        assert_eq!(
            pretty_json(expected.as_bytes()).as_deref(),
            Some(expected.as_str())
        );
    }

    #[test]
    fn keeps_key_order_and_number_text() {
        let out = pretty_json(br#"{"z":1.10,"a":12345678901234567890123}"#).expect("valid");
        assert_eq!(
            out,
            "{\n  \"z\": 1.10,\n  \"a\": 12345678901234567890123\n}"
        );
    }

    #[test]
    fn scalars_and_invalid_input() {
        assert_eq!(pretty_json(b" \"x\" ").as_deref(), Some("\"x\""));
        assert_eq!(pretty_json(b"[]").as_deref(), Some("[]"));
        assert_eq!(pretty_json(b"{\"a\":"), None);
        assert_eq!(pretty_json(b"not json"), None);
        assert_eq!(pretty_json(b""), None);
    }
}
