//! The targets' checks can fail, and the seeds reach past the parsers'
//! first refusal: a corpus of inputs every parser refuses would replay
//! green while testing nothing.

use std::{collections::BTreeMap, fs, path::Path};

use chrono::{Duration, TimeZone, Utc};
use chrono_tz::Tz;
use clap::CommandFactory;
use cronmesh_fuzz::{config::path_keys, schedule::check_fires};
use protocol::schedule::Schedule;

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
        .join(format!("seed-{name}"));
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(target: &str, name: &str) -> String {
    String::from_utf8(seed(target, name)).expect("a text seed")
}

#[test]
fn fire_times_out_of_order_before_the_start_or_off_the_schedule_fail_the_check() {
    let schedule = Schedule::parse("*/5 * * * *").expect("parses");
    let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let good = schedule.upcoming(from, Tz::UTC, 3);
    check_fires(&schedule, "*/5 * * * *", Tz::UTC, from, &good);
    let reversed: Vec<_> = good.iter().rev().copied().collect();
    let before = vec![from - Duration::minutes(5)];
    // 00:07 is no fire time of */5: the next fire after 00:06:59 is 00:10.
    let not_a_fire = vec![good[0], good[0] + Duration::minutes(2)];
    let fraction = vec![good[0] + Duration::milliseconds(1)];
    for bad in [reversed, before, not_a_fire, fraction] {
        let result =
            std::panic::catch_unwind(|| check_fires(&schedule, "*/5 * * * *", Tz::UTC, from, &bad));
        assert!(result.is_err(), "{bad:?} passed the check");
    }
}

#[test]
fn the_config_target_leaves_out_every_setting_that_names_a_file() {
    let root = node::cli::Cli::command();
    let keys = |name: &str| path_keys(root.find_subcommand(name).expect(name));
    let server = keys("server");
    for key in [
        "secret_file",
        "admin_token_file",
        "token_file",
        "tls_cert",
        "tls_key",
        "tls_ca",
        "config",
    ] {
        assert!(server.iter().any(|k| k == key), "{key} not in {server:?}");
    }
    let executor = keys("executor");
    for key in ["receipts", "secret_file", "data_dir"] {
        assert!(
            executor.iter().any(|k| k == key),
            "{key} not in {executor:?}"
        );
    }
}

#[test]
fn the_seeds_are_accepted_where_they_should_be() {
    for name in [
        "every-5-minutes",
        "daily-0230-dst",
        "every-30s",
        "at",
        "manual",
    ] {
        let expr = text("schedule", name);
        assert!(Schedule::parse(&expr).is_ok(), "{expr:?}");
    }
    for name in ["hello", "full-shell", "executor-target", "http-target"] {
        let job: protocol::Job =
            protocol::validate::from_json(&seed("job", name)).expect("the seed decodes");
        assert_eq!(protocol::validate::validate_job(&job), Ok(()), "{name}");
    }
    let tokens = node::tokens::parse_tokens(&text("tokens", "documented")).expect("parses");
    assert_eq!(tokens.len(), 2);
    for name in ["scheduler", "executor", "bare-executor", "unknown-key"] {
        let map: BTreeMap<String, String> = text("gossip_keys", name)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(membership::keys::decode(&map).is_ok(), "{name}");
    }
    let frame = seed("raft_frame", "append-batch");
    let messages = node::raft::transport::decode_batch(&frame).expect("decodes");
    assert_eq!(messages[0].entries.len(), 3);
    let body = seed("wire", "dispatch-batch-msgpack");
    let batch: protocol::dispatch::DispatchBatch =
        protocol::wire::decode(&body[1..]).expect("decodes");
    assert_eq!(batch.runs.len(), 2);
    let signed = seed("signature", "valid-msgpack");
    let at = signed
        .iter()
        .position(|&b| b == b'\n')
        .expect("a header line");
    let header = std::str::from_utf8(&signed[..at]).expect("ASCII");
    let verified = protocol::signature::verify(
        cronmesh_fuzz::signature::SECRET,
        Some(header),
        &signed[at + 1..],
        cronmesh_fuzz::signature::NOW,
        protocol::signature::DEFAULT_REPLAY_WINDOW_SECS,
    );
    assert_eq!(verified, Ok(()));
    let signed = seed("signature", "v2-valid-msgpack");
    let at = signed
        .iter()
        .position(|&b| b == b'\n')
        .expect("a header line");
    let header = std::str::from_utf8(&signed[..at]).expect("ASCII");
    let body = &signed[at + 1..];
    let verified = protocol::signature_v2::verify(
        &protocol::signature_v2::key(cronmesh_fuzz::signature::SECRET),
        Some(header),
        &cronmesh_fuzz::signature::target(body),
        cronmesh_fuzz::signature::NOW,
        protocol::signature::DEFAULT_REPLAY_WINDOW_SECS,
    );
    assert!(verified.is_ok(), "{verified:?}");
    let table =
        node::settings::parse_text(&text("config", "unsigned-server"), Path::new("seed.toml"))
            .expect("parses");
    let server = node::cli::Cli::command()
        .find_subcommand("server")
        .cloned()
        .expect("server");
    let server = node::settings::with_file(server, &table, Path::new("seed.toml")).expect("valid");
    assert!(server.try_get_matches_from(["server"]).is_ok());
}
