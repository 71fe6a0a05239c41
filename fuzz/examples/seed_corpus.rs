//! Writes the seed corpus of every fuzz target into `fuzz/corpus/TARGET/`:
//! real schedules, job bodies, token and config files, and bodies, frames
//! and headers made by the code's own encoders, so the fuzzers start from
//! inputs that reach deep into each parser. Files are named after what
//! they hold; running it again rewrites the same files.
//!
//! `cargo run -p cronmesh-fuzz --example seed_corpus`

use std::{collections::BTreeMap, fs, path::Path};

use chrono::{DateTime, Utc};
use cronmesh_fuzz::{signature, wire};
use membership::{keys, ExecutorInfo, Member, SchedulerInfo};
use node::raft::transport::encode_frames;
use protobuf::RepeatedField;
use protocol::{
    dispatch::{
        DispatchAck, DispatchBatch, DispatchBatchAck, DispatchRequest, DispatchResult, KillRequest,
        ReportBatch, ReportBatchAck, ReportResult, RunReport, Task,
    },
    run::{RunStatus, ShardInfo},
};
use raft::eraftpb::{ConfState, Entry, Message, MessageType, Snapshot, SnapshotMetadata};
use serde::Serialize;

type Seeds = Vec<(String, Vec<u8>)>;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let targets: [(&str, Seeds); 8] = [
        ("schedule", texts(SCHEDULES)),
        ("job", texts(JOBS)),
        ("wire", wire_seeds()),
        ("signature", signature_seeds()),
        ("raft_frame", raft_seeds()),
        ("gossip_keys", gossip_seeds()),
        ("tokens", texts(TOKEN_FILES)),
        ("config", texts(CONFIG_FILES)),
    ];
    for (target, seeds) in targets {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        for (name, bytes) in &seeds {
            fs::write(dir.join(format!("seed-{name}")), bytes)?;
        }
        println!("{target}: {} seeds", seeds.len());
    }
    Ok(())
}

fn texts(items: &[(&str, &str)]) -> Seeds {
    items
        .iter()
        .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec()))
        .collect()
}

const SCHEDULES: &[(&str, &str)] = &[
    ("every-5-minutes", "*/5 * * * *"),
    ("daily-0230-dst", "30 2 * * *"),
    ("weekdays", "0 9 * * MON-FRI"),
    ("seconds-field", "15 30 9 * * *"),
    ("year-field", "0 0 0 1 1 * 2030"),
    ("leap-day", "0 0 29 2 *"),
    ("dom-or-dow", "0 12 15 * 5"),
    ("lists-and-steps", "15,45 */2 1-10 * 1-5"),
    ("last-day", "0 0 L * *"),
    ("nth-weekday", "0 30 1 * * 1#2"),
    ("every-second", "* * * * * *"),
    ("names", "0 0 * JAN,JUL SUN"),
    ("yearly", "@yearly"),
    ("hourly", "@hourly"),
    ("weekly-caps", "@WEEKLY"),
    ("every-30s", "@every 30s"),
    ("every-1h30m", "@every 1h 30m"),
    ("every-366d", "@every 366d"),
    ("at", "@at 2026-12-01T00:00:00Z"),
    ("at-offset", "@at 2026-10-25T02:30:00+02:00"),
    ("manual", "@manual"),
    ("padded", "  0 0 * * *  "),
];

const JOBS: &[(&str, &str)] = &[
    (
        "hello",
        r#"{"id":"hello","schedule":"@every 1s","target":{"type":"shell","command":"echo hello"}}"#,
    ),
    (
        "full-shell",
        r#"{"id":"nightly-report","namespace":"billing","description":"the nightly report",
"schedule":"30 2 * * *","timezone":"Europe/Berlin","enabled":true,
"target":{"type":"shell","group":"reports","command":"./report.sh --day yesterday"},
"params":"p","routing":"consistent_hash","shards":3,"shard_params":["a","b","c"],
"timeout":"5m","retry":{"max_retries":3,"backoff":"10s","max_backoff":"5m"},
"failover":true,"misfire":{"policy":"fire_once","threshold":"1h"},"concurrency":"forbid",
"children":[{"job":"cleanup","on":"success"}],"labels":{"team":"billing"},
"alerts":{"webhooks":["https://hooks.example.com/a"],"on":["failed","timed_out"]}}"#,
    ),
    (
        "executor-target",
        r#"{"id":"noop","schedule":"* * * * * *","target":{"type":"executor","group":"default","handler":"noop"}}"#,
    ),
    (
        "http-target",
        r#"{"id":"ping","schedule":"@every 30s","timezone":"America/New_York",
"target":{"type":"http","url":"https://example.com/ping","method":"POST",
"headers":{"x-token":"t"},"body":"{}"}}"#,
    ),
    (
        "array",
        r#"[{"id":"a","schedule":"@hourly","target":{"type":"shell","command":"true"}},
{"id":"b","schedule":"0 0 * * *","timezone":"Australia/Lord_Howe","target":{"type":"shell","command":"true"}}]"#,
    ),
    (
        "manual-paused",
        r#"{"id":"by-hand","schedule":"@manual","enabled":false,"target":{"type":"shell","command":"make"}}"#,
    ),
    (
        "at-once",
        r#"{"id":"once","schedule":"@at 2026-12-01T00:00:00Z","target":{"type":"shell","command":"date"}}"#,
    ),
    (
        "unknown-field",
        r#"{"id":"x","schedule":"@daily","target":{"type":"shell","command":"true"},"shedule":"x"}"#,
    ),
];

const TOKEN_FILES: &[(&str, &str)] = &[
    (
        "documented",
        "# /etc/cronmesh/tokens\nadmin 4f0c9b2e1\nread  9a770b   # dashboards, the TUI of the on-call rota\n",
    ),
    ("one-admin", "admin s3cret-token"),
    ("crlf", "read abc\r\nadmin def\r\n"),
    ("comment-only", "# nothing here\n"),
    ("unknown-scope", "write abc\n"),
    ("three-words", "admin abc def\n"),
    ("tabs", "\tadmin\tabc\t\n"),
];

const CONFIG_FILES: &[(&str, &str)] = &[
    (
        "documented-server",
        r#"# /etc/cronmesh/cronmesh.toml
node_id = 1
data_dir = "/var/lib/cronmesh"
http = "0.0.0.0:7070"
advertise = "http://10.0.0.1:7070"
raft = "10.0.0.1:7071"
peers = ["1=10.0.0.1:7071", "2=10.0.0.2:7071", "3=10.0.0.3:7071"]
gossip = "10.0.0.1:7072"
seeds = ["10.0.0.2:7072", "10.0.0.3:7072"]
secret_file = "/etc/cronmesh/secret"
admin_token_file = "/etc/cronmesh/admin-token"
raft_durability = "fsync"
"#,
    ),
    (
        "unsigned-server",
        "data_dir = \"/tmp/x\"\nunsigned = true\nhistory_limit = 50\nraft_tick_ms = 20\nrate_limit = 0\n",
    ),
    (
        "executor",
        "group = \"reports\"\nlisten = \"127.0.0.1:7080\"\nweight = 3\nlabel = [\"zone=eu\", \"disk=ssd\"]\nfence_after = \"10s\"\ndrain_timeout = \"25s\"\nunsigned = true\nforward = \"http://127.0.0.1:9000\"\n",
    ),
    (
        "dev",
        "http = \"127.0.0.1:7070\"\nexecutor = [\"default=http://127.0.0.1:7080\"]\nadmin_token = \"abc\"\n",
    ),
    ("dashes", "raft-tick-ms = 50\ndata-dir = \"d\"\nunsigned = true\n"),
    ("unknown-key", "histroy_limit = 5\n"),
    ("table", "[server]\nhttp = \"x\"\n"),
    (
        "peers-string",
        "data_dir = \"d\"\nraft = \"127.0.0.1:7071\"\npeers = \"1=127.0.0.1:7071,2=127.0.0.1:7072\"\nunsigned = true\n",
    ),
    ("bad-durability", "data_dir = \"d\"\nraft_durability = \"sometimes\"\n"),
    ("datetime", "data_dir = 1979-05-27T07:32:00Z\n"),
];

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn dispatch() -> DispatchRequest {
    DispatchRequest {
        run_id: "r-7f3a".into(),
        job_id: "nightly".into(),
        namespace: "default".into(),
        scheduled_at: time("2026-05-01T02:30:00Z"),
        attempt: 1,
        shard: ShardInfo {
            index: 1,
            count: 3,
            param: "b".into(),
        },
        params: "p".into(),
        task: Task::Shell {
            command: "echo hi".into(),
        },
        timeout_ms: 30_000,
        report_to: vec!["http://127.0.0.1:7070".into()],
        term: 4,
        expires_at: Some(time("2026-05-01T02:30:02Z")),
        parent_run_ids: Vec::new(),
        parent_scheduled_at: None,
    }
}

fn report() -> RunReport {
    RunReport {
        run_id: "r-7f3a".into(),
        executor: "http://127.0.0.1:7080".into(),
        status: RunStatus::Succeeded,
        started_at: Some(time("2026-05-01T02:30:00.004Z")),
        finished_at: Some(time("2026-05-01T02:30:01Z")),
        exit_code: Some(0),
        output: "hello\n".into(),
        error: None,
    }
}

/// One seed per kind and encoding.
fn wire_seeds() -> Seeds {
    let handler = DispatchRequest {
        task: Task::Handler {
            handler: "noop".into(),
        },
        expires_at: None,
        ..dispatch()
    };
    let failed = RunReport {
        status: RunStatus::Failed,
        exit_code: None,
        error: Some("killed".into()),
        ..report()
    };
    let mut seeds = Seeds::new();
    let mut add = |name: &str, kind: u8, value: &dyn erased::Encode| {
        for json in [false, true] {
            let mut bytes = vec![wire::head(kind, json)];
            bytes.extend(value.encode(json));
            let encoding = if json { "json" } else { "msgpack" };
            seeds.push((format!("{name}-{encoding}"), bytes));
        }
    };
    add("dispatch", 0, &dispatch());
    add("dispatch-handler", 0, &handler);
    add(
        "dispatch-batch",
        1,
        &DispatchBatch {
            runs: vec![dispatch(), handler.clone()],
        },
    );
    add("kill", 2, &KillRequest { term: 9 });
    add("report", 3, &report());
    add(
        "report-batch",
        4,
        &ReportBatch {
            reports: vec![report(), failed],
        },
    );
    add(
        "report-batch-ack",
        5,
        &ReportBatchAck {
            results: vec![ReportResult::Recorded, ReportResult::Refused],
        },
    );
    add(
        "dispatch-batch-ack",
        6,
        &DispatchBatchAck {
            results: vec![
                DispatchResult::Accepted {
                    run_id: "r1".into(),
                    duplicate: false,
                },
                DispatchResult::Refused {
                    run_id: "r2".into(),
                    reason: "the dispatch expired".into(),
                },
            ],
        },
    );
    add(
        "dispatch-ack",
        7,
        &DispatchAck {
            run_id: "r1".into(),
            duplicate: true,
        },
    );
    seeds
}

/// Encoding of any wire value in either encoding, behind one object type.
mod erased {
    pub trait Encode {
        fn encode(&self, json: bool) -> Vec<u8>;
    }

    impl<T: super::Serialize> Encode for T {
        fn encode(&self, json: bool) -> Vec<u8> {
            let encoded = if json {
                serde_json::to_vec(self).ok()
            } else {
                protocol::wire::encode(self).ok()
            };
            encoded.unwrap_or_default()
        }
    }
}

fn signature_seeds() -> Seeds {
    let body = protocol::wire::encode(&dispatch()).unwrap_or_default();
    let signed = |at: i64, body: &[u8]| {
        let mut bytes = protocol::signature::sign(signature::SECRET, at, body).into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(body);
        bytes
    };
    let with_header = |header: &str| {
        let mut bytes = header.as_bytes().to_vec();
        bytes.push(b'\n');
        bytes.extend_from_slice(b"{\"term\":1}");
        bytes
    };
    vec![
        ("valid-msgpack".into(), signed(signature::NOW, &body)),
        (
            "valid-json".into(),
            signed(signature::NOW - 60, b"{\"term\":1}"),
        ),
        ("valid-empty-body".into(), signed(signature::NOW, b"")),
        ("stale".into(), signed(signature::NOW - 301, b"{}")),
        ("future".into(), signed(signature::NOW + 301, b"{}")),
        ("spaces".into(), with_header(" t=1780000000 , v1=00 ")),
        ("no-v1".into(), with_header("t=1780000000")),
        ("huge-t".into(), with_header("t=-9223372036854775808,v1=00")),
        ("forward-proof".into(), {
            let target = "/v1/jobs?namespace=a";
            let proof = protocol::signature::sign_forward(
                signature::SECRET,
                signature::NOW,
                "POST",
                target,
            );
            format!("{proof}\n{target}").into_bytes()
        }),
        (
            "uppercase-hex".into(),
            with_header("t=1780000000,v1=ABCDEF"),
        ),
        ("v2-valid-msgpack".into(), signed_v2(signature::NOW, &body)),
        ("v2-valid-empty-body".into(), signed_v2(signature::NOW, b"")),
        ("v2-stale".into(), signed_v2(signature::NOW - 301, b"{}")),
        ("v2-with-v1-appended".into(), {
            let mut bytes = signed_v2(signature::NOW, &body);
            let at = bytes.iter().position(|&b| b == b'\n').unwrap_or(0);
            let v1 = protocol::signature::sign(signature::SECRET, signature::NOW, &body);
            bytes.splice(at..at, format!(",{v1}").into_bytes());
            bytes
        }),
        (
            "v2-short-nonce".into(),
            with_header("v2;t=1780000000;n=00ff;sig=00"),
        ),
        (
            "v2-fields-reordered".into(),
            with_header(&format!(
                "v2;n={};t=1780000000;sig={}",
                signature::NONCE,
                "0".repeat(64)
            )),
        ),
    ]
}

/// A v2 seed: the header `sign_with` makes for the target's request of
/// `body` at `at`, a newline, then `body`.
fn signed_v2(at: i64, body: &[u8]) -> Vec<u8> {
    let key = protocol::signature_v2::key(signature::SECRET);
    let header =
        protocol::signature_v2::sign_with(&key, &signature::target(body), at, signature::NONCE);
    let mut bytes = header.into_bytes();
    bytes.push(b'\n');
    bytes.extend_from_slice(body);
    bytes
}

fn message(kind: MessageType, from: u64, to: u64) -> Message {
    let mut message = Message::default();
    message.set_msg_type(kind);
    message.from = from;
    message.to = to;
    message.term = 7;
    message
}

fn raft_seeds() -> Seeds {
    let mut heartbeat = message(MessageType::MsgHeartbeat, 1, 2);
    heartbeat.commit = 42;
    let mut append = message(MessageType::MsgAppend, 1, 2);
    append.log_term = 7;
    append.index = 41;
    append.commit = 41;
    append.entries = RepeatedField::from_vec(
        (42..45)
            .map(|index| Entry {
                term: 7,
                index,
                data: protocol::wire::encode(&dispatch())
                    .unwrap_or_default()
                    .into(),
                ..Default::default()
            })
            .collect(),
    );
    let mut vote = message(MessageType::MsgRequestVote, 3, 2);
    vote.log_term = 6;
    vote.index = 40;
    let mut reject = message(MessageType::MsgAppendResponse, 2, 1);
    reject.reject = true;
    reject.reject_hint = 39;
    let mut snapshot = message(MessageType::MsgSnapshot, 1, 2);
    let mut meta = SnapshotMetadata {
        index: 40,
        term: 6,
        ..Default::default()
    };
    meta.set_conf_state(ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    });
    let mut snap = Snapshot {
        data: b"sled export".to_vec().into(),
        ..Default::default()
    };
    snap.set_metadata(meta);
    snapshot.set_snapshot(snap);
    let mut read_index = message(MessageType::MsgReadIndex, 2, 1);
    read_index.context = b"lease".to_vec().into();

    // One stream of frames as `read_frame` sees it, and the batch payloads
    // (without the length prefix) as `decode_batch` sees them.
    let frames = |messages: &[Message], soft: usize| {
        let (frames, _) = encode_frames(messages, soft, node::raft::transport::MAX_FRAME_BYTES);
        frames
    };
    let mut seeds = Seeds::new();
    for (name, messages) in [
        ("heartbeat", vec![heartbeat.clone()]),
        ("append", vec![append.clone()]),
        ("vote", vec![vote.clone()]),
        ("reject", vec![reject.clone()]),
        ("snapshot", vec![snapshot.clone()]),
        ("read-index", vec![read_index.clone()]),
    ] {
        if let Some(frame) = frames(&messages, 4 << 20).first() {
            seeds.push((format!("{name}-stream"), frame.bytes.clone()));
            seeds.push((format!("{name}-batch"), frame.bytes[4..].to_vec()));
        }
    }
    let all = [heartbeat, append, vote, reject, snapshot, read_index];
    let stream: Vec<u8> = frames(&all, 64)
        .into_iter()
        .flat_map(|frame| frame.bytes)
        .collect();
    seeds.push(("mixed-stream".into(), stream));
    seeds.push((
        "http-request".into(),
        b"GET / HTTP/1.1\r\nHost: raft\r\n\r\n".to_vec(),
    ));
    seeds
}

fn gossip_seeds() -> Seeds {
    let lines = |member: &Member| {
        let map: BTreeMap<String, String> = keys::encode(member).into_iter().collect();
        map.into_iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect::<String>()
            .into_bytes()
    };
    let scheduler = Member::Scheduler(SchedulerInfo {
        node_id: 3,
        api_url: "http://10.0.0.3:7070".into(),
        raft_addr: "10.0.0.3:7071".into(),
        leader: true,
        term: 42,
    });
    let mut executor = ExecutorInfo::new("billing", "http://10.0.0.9:7080");
    executor.handlers = vec!["report".into(), "cleanup.v2".into()];
    executor.weight = 7;
    executor.labels.insert("zone".into(), "eu-west-1a".into());
    executor
        .labels
        .insert("note".into(), "a \"quoted\", comma".into());
    executor.running = 4;
    let bare = ExecutorInfo::new("default", "http://127.0.0.1:7080");
    let mut old = lines(&scheduler);
    old.extend_from_slice(b"zzz_future=whatever\n");
    vec![
        ("scheduler".into(), lines(&scheduler)),
        ("executor".into(), lines(&Member::Executor(executor))),
        ("bare-executor".into(), lines(&Member::Executor(bare))),
        ("unknown-key".into(), old),
        ("unknown-role".into(), b"role=gardener\n".to_vec()),
    ]
}
