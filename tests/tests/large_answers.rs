//! An HTTP target's answer is streamed, never held whole: a target that
//! answers 200 MB leaves the run with the answer's tail as its output, and
//! the node's resident memory grows by far less than the answer's size.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use cronmesh_tests::{api::Api, process, wait};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// The answer's size: more than the growth the test allows.
const BODY: u64 = 200 * 1024 * 1024;
/// Growth of the node's resident memory the test allows.
const MAX_GROWTH: u64 = 100 * 1024 * 1024;
/// The answer's last bytes.
const END: &[u8] = b"...and this is the end of a very long answer\n";

/// Serves every connection one `BODY`-byte answer ending in `END`,
/// written a mebibyte at a time; counts the bytes written.
async fn huge_answers(written: Arc<AtomicU64>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/huge", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let written = written.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let header = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {BODY}\r\nconnection: close\r\n\r\n"
                );
                if socket.write_all(header.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 1024 * 1024];
                let mut left = BODY - END.len() as u64;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if socket.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    written.fetch_add(n as u64, Ordering::Relaxed);
                    left -= n as u64;
                }
                if socket.write_all(END).await.is_ok() {
                    written.fetch_add(END.len() as u64, Ordering::Relaxed);
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

/// The process's resident memory in bytes (VmRSS).
fn resident(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the node's status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

#[tokio::test]
async fn a_200_mb_answer_is_streamed_and_only_its_tail_kept() {
    let written = Arc::new(AtomicU64::new(0));
    let url = huge_answers(written.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let node = process::dev(dir.path(), &[]);
    let api = Api::new(node.url.clone());
    api.create_job(json!({"id": "huge", "schedule": "@manual", "timeout": "5m",
        "target": {"type": "http", "url": url}}))
        .await;

    let baseline = resident(node.pid());
    let done = Arc::new(AtomicBool::new(false));
    let pid = node.pid();
    let watcher = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(resident(pid));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            peak.max(resident(pid))
        })
    };

    let (status, body) = api.post("/v1/jobs/huge/trigger", json!({})).await;
    assert_eq!(status, 202, "{body}");
    let run = wait::until("the run to end", Duration::from_secs(240), || async {
        let runs = api.runs_of("huge").await;
        runs.into_iter().find(|r| {
            !matches!(
                r["status"].as_str(),
                Some("pending" | "dispatched" | "running")
            )
        })
    })
    .await;
    done.store(true, Ordering::Relaxed);
    let peak = watcher.await.unwrap();

    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        written.load(Ordering::Relaxed),
        BODY,
        "the whole answer was sent"
    );
    let output = run["output"].as_str().unwrap();
    assert!(
        output.ends_with(std::str::from_utf8(END).unwrap()),
        "{}",
        &output[output.len().saturating_sub(80)..]
    );
    assert_eq!(
        output.len(),
        protocol::run::OUTPUT_LIMIT,
        "the output is the answer's tail"
    );
    let growth = peak.saturating_sub(baseline);
    println!(
        "node RSS: {} MiB before, {} MiB at most while reading a {} MiB answer (+{} MiB)",
        baseline >> 20,
        peak >> 20,
        BODY >> 20,
        growth >> 20
    );
    assert!(
        growth < MAX_GROWTH,
        "the node grew by {} MiB reading a {} MiB answer",
        growth >> 20,
        BODY >> 20
    );
}
