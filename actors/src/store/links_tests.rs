//! Child links at apply time: missing children, cycles, batches, deletes.

use chrono::{DateTime, Utc};
use protocol::{Job, JobKey, MetaCommand, PutMode};

use super::{
    fixtures::{job, open_store},
    links::{BadLink, LinkProblem},
    retention, Outcome, Rejection, StateMachine,
};

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc()
}

/// Job `id` with links to `children`.
fn linked(id: &str, children: &[&str]) -> Job {
    let mut job = job(id);
    job.children = children
        .iter()
        .map(|c| serde_json::from_value(serde_json::json!({ "job": c })).unwrap())
        .collect();
    job
}

struct Log {
    sm: StateMachine,
    index: u64,
}

impl Log {
    fn open(dir: &std::path::Path) -> Self {
        let sm = open_store(dir, retention::HistoryPolicy::keeping(10));
        Self { sm, index: 0 }
    }

    fn apply(&mut self, cmd: MetaCommand) -> Outcome {
        self.index += 1;
        self.sm.apply(self.index, &cmd).unwrap()
    }

    fn put(&mut self, job: Job, mode: PutMode) -> Outcome {
        self.apply(MetaCommand::PutJob {
            job: Box::new(job),
            mode,
            at: at(),
        })
    }

    fn exists(&self, id: &str) -> bool {
        self.sm.job(&JobKey::new("default", id)).unwrap().is_some()
    }
}

fn bad(job: &str, index: usize, child: &str, problem: LinkProblem) -> Outcome {
    Outcome::Rejected(Rejection::BadChildLink(BadLink {
        job: JobKey::new("default", job),
        index,
        child: child.into(),
        problem,
    }))
}

#[test]
fn a_link_to_a_missing_job_is_refused_and_nothing_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path());
    log.put(job("b"), PutMode::Create);
    assert_eq!(
        log.put(linked("a", &["b", "nope"]), PutMode::Create),
        bad("a", 1, "nope", LinkProblem::Missing)
    );
    assert!(!log.exists("a"));
}

#[test]
fn links_that_close_a_cycle_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path());
    assert_eq!(
        log.put(linked("a", &["a"]), PutMode::Create),
        bad("a", 0, "a", LinkProblem::Cycle(vec!["a".into()]))
    );
    log.put(job("c"), PutMode::Create);
    log.put(linked("b", &["c"]), PutMode::Create);
    log.put(linked("a", &["b"]), PutMode::Create);
    // c -> a closes a -> b -> c -> a.
    assert_eq!(
        log.put(linked("c", &["a"]), PutMode::Replace),
        bad(
            "c",
            0,
            "a",
            LinkProblem::Cycle(vec!["a".into(), "b".into(), "c".into()])
        )
    );
    assert_eq!(
        log.sm.job(&JobKey::new("default", "c")).unwrap(),
        Some(job("c")),
        "the refused replacement is not stored"
    );
}

#[test]
fn jobs_created_together_may_link_each_other_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path());
    let created = log.apply(MetaCommand::CreateJobs {
        jobs: vec![linked("a", &["b"]), job("b")],
        at: at(),
    });
    assert!(matches!(created, Outcome::JobsCreated(_)), "{created:?}");
    let refused = log.apply(MetaCommand::CreateJobs {
        jobs: vec![linked("x", &["y"]), linked("y", &["x"])],
        at: at(),
    });
    assert!(
        matches!(
            &refused,
            Outcome::Rejected(Rejection::BadChildLink(BadLink {
                problem: LinkProblem::Cycle(_),
                ..
            }))
        ),
        "{refused:?}"
    );
    assert!(!log.exists("x") && !log.exists("y"), "stored half-way");
}

#[test]
fn deleting_a_child_is_refused_unless_forced_which_unlinks_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path());
    log.put(job("b"), PutMode::Create);
    log.put(linked("a", &["b"]), PutMode::Create);
    log.put(linked("c", &["b"]), PutMode::Create);
    let key = JobKey::new("default", "b");
    assert_eq!(
        log.apply(MetaCommand::DeleteJob {
            key: key.clone(),
            force: false
        }),
        Outcome::Rejected(Rejection::JobIsChild {
            key: key.clone(),
            parents: vec![JobKey::new("default", "a"), JobKey::new("default", "c")],
        })
    );
    assert!(log.exists("b"));
    let deleted = log.apply(MetaCommand::DeleteJob {
        key: key.clone(),
        force: true,
    });
    assert_eq!(
        deleted,
        Outcome::JobDeleted {
            key,
            existed: true,
            unlinked: vec![job("a"), job("c")],
        }
    );
    assert!(!log.exists("b"));
    assert_eq!(
        log.sm.job(&JobKey::new("default", "a")).unwrap(),
        Some(job("a"))
    );
}
