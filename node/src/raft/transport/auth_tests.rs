//! The transport with a cluster secret: what reaches the Raft thread, and
//! what does not, when peers hold the secret, hold another one, skip the
//! handshake, or lie about their id after it.

use std::collections::HashMap;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

use super::{
    handshake::{self, Hello, HANDSHAKE_TIMEOUT, HELLO_LEN},
    tests::{any_port, cluster_with, heartbeat, recv_n, seqs, start_with, wait_until, DEADLINE},
    *,
};

fn key(secret: &[u8]) -> RaftKey {
    RaftKey::from_secret(secret)
}

/// Node 2 with the secret, knowing nodes 1 and 3 at unused addresses (it
/// only receives in these tests).
async fn receiver() -> (RaftTransport, mpsc::Receiver<Message>) {
    let peers = HashMap::from([(1, any_port()), (3, any_port())]);
    start_with(
        2,
        any_port(),
        peers,
        Faults::default(),
        Some(key(b"secret")),
    )
    .await
}

/// A raw connection to `addr` that passed the handshake as node `from`.
async fn authenticated(addr: SocketAddr, from: u64, to: u64) -> TcpStream {
    let mut raw = TcpStream::connect(addr).await.expect("connect");
    handshake::client(&mut raw, &key(b"secret"), from, to)
        .await
        .expect("the handshake with the right secret");
    raw
}

fn frame(messages: &[Message]) -> Vec<u8> {
    let (frames, _) = encode_frames(messages, SOFT_FRAME_BYTES, MAX_FRAME_BYTES);
    frames.into_iter().flat_map(|f| f.bytes).collect()
}

/// Waits until the node closes `raw` (EOF or reset); fails after the
/// deadline.
async fn closed_by_the_node(raw: &mut TcpStream) {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(DEADLINE, raw.read(&mut buf))
            .await
            .expect("the node should close the connection")
        {
            Ok(0) | Err(_) => return,
            // The server's challenge, before it closes.
            Ok(_) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_secret_delivers_and_another_secret_delivers_nothing() {
    // Nodes 1 and 2 share a secret; node 3 holds another.
    let nodes = cluster_with(3, &Faults::default(), |id| {
        Some(key(if id == 3 { b"other" } else { b"secret" }))
    })
    .await;
    node_three_stays_apart(nodes).await;
}

/// Of `nodes` 1 to 3, node 3 holds what the other two refuse: node 1 is
/// heard by node 2, while node 3's connections fail both ways and nothing
/// of it or to it is delivered. Shuts the nodes down.
pub(super) async fn node_three_stays_apart(nodes: Vec<(RaftTransport, mpsc::Receiver<Message>)>) {
    let (t1, _) = &nodes[0];
    let (t2, rx2) = &nodes[1];
    let (t3, rx3) = &nodes[2];
    t3.send((0..5).map(|seq| heartbeat(3, 2, seq)).collect());
    t2.send(vec![heartbeat(2, 3, 100)]);
    t1.send(vec![heartbeat(1, 2, 7)]);
    // The member is heard...
    let received = recv_n(rx2, 1).await;
    assert_eq!((received[0].from, seqs(&received)), (1, vec![7]));
    // ...and the stranger fails both ways, with nothing delivered.
    wait_until("handshakes failed both ways", || {
        t3.stats().handshake_failures >= 1
            && t2.stats().handshake_failures >= 1
            && t2.stats().handshakes_refused >= 1
            && t3.stats().handshakes_refused >= 1
    })
    .await;
    assert!(rx2.try_recv().is_err(), "node 2 heard node 3");
    assert!(rx3.try_recv().is_err(), "node 3 heard node 2");
    assert_eq!(t3.stats().messages_sent, 0);
    assert!(t3.take_send_failures().unreachable.contains(&2));
    for (transport, _) in &nodes {
        transport.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_speaks_only_for_the_id_it_authenticated_as() {
    let (t2, rx2) = receiver().await;
    let mut raw = authenticated(t2.local_addr(), 1, 2).await;
    raw.write_all(&frame(&[heartbeat(3, 2, 0), heartbeat(1, 2, 1)]))
        .await
        .expect("write");
    assert_eq!(seqs(&recv_n(&rx2, 1).await), vec![1]);
    assert_eq!(t2.stats().dropped_wrong_sender, 1);
    // The connection stays, and carries node 1's messages on.
    raw.write_all(&frame(&[heartbeat(1, 2, 2)]))
        .await
        .expect("write");
    assert_eq!(seqs(&recv_n(&rx2, 1).await), vec![2]);

    // Once node 1 is removed, its connection is heard no more.
    t2.remove_peer(1);
    raw.write_all(&frame(&[heartbeat(1, 2, 3)]))
        .await
        .expect("write");
    wait_until("the removed peer's message dropped", || {
        t2.stats().dropped_wrong_sender == 2
    })
    .await;
    assert!(rx2.try_recv().is_err());
    t2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_without_a_handshake_are_refused_and_real_peers_still_served() {
    let (t2, rx2) = receiver().await;
    // The wire format of a node without a secret: a well-formed frame.
    let mut raw = TcpStream::connect(t2.local_addr()).await.expect("connect");
    let mut forged = heartbeat(1, 2, 0);
    forged.term = 1_000_000;
    raw.write_all(&frame(&[forged])).await.expect("write");
    closed_by_the_node(&mut raw).await;
    wait_until("the connection refused", || {
        t2.stats().handshakes_refused == 1
    })
    .await;
    assert_eq!(t2.stats().frames_received, 0);
    assert!(rx2.try_recv().is_err());

    // A peer with the secret is served as before.
    let (t1, _rx1) = start_with(
        1,
        any_port(),
        HashMap::from([(2, t2.local_addr())]),
        Faults::default(),
        Some(key(b"secret")),
    )
    .await;
    t1.send(vec![heartbeat(1, 2, 42)]);
    assert_eq!(seqs(&recv_n(&rx2, 1).await), vec![42]);
    t1.shutdown().await;
    t2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_misaddressed_hellos_are_refused() {
    let (t2, rx2) = receiver().await;
    for (from, to) in [(9, 2), (1, 3)] {
        let mut raw = TcpStream::connect(t2.local_addr()).await.expect("connect");
        let result = handshake::client(&mut raw, &key(b"secret"), from, to).await;
        assert!(result.is_err(), "{from} -> {to} accepted");
        closed_by_the_node(&mut raw).await;
    }
    wait_until("both refused", || t2.stats().handshakes_refused == 2).await;
    assert!(rx2.try_recv().is_err());
    t2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_garbage_and_slow_peers_are_bounded() {
    let (t2, rx2) = receiver().await;
    let addr = t2.local_addr();
    let good = Hello {
        from: 1,
        to: 2,
        nonce: [0; 32],
    }
    .encode();
    let mut wrong_version = good;
    wrong_version[4] = 99;
    // Garbage is refused as soon as it is read: well before the timeout.
    let started = Instant::now();
    let garbage: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\nHost: raft\r\n\r\n",
        &wrong_version,
        // Oversize: a megabyte of hello-looking bytes after the magic.
        &[&good[..4], &vec![0xAB; 1024 * 1024][..]].concat(),
    ];
    for bytes in garbage {
        let mut raw = TcpStream::connect(addr).await.expect("connect");
        // The node may close before taking it all.
        let _ = raw.write_all(bytes).await;
        closed_by_the_node(&mut raw).await;
    }
    assert!(
        started.elapsed() < HANDSHAKE_TIMEOUT,
        "garbage held a connection"
    );

    // A peer that sends half a hello and then nothing is cut at the
    // timeout, not held.
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(&good[..HELLO_LEN / 2]).await.expect("write");
    closed_by_the_node(&mut slow).await;
    let held = started.elapsed();
    assert!(
        held >= HANDSHAKE_TIMEOUT - Duration::from_millis(500) && held < DEADLINE,
        "held {held:?}"
    );
    wait_until("four refused", || t2.stats().handshakes_refused == 4).await;
    assert!(rx2.try_recv().is_err());

    // The node still serves a real peer.
    let mut raw = authenticated(addr, 3, 2).await;
    raw.write_all(&frame(&[heartbeat(3, 2, 5)]))
        .await
        .expect("write");
    assert_eq!(seqs(&recv_n(&rx2, 1).await), vec![5]);
    t2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_secret_cannot_reach_one_with_it() {
    // Mixed setups fail closed: node 1 runs unsigned, node 2 has a secret.
    let nodes = cluster_with(2, &Faults::default(), |id| {
        (id == 2).then(|| key(b"secret"))
    })
    .await;
    let (t1, rx1) = &nodes[0];
    let (t2, rx2) = &nodes[1];
    t1.send(vec![heartbeat(1, 2, 0)]);
    t2.send(vec![heartbeat(2, 1, 0)]);
    wait_until("both sides refused", || {
        t2.stats().handshakes_refused >= 1 && t1.stats().bad_frames >= 1
    })
    .await;
    assert!(rx1.try_recv().is_err());
    assert!(rx2.try_recv().is_err());
    for (transport, _) in &nodes {
        transport.shutdown().await;
    }
}
