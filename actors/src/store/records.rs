//! What the state machine stores beside the public Job and Run.

use chrono::{DateTime, Utc};
use protocol::Run;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// Per-job bookkeeping the trigger needs after a restart or leader change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every slot at or before this instant is accounted for (fired, skipped
    /// or not owed because the job did not exist or was paused). Slots after
    /// it and before now were missed and go through the misfire policy.
    /// As read: the stored cursor or the newest slot among the job's stored
    /// runs of its schedule (and misfires), the later of the two. The
    /// stored one moves when the job is put or resumed, and when the run
    /// of the newest slot is dropped (so the cursor never goes back).
    pub cursor: DateTime<Utc>,
    /// Runs stored for the job, active and finished. Counted from the runs
    /// (`run_index`) when read; stored as 0 (earlier versions kept a
    /// count here, which is ignored).
    #[serde(default)]
    pub run_count: u64,
    /// The job's finished runs by outcome, which bound its history (see
    /// `retention`). Counted from the runs when read; stored as `None`
    /// (earlier versions kept counts here, which are ignored).
    #[serde(default)]
    pub history: Option<JobHistory>,
}

/// A job's finished runs by outcome, as `StateMachine::job_state` counts
/// them from the run index (stored by earlier versions, now ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHistory {
    /// Succeeded runs stored.
    pub succeeded: u64,
    /// Runs stored that ended otherwise: failed, timed out, killed, skipped.
    pub failed: u64,
    /// Where earlier versions resumed trimming succeeded runs; the index
    /// keeps each outcome's runs apart now, and this is 0.
    #[serde(default)]
    pub succeeded_from: u64,
    /// The same for the runs that ended otherwise.
    #[serde(default)]
    pub failed_from: u64,
}

/// A run with its position in creation order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredRun {
    pub seq: u64,
    pub run: Run,
}

/// A [`StoredRun`] to encode from a borrowed run (same bytes).
#[derive(Serialize)]
pub struct StoredRunRef<'a> {
    pub seq: u64,
    pub run: &'a Run,
}

impl StoredRunRef<'_> {
    /// The record as stored: packed (see `packed_run`), or, for a run with
    /// a time nanoseconds do not hold, the fields by position.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        match super::packed_run::encode(self.seq, self.run) {
            Some(packed) => packed.map_err(StoreError::Encode),
            None => self.encode_by_position(),
        }
    }

    /// The form of earlier versions: fields by position, which takes about
    /// 40 % fewer bytes than by name (field names are as long as a
    /// finished run's values).
    pub fn encode_by_position(&self) -> Result<Vec<u8>, StoreError> {
        protocol::wire::encode_compact(self).map_err(|e| StoreError::Encode(e.to_string()))
    }
}

impl StoredRun {
    /// The run whose record `bytes` is at `key` (`keys::run(id)`), in any
    /// form a version ever wrote: packed, by position or by name.
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            key: String::from_utf8_lossy(key).replace('\0', "/"),
            reason,
        };
        match bytes.split_first() {
            Some((&super::packed_run::PACKED, packed)) => {
                let id = super::keys::run_id(key)
                    .ok_or_else(|| corrupt("not the key of a run".into()))?;
                let (seq, run) = super::packed_run::decode(id, packed).map_err(corrupt)?;
                Ok(StoredRun { seq, run })
            }
            _ => protocol::wire::decode(bytes).map_err(|e| corrupt(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A [`StoredRun`] as the versions before the parent fields stored it:
    /// it still decodes, with those fields empty.
    const STORED_RUN_V2: &str = concat!(
        "9207dc0011a27231a16aa764656661756c74b4323032362d31312d3231543233",
        "3a30303a30305aa87363686564756c65930001a001a9737563636565646564aa",
        "687474703a2f2f653a31b4323032362d31312d32315432323a35393a35395ab8",
        "323032362d31312d32315432333a30303a30302e3030345ab4323032362d3131",
        "2d32315432333a30303a30315a00a36f6b0ac0a0c0",
    );

    /// A [`StoredRun`] as this version stores it (see the test below):
    /// `pending_reason`, `parent_run_ids`, `parent_scheduled_at` and
    /// `parent_job_id`, then the run's alert deliveries, at the end.
    const STORED_RUN_V3: &str = concat!(
        "9207dc0016a27231a16aa764656661756c74b4323032362d31312d3231543233",
        "3a30303a30305aa87363686564756c65930001a001a9737563636565646564aa",
        "687474703a2f2f653a31b4323032362d31312d32315432323a35393a35395ab8",
        "323032362d31312d32315432333a30303a30302e3030345ab4323032362d3131",
        "2d32315432333a30303a30315a00a36f6b0ac0a0c0c090c0c090",
    );

    #[test]
    fn a_borrowed_run_record_encodes_as_the_owned_one() {
        let run = Run {
            id: "r1".into(),
            job_id: "j".into(),
            ..serde_json::from_value(serde_json::json!({
                "id": "r1", "job_id": "j", "namespace": "default",
                "scheduled_at": "2026-11-21T23:00:00Z", "trigger": "schedule",
                "shard": {"index": 0, "count": 1, "param": ""}, "attempt": 1,
                "status": "pending", "executor": null, "created_at": "2026-11-21T22:59:59Z",
                "started_at": null, "finished_at": null, "exit_code": null,
                "output": "", "error": null
            }))
            .unwrap()
        };
        let owned = protocol::wire::encode(&StoredRun {
            seq: 7,
            run: run.clone(),
        })
        .unwrap();
        let borrowed = protocol::wire::encode(&StoredRunRef { seq: 7, run: &run }).unwrap();
        assert_eq!(owned, borrowed);
    }

    fn finished_run() -> Run {
        serde_json::from_value(serde_json::json!({
            "id": "r1", "job_id": "j", "namespace": "default",
            "scheduled_at": "2026-11-21T23:00:00Z", "trigger": "schedule",
            "shard": {"index": 0, "count": 1, "param": ""}, "attempt": 1,
            "status": "succeeded", "executor": "http://e:1", "created_at": "2026-11-21T22:59:59Z",
            "started_at": "2026-11-21T23:00:00.004Z", "finished_at": "2026-11-21T23:00:01Z",
            "exit_code": 0, "output": "ok\n", "error": null
        }))
        .unwrap()
    }

    /// A [`StoredRun`] as this version stores it: packed (see
    /// `packed_run`), times as nanoseconds and without the id.
    const STORED_RUN_V4: &str = concat!(
        "c1dc001607a16aa764656661756c74cf18ea31a8368c6000a87363686564756c",
        "65930001a001a9737563636565646564aa687474703a2f2f653a31cf18ea31a7",
        "faf19600cf18ea31a836c96900cf18ea31a872272a0000a36f6b0ac0a0c0c090",
        "c0c090",
    );

    /// Run records are stored by field position: this pins the bytes a
    /// record of today has, so that a change of the packed fields or of
    /// `Run`'s that would misread the records already stored (a field
    /// inserted, moved or removed) fails here. Add fields at the end, with
    /// `#[serde(default)]`.
    #[test]
    fn a_stored_run_keeps_its_field_order() {
        let run = finished_run();
        let bytes = StoredRunRef { seq: 7, run: &run }.encode().unwrap();
        assert_eq!(hex::encode(&bytes), STORED_RUN_V4);
        let by_position = StoredRunRef { seq: 7, run: &run }
            .encode_by_position()
            .unwrap();
        assert_eq!(hex::encode(&by_position), STORED_RUN_V3);
        // Records of every earlier layout still read, new fields defaulted.
        let key = crate::store::keys::run("r1");
        for stored in [STORED_RUN_V2, STORED_RUN_V3, STORED_RUN_V4] {
            let back = StoredRun::decode(&key, &hex::decode(stored).unwrap()).unwrap();
            assert_eq!(
                back,
                StoredRun {
                    seq: 7,
                    run: run.clone()
                }
            );
        }
    }

    #[test]
    fn a_packed_record_keeps_every_field_and_is_smaller() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut run = finished_run();
        run.id = "693b2a10aa41b6c1e2f80a17".into();
        run.params = "{\"day\":1}".into();
        run.error = Some("exit status 3".into());
        run.retry_of = Some("693b2a10aa41b6c1e2f80a16".into());
        run.pending_reason = Some("no room".into());
        run.parent_run_ids = vec!["693b2a10aa41b6c1e2f80a15".into()];
        run.parent_scheduled_at = Some(at("2026-11-21T22:00:00.123456789Z"));
        run.parent_job_id = Some("parent".into());
        run.created_at = at("2026-11-21T22:59:59.987654321Z");
        let key = crate::store::keys::run(&run.id);
        let packed = StoredRunRef { seq: 9, run: &run }.encode().unwrap();
        assert_eq!(packed[0], super::super::packed_run::PACKED);
        let back = StoredRun::decode(&key, &packed).unwrap();
        assert_eq!(
            back,
            StoredRun {
                seq: 9,
                run: run.clone()
            }
        );
        let by_position = StoredRunRef { seq: 9, run: &run }
            .encode_by_position()
            .unwrap();
        assert!(
            packed.len() * 10 < by_position.len() * 8,
            "{} vs {}",
            packed.len(),
            by_position.len()
        );

        // A time nanoseconds cannot hold is written by position, whole.
        run.finished_at = Some(at("2300-01-01T00:00:00Z"));
        let far = StoredRunRef { seq: 9, run: &run }.encode().unwrap();
        assert_ne!(far[0], super::super::packed_run::PACKED);
        assert_eq!(StoredRun::decode(&key, &far).unwrap().run, run);

        // Garbage after the mark is an error naming the key, not a panic.
        let err = StoredRun::decode(&key, &[super::super::packed_run::PACKED, 0x92, 0xff]);
        assert!(matches!(err, Err(StoreError::Corrupt { .. })), "{err:?}");
    }

    #[test]
    fn a_run_record_by_name_of_earlier_versions_still_decodes() {
        let run = finished_run();
        let named = protocol::wire::encode(&StoredRun {
            seq: 7,
            run: run.clone(),
        })
        .unwrap();
        let compact = StoredRunRef { seq: 7, run: &run }.encode().unwrap();
        assert!(
            compact.len() * 10 < named.len() * 7,
            "{} vs {}",
            compact.len(),
            named.len()
        );
        let back: StoredRun = protocol::wire::decode(&named).unwrap();
        assert_eq!(back, StoredRun { seq: 7, run });
    }
}
