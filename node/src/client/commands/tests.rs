//! The commands against a scripted HTTP server on loopback: what is sent,
//! how pages are followed, what is printed and which error comes back.

use std::sync::{Arc, Mutex};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use super::execute;
use crate::client::{
    args::{
        ApiOpts, ClientCommand, JobCommand, JobFileArgs, JobIdArgs, JobListArgs, NamespaceArg,
        OutputFormat, RunCommand,
    },
    error::CliError,
};

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: String,
    body: String,
}

type Answer = (u16, &'static str, String);

/// Serves each connection with `route`, recording every request.
async fn serve(route: fn(&Seen) -> Answer) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let mut words = head.split_whitespace();
                let request = Seen {
                    method: words.next().unwrap_or("").to_string(),
                    target: words.next().unwrap_or("").to_string(),
                    headers: head.to_ascii_lowercase(),
                    body: String::from_utf8_lossy(&buf[head_end..]).to_string(),
                };
                let (status, content_type, body) = route(&request);
                if let Ok(mut log) = log.lock() {
                    log.push(request);
                }
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn opts(api: &str, output: OutputFormat) -> ApiOpts {
    ApiOpts {
        api: api.to_string(),
        token: Some("s3cret".into()),
        api_ca: None,
        output,
    }
}

fn requests(seen: &Arc<Mutex<Vec<Seen>>>) -> Vec<Seen> {
    seen.lock().map(|s| s.clone()).unwrap_or_default()
}

fn job(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","namespace":"default","schedule":"@daily","timezone":"UTC","enabled":true,"target":{{"type":"shell","group":"default","command":"true"}}}}"#
    )
}

fn paged_jobs(req: &Seen) -> Answer {
    let body = if req.target.contains("cursor=c2") {
        format!(r#"{{"items":[{}],"next_cursor":null}}"#, job("c"))
    } else {
        format!(
            r#"{{"items":[{},{}],"next_cursor":"c2"}}"#,
            job("a"),
            job("b")
        )
    };
    (200, "application/json", body)
}

fn list(limit: u64) -> ClientCommand {
    ClientCommand::Job(JobCommand::List(JobListArgs {
        ns: NamespaceArg {
            namespace: "default".into(),
        },
        all_namespaces: false,
        label: Some("team=data".into()),
        enabled: Some(true),
        limit,
    }))
}

#[tokio::test]
async fn job_list_follows_cursors_with_filters_and_token() {
    let (api, seen) = serve(paged_jobs).await;
    let out = execute(&opts(&api, OutputFormat::Table), list(50))
        .await
        .expect("listed");
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.lines().nth(3).is_some_and(|l| l.starts_with("c ")),
        "{text}"
    );

    let seen = requests(&seen);
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].target,
        "/v1/jobs?namespace=default&label=team%3Ddata&enabled=true&limit=50"
    );
    assert_eq!(
        seen[1].target,
        "/v1/jobs?namespace=default&label=team%3Ddata&enabled=true&limit=48&cursor=c2"
    );
    assert!(seen[0].headers.contains("authorization: bearer s3cret"));
}

#[tokio::test]
async fn job_list_stops_at_the_limit_and_json_keeps_the_page_shape() {
    let (api, seen) = serve(paged_jobs).await;
    let out = execute(&opts(&api, OutputFormat::Json), list(2))
        .await
        .expect("listed");
    assert_eq!(requests(&seen).len(), 1, "the first page was enough");
    let value: serde_json::Value = serde_json::from_slice(&out).expect("JSON output");
    assert_eq!(value["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(value["next_cursor"], "c2");
}

#[tokio::test]
async fn create_sends_the_toml_file_as_json() {
    fn route(req: &Seen) -> Answer {
        (201, "application/json", req.body.clone())
    }
    let (api, seen) = serve(route).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("job.toml");
    std::fs::write(
        &path,
        "id = \"x\"\nschedule = \"@daily\"\n[target]\ntype = \"shell\"\ncommand = \"true\"\n",
    )
    .expect("write");
    let command = ClientCommand::Job(JobCommand::Create(JobFileArgs {
        file: path.to_string_lossy().to_string(),
        namespace: Some("ops".into()),
    }));
    let out = execute(&opts(&api, OutputFormat::Table), command)
        .await
        .expect("created");
    let text = String::from_utf8_lossy(&out);
    let fields: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(fields[0], ["id", "x"], "{text}");
    assert_eq!(fields[1], ["namespace", "ops"], "{text}");

    let seen = requests(&seen);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("POST", "/v1/jobs")
    );
    assert!(seen[0].headers.contains("content-type: application/json"));
    let sent: serde_json::Value = serde_json::from_str(&seen[0].body).expect("JSON body");
    assert_eq!(
        sent,
        serde_json::json!({"id": "x", "namespace": "ops", "schedule": "@daily",
                           "target": {"type": "shell", "command": "true"}})
    );
}

#[tokio::test]
async fn server_errors_map_to_exit_codes_with_the_servers_message() {
    fn route(req: &Seen) -> Answer {
        match req.target.as_str() {
            t if t.starts_with("/v1/jobs/missing") => (
                404,
                "application/json",
                r#"{"error":{"code":"not_found","message":"no job default/missing","field":null}}"#
                    .into(),
            ),
            t if t.starts_with("/v1/jobs/bad") => (
                400,
                "application/json",
                r#"{"error":{"code":"invalid_field","message":"bad zone","field":"timezone"}}"#
                    .into(),
            ),
            _ => (500, "text/plain", "boom".into()),
        }
    }
    let (api, _) = serve(route).await;
    let get = |id: &str| {
        ClientCommand::Job(JobCommand::Get(JobIdArgs {
            id: id.into(),
            ns: NamespaceArg {
                namespace: "default".into(),
            },
        }))
    };
    let table = opts(&api, OutputFormat::Table);

    let missing = execute(&table, get("missing")).await.expect_err("404");
    assert_eq!(missing.exit_code(), 3);
    assert!(
        missing.report().contains("no job default/missing"),
        "{missing}"
    );

    let bad = execute(&table, get("bad")).await.expect_err("400");
    assert_eq!(bad.exit_code(), 1);
    assert!(bad.report().contains("  field: timezone\n"), "{bad}");

    let boom = execute(&table, get("other")).await.expect_err("500");
    assert_eq!(boom.exit_code(), 1);
    assert!(matches!(boom, CliError::Api { status: 500, .. }), "{boom}");
}

#[tokio::test]
async fn run_output_is_printed_raw() {
    fn route(_: &Seen) -> Answer {
        (200, "text/plain", "line 1\n{not json}\n".into())
    }
    let (api, seen) = serve(route).await;
    let command = ClientCommand::Run(RunCommand::Output {
        id: "r/1".into(),
        follow: false,
    });
    let out = execute(&opts(&api, OutputFormat::Json), command)
        .await
        .expect("output");
    assert_eq!(out, b"line 1\n{not json}\n");
    assert_eq!(requests(&seen)[0].target, "/v1/runs/r%2F1/output");
}

#[tokio::test]
async fn a_non_json_success_body_is_a_bad_response() {
    fn route(_: &Seen) -> Answer {
        (200, "text/html", "<html>welcome</html>".into())
    }
    let (api, _) = serve(route).await;
    let err = execute(&opts(&api, OutputFormat::Table), ClientCommand::Executors)
        .await
        .expect_err("not JSON");
    assert_eq!(err.exit_code(), 1);
    assert!(matches!(err, CliError::BadResponse { .. }), "{err}");
}
