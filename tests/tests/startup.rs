//! A node that cannot start says why and exits 1: an address in use for
//! the admin API, Raft or gossip stops a server (or an executor) before anything runs, with no
//! panic on the way out.

use std::{
    net::{TcpListener, UdpSocket},
    process::Command,
};

use cronmesh_tests::process;

fn server(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let data = dir.to_string_lossy().to_string();
    Command::new(process::binary())
        .args(["server", "--unsigned", "--data-dir", &data])
        .args(extra)
        .output()
        .expect("run cronmesh server")
}

fn assert_refused(out: &std::process::Output, address: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(address), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_address_in_use_stops_the_node_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_tcp = tcp.local_addr().unwrap().to_string();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let taken_udp = udp.local_addr().unwrap().to_string();
    let free = |name: &str| {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.to_string())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };

    let out = server(&dir.path().join("a"), &["--http", &taken_tcp]);
    assert_refused(&out, &taken_tcp);

    let out = server(
        &dir.path().join("b"),
        &["--http", "127.0.0.1:0", "--raft", &taken_tcp],
    );
    assert_refused(&out, &taken_tcp);

    // Gossip binds after the admin API: what started before must stop
    // quietly too.
    let raft = free("raft");
    let out = server(
        &dir.path().join("c"),
        &[
            "--http",
            "127.0.0.1:0",
            "--raft",
            &raft,
            "--gossip",
            &taken_udp,
        ],
    );
    assert_refused(&out, &taken_udp);

    let out = Command::new(process::binary())
        .args(["executor", "--unsigned", "--listen", "127.0.0.1:0"])
        .args(["--gossip", &taken_udp, "--seeds", &raft])
        .output()
        .expect("run cronmesh executor");
    assert_refused(&out, &taken_udp);
}
