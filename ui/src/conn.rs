//! Which node the viewer reads from, and moving to another member when that
//! node stops answering.

use crate::{
    api::{parse_base, Api, ApiError},
    model::{Cluster, Snapshot},
};

/// The state of the connection, as the screen shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Nothing answered yet.
    Connecting { url: String },
    /// `url` answers. `lost` is the node it replaced, when the viewer moved
    /// off the node it was reading because that one stopped answering.
    Connected { url: String, lost: Option<String> },
    /// No node answered the last refresh; `url` is tried first next time.
    Reconnecting { url: String, error: String },
}

/// The node being read plus every other member seen, to fail over to.
pub struct Connection {
    api: Api,
    /// The `--api` URL: always worth retrying, even if no member lists it.
    original: String,
    /// Admin URLs of the members in the last `/v1/cluster` seen, leader first.
    known: Vec<String>,
    /// The node last given up on, kept for the screen while on its stand-in.
    lost: Option<String>,
}

impl Connection {
    pub fn new(api: Api) -> Self {
        Self {
            original: api.url(),
            api,
            known: Vec::new(),
            lost: None,
        }
    }

    /// The client of the node being read, for actions.
    pub fn api(&self) -> Api {
        self.api.clone()
    }

    /// Reads a snapshot from the current node, or from the first other
    /// member that answers when the current one cannot be reached.
    pub async fn refresh(&mut self) -> (Link, Result<Snapshot, ApiError>) {
        let error = match self.api.cluster().await {
            Ok(cluster) => return self.read_rest(cluster).await,
            Err(e) if e.is_unreachable() => e,
            Err(e) => return (self.connected(), Err(e)),
        };
        let failed = self.api.url();
        for url in candidates(&failed, &self.original, &self.known) {
            let Ok(base) = parse_base(&url) else { continue };
            let api = self.api.with_base(base);
            if let Ok(cluster) = api.cluster().await {
                self.api = api;
                self.lost = Some(failed);
                return self.read_rest(cluster).await;
            }
        }
        let link = Link::Reconnecting {
            url: failed,
            error: match &error {
                ApiError::Unreachable(why) => why.clone(),
                other => other.to_string(),
            },
        };
        (link, Err(error))
    }

    async fn read_rest(&mut self, cluster: Cluster) -> (Link, Result<Snapshot, ApiError>) {
        self.known = member_urls(&cluster);
        if self.lost.as_deref() == Some(self.api.url().as_str()) {
            self.lost = None;
        }
        let snapshot = self.api.rest_of_snapshot(cluster).await;
        (self.connected(), snapshot)
    }

    fn connected(&self) -> Link {
        Link::Connected {
            url: self.api.url(),
            lost: self.lost.clone(),
        }
    }
}

/// Admin URLs of the members, the leader's first, then by node id.
pub fn member_urls(cluster: &Cluster) -> Vec<String> {
    let mut members: Vec<_> = cluster.members.iter().collect();
    members.sort_by_key(|m| (Some(m.node_id) != cluster.leader_id, m.node_id));
    members
        .into_iter()
        .filter_map(|m| m.api_url.as_deref())
        .map(|u| u.trim_end_matches('/').to_string())
        .collect()
}

/// Where to look when `failed` does not answer: the known members, then the
/// `--api` node, each once, never `failed` itself.
pub fn candidates(failed: &str, original: &str, known: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for url in known.iter().map(String::as_str).chain([original]) {
        let url = url.trim_end_matches('/');
        if url != failed && !out.iter().any(|u| u == url) {
            out.push(url.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Member;

    fn member(node_id: u64, url: &str) -> Member {
        Member {
            node_id,
            role: "follower".into(),
            api_url: Some(url.into()),
            matched_index: None,
        }
    }

    #[test]
    fn leader_first_then_by_id() {
        let cluster = Cluster {
            leader_id: Some(3),
            members: vec![
                member(2, "http://b/"),
                member(3, "http://c"),
                member(1, "http://a"),
            ],
            ..Cluster::default()
        };
        assert_eq!(member_urls(&cluster), ["http://c", "http://a", "http://b"]);
    }

    #[test]
    fn candidates_skip_the_failed_node_and_end_with_the_original() {
        let known = vec!["http://c".to_string(), "http://a".into(), "http://b".into()];
        assert_eq!(
            candidates("http://c", "http://a", &known),
            ["http://a", "http://b"]
        );
        assert_eq!(
            candidates("http://b", "http://x", &[]),
            ["http://x"],
            "the --api node is retried even when no member lists it"
        );
        assert!(candidates("http://x", "http://x", &[]).is_empty());
    }

    /// Two fake nodes listing each other: the viewer reads the first, moves
    /// to the second when the first goes away, and says it is reconnecting
    /// when neither answers.
    #[tokio::test]
    async fn moves_to_another_member_when_its_node_stops_answering() {
        use crate::{api, fixtures::serve};
        use tokio::net::TcpListener;

        let bind = || TcpListener::bind("127.0.0.1:0");
        let (a, b) = (bind().await.expect("bind a"), bind().await.expect("bind b"));
        let url = |l: &TcpListener| format!("http://{}", l.local_addr().expect("address"));
        let (url_a, url_b) = (url(&a), url(&b));
        let cluster = |node_id: u64| {
            serde_json::json!({
                "node_id": node_id, "leader_id": 1, "term": 2,
                "commit_index": 7, "applied_index": 7,
                "members": [
                    {"node_id": 1, "role": "leader", "api_url": url_a},
                    {"node_id": 2, "role": "follower", "api_url": url_b},
                ]
            })
        };
        let node_a = serve(a, cluster(1));
        let node_b = serve(b, cluster(2));
        let client = api::http_client(&[]).expect("client");
        let base = api::parse_base(&url_a).expect("base");
        let mut conn = Connection::new(Api::new(client, base, None));

        let (link, snapshot) = conn.refresh().await;
        assert_eq!(
            link,
            Link::Connected {
                url: url_a.clone(),
                lost: None
            }
        );
        assert_eq!(snapshot.map(|s| s.cluster.node_id), Ok(1));

        node_a.abort();
        let _ = node_a.await;
        let (link, snapshot) = conn.refresh().await;
        assert_eq!(
            link,
            Link::Connected {
                url: url_b.clone(),
                lost: Some(url_a.clone())
            }
        );
        assert_eq!(snapshot.map(|s| s.cluster.node_id), Ok(2));
        assert_eq!(conn.api().url(), url_b, "actions follow to the new node");

        node_b.abort();
        let _ = node_b.await;
        let (link, snapshot) = conn.refresh().await;
        assert!(
            matches!(&link, Link::Reconnecting { url, .. } if *url == url_b),
            "{link:?}"
        );
        assert!(snapshot.is_err_and(|e| e.is_unreachable()));
    }
}
