//! The store writes of each scheduler node: `cronmesh_store_writes_total`
//! read from its `GET /metrics` (OpenMetrics text) at the window's start
//! and end. A build without the counter, a node that does not answer or
//! a text that cannot be read give no figure, never an error: the writes
//! are a figure of the report, not a condition of the bench.

use std::{collections::HashMap, time::Duration};

use futures::future::join_all;

use super::{api::Admin, cluster::Cluster};

/// The counter: every write the node's store made (summed over its
/// labels, if it has any).
pub const METRIC: &str = "cronmesh_store_writes_total";

/// How long a node may take to answer `/metrics`.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A node's counter at one moment, and which process answered: a node
/// restarted in between starts counting again from 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Counter {
    pub pid: u32,
    pub value: f64,
}

/// The counter of every running server, by node id; a node without one
/// (not running, not answering, no such metric) is left out.
pub async fn read_all(cluster: &Cluster) -> HashMap<u64, Counter> {
    let reads = cluster.servers.iter().filter_map(|server| {
        let node = server.node_id?;
        let pid = server.pid()?;
        let url = format!("{}/metrics", cluster.api_url(node));
        Some(async move {
            let value = read(cluster.admin(), &url).await?;
            Some((node, Counter { pid, value }))
        })
    });
    join_all(reads).await.into_iter().flatten().collect()
}

/// [`METRIC`] of the node whose `/metrics` is at `url`.
async fn read(admin: &Admin, url: &str) -> Option<f64> {
    let text = admin.get_text(url, TIMEOUT).await.ok()?;
    parse(&text, METRIC)
}

/// The sum of the samples of metric `name` in an OpenMetrics (or
/// Prometheus) text: `name VALUE`, or `name{labels} VALUE`, each
/// optionally followed by a timestamp. `None` if no sample of it could be
/// read. Malformed lines and values that are not finite, non-negative
/// numbers are passed over.
pub fn parse(text: &str, name: &str) -> Option<f64> {
    let mut sum: Option<f64> = None;
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let rest = match rest.chars().next() {
            Some('{') => match after_labels(rest) {
                Some(rest) => rest,
                None => continue,
            },
            Some(c) if c.is_whitespace() => rest,
            // Another metric whose name starts with this one's, or no value.
            _ => continue,
        };
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
        else {
            continue;
        };
        sum = Some(sum.unwrap_or(0.0) + value);
    }
    sum.filter(|s| s.is_finite())
}

/// What follows the label set `{...}` that `text` starts with; label
/// values are quoted and may hold `}`, `"` and `\` escaped.
fn after_labels(text: &str) -> Option<&str> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return text.get(i + 1..),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_counter() {
        let text = "# HELP cronmesh_store_writes Writes the store made.\n\
                    # TYPE cronmesh_store_writes counter\n\
                    cronmesh_store_writes_total 1234\n\
                    cronmesh_store_writes_created 1.7e9\n\
                    cronmesh_fires_total 9\n\
                    # EOF\n";
        assert_eq!(parse(text, METRIC), Some(1234.0));
        assert_eq!(parse(text, "cronmesh_fires_total"), Some(9.0));
        assert_eq!(parse(text, "cronmesh_absent_total"), None);
        assert_eq!(parse("", METRIC), None);
    }

    #[test]
    fn sums_labels_and_passes_timestamps() {
        let text = "cronmesh_store_writes_total{tree=\"runs\"} 10 1700000000\n\
                    cronmesh_store_writes_total{tree=\"jo}bs\",x=\"a\\\"}\"} 2.5e1\n\
                    cronmesh_store_writes_total_other 1000\n\
                    cronmesh_store_writes_totalx 1000\n";
        assert_eq!(parse(text, METRIC), Some(35.0));
    }

    /// Serves one HTTP answer of `status` with `body` on a loopback port.
    async fn serve_once(status: &str, body: &'static [u8]) -> anyhow::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/metrics", listener.local_addr()?);
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body).await;
            }
        });
        Ok(url)
    }

    #[tokio::test]
    async fn reads_a_node_and_gives_nothing_on_a_bad_answer() -> anyhow::Result<()> {
        let admin = Admin::new();
        let good = serve_once("200 OK", b"cronmesh_store_writes_total 42\n# EOF\n").await?;
        assert_eq!(read(&admin, &good).await, Some(42.0));
        let refused = serve_once(
            "500 Internal Server Error",
            b"cronmesh_store_writes_total 1\n",
        )
        .await?;
        assert_eq!(read(&admin, &refused).await, None);
        let binary = serve_once("200 OK", b"\xff\xfe\x00cronmesh_store_writes_total{\n").await?;
        assert_eq!(read(&admin, &binary).await, None);
        // Nobody listening.
        let gone = serve_once("200 OK", b"").await?;
        let _ = read(&admin, &gone).await;
        assert_eq!(read(&admin, &gone).await, None);
        Ok(())
    }

    #[test]
    fn hostile_text_never_panics() {
        let hostile = [
            "cronmesh_store_writes_total",
            "cronmesh_store_writes_total ",
            "cronmesh_store_writes_total{",
            "cronmesh_store_writes_total{a=\"}",
            "cronmesh_store_writes_total{a=\"\\",
            "cronmesh_store_writes_total{} ",
            "cronmesh_store_writes_total NaN",
            "cronmesh_store_writes_total +Inf",
            "cronmesh_store_writes_total -5",
            "cronmesh_store_writes_total 0x10",
            "cronmesh_store_writes_total{é=\"ü\"} ☃",
            "cronmesh_store_writes_total\u{0}1",
            "\u{feff}cronmesh_store_writes_total 1e400",
            "}}}{{{\"\"\\\\",
        ];
        for text in hostile {
            assert_eq!(parse(text, METRIC), None, "{text:?}");
        }
        // Two huge values whose sum is not finite.
        let huge = "cronmesh_store_writes_total 1e308\ncronmesh_store_writes_total 1e308\n";
        assert_eq!(parse(huge, METRIC), None);
        // A good line among bad ones still counts.
        let mixed = format!("{}\ncronmesh_store_writes_total 7\n", hostile.join("\n"));
        assert_eq!(parse(&mixed, METRIC), Some(7.0));
        // Every cut of a valid text reads or not, without panicking.
        let valid = "cronmesh_store_writes_total{tree=\"r\\\"uns\"} 10 1700000000\n";
        for end in 0..=valid.len() {
            let _ = parse(&valid[..end], METRIC);
        }
    }
}
