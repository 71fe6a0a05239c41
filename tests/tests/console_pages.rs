//! The console's pages over plain HTTP, where no browser is needed: a
//! follower of a three-node cluster shows every member and who leads, and
//! a page that cannot be shown says why with the right status.

use cronmesh_tests::cluster::Cluster;
use reqwest::StatusCode;

async fn page(base: &str, path: &str) -> (StatusCode, String) {
    let response = reqwest::get(format!("{base}{path}"))
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_follower_shows_the_whole_cluster_and_clear_errors() {
    let cluster = Cluster::start(3, &[], &[]);
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let base = cluster.api(follower).base;

    let (status, html) = page(&base, "/cluster").await;
    assert_eq!(status, StatusCode::OK);
    for id in 1..=3 {
        assert!(
            html.contains(&format!("<td>{id}</td>")),
            "member {id} is listed: {html}"
        );
    }
    assert!(html.contains(r#"class="badge role-leader""#), "{html}");
    assert!(html.contains(&format!(
        r#"<div class="card-value" id="leader">{leader}</div>"#
    )));

    let (status, html) = page(&base, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("node {leader}")),
        "the dashboard names the leader"
    );

    let (status, html) = page(&base, "/jobs/default/missing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        html.contains("job default/missing does not exist"),
        "{html}"
    );
    let (status, html) = page(&base, "/runs?status=sideways").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("sideways"), "{html}");
}
