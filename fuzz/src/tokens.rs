//! Target `tokens`: the admin API's token file (`--token-file`), read by
//! `node::tokens::parse_tokens` (the file is read as UTF-8 text first; other
//! bytes are skipped).
//!
//! Invariants of a file that parses: it holds at least one token; every
//! token has a scope, is one word of visible ASCII (it travels in a
//! header) and passes `check_token`; and the tokens written back as
//! `SCOPE TOKEN` lines parse to the same list.

use node::tokens::{check_token, parse_tokens};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(tokens) = parse_tokens(text) else {
        return;
    };
    assert!(!tokens.is_empty(), "a file that parses holds a token");
    let mut rendered = String::new();
    for (scope, token) in &tokens {
        assert!(
            matches!(scope.as_str(), "admin" | "read"),
            "{scope:?}: no scope"
        );
        assert!(
            !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()),
            "{token:?} cannot travel in a header"
        );
        assert!(!token.contains('#'), "{token:?} holds a comment");
        assert!(check_token(token).is_ok(), "{token:?} fails check_token");
        rendered.push_str(&format!("{} {token}\n", scope.as_str()));
    }
    match parse_tokens(&rendered) {
        Ok(again) => assert_eq!(again, tokens, "{rendered:?}: rendered file"),
        Err(e) => panic!("{rendered:?}: the rendered file does not parse: {e:#}"),
    }
}
