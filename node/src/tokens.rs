//! The admin API's bearer tokens and what each may do. A `read` token may
//! look (every GET but `/v1/backup`); an `admin` token may also change
//! things. A token file holds one `SCOPE TOKEN` pair a line:
//!
//! ```text
//! # /etc/cronmesh/tokens
//! admin 4f0c...e1
//! read  9a77...0b   # dashboards, the TUI of the on-call rota
//! ```

use std::path::Path;

use anyhow::{bail, Context};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

/// A token may travel in a header: printable ASCII, no spaces.
pub fn check_token(token: &str) -> anyhow::Result<()> {
    if token.is_empty() {
        bail!("a token is empty");
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        bail!("a token must be printable ASCII without spaces (it travels in a header)");
    }
    Ok(())
}

/// Reads a token file: `SCOPE TOKEN` a line, `#` starts a comment.
pub fn read_token_file(path: &Path) -> anyhow::Result<Vec<(Scope, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    parse_tokens(&text).with_context(|| format!("in the token file {}", path.display()))
}

pub fn parse_tokens(text: &str) -> anyhow::Result<Vec<(Scope, String)>> {
    let mut tokens = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(scope), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
            bail!("line {}: write `admin TOKEN` or `read TOKEN`", number + 1);
        };
        let scope = match scope {
            "admin" => Scope::Admin,
            "read" => Scope::Read,
            other => bail!(
                "line {}: unknown scope `{other}`; use admin or read",
                number + 1
            ),
        };
        check_token(token).with_context(|| format!("line {}", number + 1))?;
        tokens.push((scope, token.to_string()));
    }
    if tokens.is_empty() {
        bail!("it holds no token");
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_file_names_a_scope_per_token() {
        let tokens = parse_tokens("# comment\nadmin abc123\n\nread  r3ad  # on-call\n").unwrap();
        assert_eq!(
            tokens,
            vec![
                (Scope::Admin, "abc123".into()),
                (Scope::Read, "r3ad".into())
            ]
        );
        let err = format!("{:#}", parse_tokens("write abc").unwrap_err());
        assert!(err.contains("unknown scope `write`"), "{err}");
        assert!(parse_tokens("admin").is_err());
        assert!(
            parse_tokens("# nothing\n").is_err(),
            "an empty file fails closed"
        );
    }
}
