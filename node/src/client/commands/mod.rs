//! Runs one client command against the admin API and returns what goes to
//! stdout; each area's commands live in their own file.

mod backup;
mod cluster;
mod job;
mod run;
mod schedule;
#[cfg(test)]
mod tests;
mod wait;

use bytes::Bytes;
use serde_json::Value;
use url::Url;

use super::{
    args::{ApiOpts, ClientCommand, OutputFormat},
    error::CliError,
    http::Api,
    pretty::pretty_json,
};

/// What every command needs: the API and how to print.
pub(crate) struct Ctx {
    pub api: Api,
    pub output: OutputFormat,
}

impl Ctx {
    pub fn json(&self) -> bool {
        self.output == OutputFormat::Json
    }
}

/// Runs `command` and returns the bytes for stdout. Notes for people (an
/// empty list, a truncated one) go to stderr as the command runs.
pub async fn execute(opts: &ApiOpts, command: ClientCommand) -> Result<Vec<u8>, CliError> {
    let ctx = Ctx {
        api: Api::new(&opts.api, opts.token.as_deref(), &opts.trusted()?)?,
        output: opts.output,
    };
    match command {
        ClientCommand::Job(cmd) => job::execute(&ctx, cmd).await,
        ClientCommand::Run(cmd) => run::execute(&ctx, cmd).await,
        ClientCommand::Cluster(cmd) => cluster::execute(&ctx, cmd).await,
        ClientCommand::Executors => cluster::executors(&ctx).await,
        ClientCommand::Schedule(cmd) => schedule::execute(&ctx, cmd).await,
        ClientCommand::Backup { out } => backup::execute(&ctx, &out).await,
    }
}

/// The server's JSON pretty-printed (as is when it is not JSON).
fn json_out(body: &[u8]) -> Vec<u8> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Vec::new();
    }
    let mut out = match pretty_json(body) {
        Some(text) => text.into_bytes(),
        None => body.to_vec(),
    };
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

/// The body of a 2xx answer as JSON; `Null` when it is empty.
fn value(url: &Url, body: &Bytes) -> Result<Value, CliError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| CliError::BadResponse {
        url: url.to_string(),
        message: format!("the body is not JSON: {e}"),
    })
}

fn to_body<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, CliError> {
    serde_json::to_vec(value)
        .map_err(|e| CliError::usage(format!("cannot encode the request: {e}")))
}

fn note(text: &str) {
    eprintln!("{text}");
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn json_output_is_pretty_and_ends_with_a_newline() {
        assert_eq!(
            json_out(br#"{"b":1,"a":[]}"#),
            b"{\n  \"b\": 1,\n  \"a\": []\n}\n"
        );
        assert_eq!(json_out(b""), b"");
        assert_eq!(json_out(b"plain text"), b"plain text\n");
    }

    #[tokio::test]
    async fn a_bad_api_url_fails_before_any_request() {
        let opts = ApiOpts {
            api: "localhost:7070".into(),
            token: None,
            api_ca: None,
            output: OutputFormat::Table,
        };
        let err = execute(&opts, ClientCommand::Executors)
            .await
            .expect_err("not a URL");
        assert_eq!(err.exit_code(), 2);
    }
}
