//! Signed announcements over real gossip on loopback: members with the
//! cluster secret verify each other; a member without it, or with another
//! one, is listed unverified, even when it claims a verified member's
//! endpoint.

use std::time::Duration;

use membership::testsuite::{eventually, executor, scheduler};
use membership::{Member, MemberState, Membership, MembershipConfig};

const DEADLINE: Duration = Duration::from_secs(20);
const SECRET: &[u8] = b"cluster secret";
const REAL: &str = "http://127.0.0.1:7181";

async fn start(name: &str, me: Member, secret: Option<&[u8]>, seeds: &[&Membership]) -> Membership {
    let mut config =
        MembershipConfig::fast_for_tests(name).with_seeds(seeds.iter().map(|m| m.advertise_addr()));
    if let Some(secret) = secret {
        config = config.with_secret(secret);
    }
    Membership::start(config, me).await.expect("start")
}

fn by_gossip_name<'a>(members: &'a [MemberState], prefix: &str) -> Option<&'a MemberState> {
    members.iter().find(|m| m.gossip_id.starts_with(prefix))
}

fn heavy_impersonator() -> Member {
    let mut e = membership::ExecutorInfo::new("stolen", REAL);
    e.weight = u32::MAX;
    e.handlers = vec!["*".into()];
    Member::Executor(e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_holders_of_the_secret_are_verified() {
    let s = start("scheduler-1", scheduler(1), Some(SECRET), &[]).await;
    let real = start("executor-real", executor(REAL), Some(SECRET), &[&s]).await;
    let unsigned = start("executor-rogue", heavy_impersonator(), None, &[&s]).await;
    let other = start(
        "executor-other",
        executor("http://127.0.0.1:7182"),
        Some(b"another secret"),
        &[&s],
    )
    .await;

    let settled = eventually(DEADLINE, || async {
        let members = s.members().await;
        ["executor-real", "executor-rogue", "executor-other"]
            .iter()
            .all(|name| by_gossip_name(&members, name).is_some_and(|m| m.alive))
    })
    .await;
    let members = s.members().await;
    assert!(settled, "not every member seen alive: {members:#?}");
    let verified = |name: &str| by_gossip_name(&members, name).map(|m| m.verified);
    assert_eq!(verified("scheduler-1"), Some(true));
    assert_eq!(verified("executor-real"), Some(true));
    assert_eq!(verified("executor-rogue"), Some(false));
    assert_eq!(verified("executor-other"), Some(false));
    // The real executor's own member is untouched by the impersonator.
    assert_eq!(
        by_gossip_name(&members, "executor-real").map(|m| &m.member),
        Some(&executor(REAL))
    );

    // The real executor sees the scheduler verified too.
    assert!(
        eventually(DEADLINE, || async {
            let members = real.members().await;
            by_gossip_name(&members, "scheduler-1").is_some_and(|m| m.alive && m.verified)
        })
        .await
    );

    // A change of a covered value is re-signed: still verified, new value.
    let mut busier = membership::ExecutorInfo::new("default", REAL);
    busier.running = 5;
    real.update_self(Member::Executor(busier.clone())).await;
    let updated = eventually(DEADLINE, || async {
        let members = s.members().await;
        by_gossip_name(&members, "executor-real")
            .is_some_and(|m| m.verified && m.member == Member::Executor(busier.clone()))
    })
    .await;
    assert!(updated, "{:#?}", s.members().await);

    for node in [other, unsigned, real, s] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_every_member_is_verified() {
    let s = start("scheduler-1", scheduler(1), None, &[]).await;
    let e = start("executor-1", executor(REAL), None, &[&s]).await;
    let signed = start(
        "executor-2",
        executor("http://127.0.0.1:7183"),
        Some(SECRET),
        &[&s],
    )
    .await;
    let all_verified = eventually(DEADLINE, || async {
        let members = s.members().await;
        members.len() == 3 && members.iter().all(|m| m.alive && m.verified)
    })
    .await;
    assert!(all_verified, "{:#?}", s.members().await);
    for node in [signed, e, s] {
        node.shutdown().await;
    }
}
