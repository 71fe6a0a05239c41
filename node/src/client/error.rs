//! What can go wrong in a client command, the exit code each maps to, and
//! the message that tells the user what to fix.

use std::fmt::Write as _;

/// Exit codes (see [`crate::client::args::EXIT_CODES_HELP`]).
pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_NOT_FOUND: u8 = 3;
pub const EXIT_UNREACHABLE: u8 = 4;
pub const EXIT_RUN_FAILED: u8 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// Bad arguments or an unreadable / invalid input file.
    Usage(String),
    /// The server answered with an error status.
    Api {
        status: u16,
        /// The server's `error.code`, when the body was an error body.
        code: Option<String>,
        message: String,
        field: Option<String>,
        /// What the user may do about it, added by the command.
        hint: Option<String>,
    },
    /// No answer from the server: connection refused, DNS, TLS, timeout.
    Unreachable { url: String, reason: String },
    /// The server answered 2xx with a body this client cannot read.
    BadResponse { url: String, message: String },
    /// Writing the result failed (other than a closed pipe).
    Output(String),
    /// A run the command waited for ended other than `succeeded`.
    RunDidNotSucceed { id: String, status: String },
}

/// Exit code for an HTTP error status: 404 is "not found", anything else
/// the server refused or failed.
pub fn exit_code_for_status(status: u16) -> u8 {
    if status == 404 {
        EXIT_NOT_FOUND
    } else {
        EXIT_REFUSED
    }
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Api { status, .. } => exit_code_for_status(*status),
            CliError::Unreachable { .. } => EXIT_UNREACHABLE,
            CliError::BadResponse { .. } | CliError::Output(_) => EXIT_REFUSED,
            CliError::RunDidNotSucceed { .. } => EXIT_RUN_FAILED,
        }
    }

    /// Adds a hint to an API error with this status (other errors pass).
    pub fn hint_on(mut self, on_status: u16, text: &str) -> Self {
        if let CliError::Api { status, hint, .. } = &mut self {
            if *status == on_status {
                *hint = Some(text.to_string());
            }
        }
        self
    }

    /// The lines printed on stderr.
    pub fn report(&self) -> String {
        let mut out = String::new();
        match self {
            CliError::Usage(message) => {
                let _ = writeln!(out, "error: {message}");
            }
            CliError::Api {
                status,
                code,
                message,
                field,
                hint,
            } => {
                let reason = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                let code = code
                    .as_deref()
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "error: {message} ({status} {reason}{code})");
                if let Some(field) = field.as_deref().filter(|f| !f.is_empty()) {
                    let _ = writeln!(out, "  field: {field}");
                }
                if let Some(hint) = hint.clone().or_else(|| default_hint(*status)) {
                    let _ = writeln!(out, "  hint: {hint}");
                }
            }
            CliError::Unreachable { url, reason } => {
                let _ = writeln!(
                    out,
                    "error: cannot reach the cronmesh API at {url}: {reason}"
                );
                let hint = if reason.contains("certificate") {
                    "the node's TLS certificate is not trusted here: pass the CA that signed \
                     it with --api-ca FILE (or CRONMESH_API_CA)"
                } else {
                    "is a scheduler running there? Point --api (or CRONMESH_API) at a \
                     node's admin HTTP address, e.g. --api http://10.0.0.5:7070"
                };
                let _ = writeln!(out, "  hint: {hint}");
            }
            CliError::BadResponse { url, message } => {
                let _ = writeln!(out, "error: unexpected answer from {url}: {message}");
                let _ = writeln!(
                    out,
                    "  hint: is --api (or CRONMESH_API) a cronmesh admin API of a matching version?"
                );
            }
            CliError::Output(message) => {
                let _ = writeln!(out, "error: cannot write the result: {message}");
            }
            CliError::RunDidNotSucceed { id, status } => {
                let _ = writeln!(out, "error: run {id} ended {status}");
                let _ = writeln!(
                    out,
                    "  hint: `cronmesh run get {id}` shows its error, `cronmesh run output {id}` its output"
                );
            }
        }
        out
    }
}

fn default_hint(status: u16) -> Option<String> {
    let hint = match status {
        401 | 403 => "pass a valid --token (or set CRONMESH_TOKEN)",
        503 => "the cluster may have no leader right now; retry, or see `cronmesh cluster status`",
        _ => return None,
    };
    Some(hint.to_string())
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.report().trim_end())
    }
}

impl std::error::Error for CliError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> CliError {
        CliError::Api {
            status,
            code: Some("x".into()),
            message: "m".into(),
            field: None,
            hint: None,
        }
    }

    #[test]
    fn http_status_maps_to_exit_code() {
        for (status, code) in [
            (400, 1),
            (401, 1),
            (403, 1),
            (404, 3),
            (409, 1),
            (422, 1),
            (429, 1),
            (500, 1),
            (502, 1),
            (503, 1),
        ] {
            assert_eq!(exit_code_for_status(status), code, "status {status}");
            assert_eq!(api(status).exit_code(), code, "status {status}");
        }
    }

    #[test]
    fn other_errors_map_to_their_codes() {
        assert_eq!(CliError::usage("bad").exit_code(), 2);
        let unreachable = CliError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(unreachable.exit_code(), 4);
        let report = unreachable.report();
        assert!(report.contains("http://127.0.0.1:1"), "{report}");
        assert!(report.contains("--api"), "{report}");
        assert!(report.contains("CRONMESH_API"), "{report}");
        let untrusted = CliError::Unreachable {
            url: "https://127.0.0.1:7070".into(),
            reason: "invalid peer certificate: UnknownIssuer".into(),
        };
        let report = untrusted.report();
        assert!(report.contains("--api-ca"), "{report}");
        let bad = CliError::BadResponse {
            url: "u".into(),
            message: "m".into(),
        };
        assert_eq!(bad.exit_code(), 1);
    }

    #[test]
    fn report_names_the_message_and_field() {
        let err = CliError::Api {
            status: 400,
            code: Some("invalid_field".into()),
            message: "unknown time zone \"Mars/Base\"".into(),
            field: Some("timezone".into()),
            hint: None,
        };
        assert_eq!(
            err.report(),
            "error: unknown time zone \"Mars/Base\" (400 Bad Request, invalid_field)\n  field: timezone\n"
        );
        let conflict = api(409).hint_on(409, "use update").hint_on(404, "not this");
        assert!(conflict.report().ends_with("  hint: use update\n"));
        assert!(api(401).report().contains("--token"));
    }
}
