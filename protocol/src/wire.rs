//! The one place that calls rmp-serde: MessagePack with named fields, used
//! on the executor wire and for everything stored in sled, except the run
//! records of the store, which are by position (`encode_compact`).

use serde::{de::DeserializeOwned, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot encode: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    #[error("cannot decode: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
}

pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, WireError> {
    Ok(rmp_serde::to_vec_named(value)?)
}

/// MessagePack with the fields of a struct by position (an array), not by
/// name: for records stored by the million, whose field names would be
/// about as long as their values. [`decode`] reads both forms. A record of
/// this form is read by field order, so a struct stored so may only gain
/// fields at its end, each with `#[serde(default)]`.
pub fn encode_compact<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, WireError> {
    Ok(rmp_serde::to_vec(value)?)
}

/// [`encode_compact`] appended to `out`, after whatever it holds (a mark
/// of the record's form, say), without a second buffer.
pub fn encode_compact_into<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), WireError> {
    Ok(rmp_serde::encode::write(out, value)?)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    Ok(rmp_serde::from_slice(bytes)?)
}

/// Decodes a body that is MessagePack or, when `content_type` says so, JSON.
pub fn decode_body<T: DeserializeOwned>(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<T, String> {
    let is_json = content_type.is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON body: {e}"))
    } else {
        decode(bytes).map_err(|e| format!("invalid MessagePack body: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{DispatchRequest, Task};

    #[test]
    fn dispatch_request_round_trips() {
        let req = DispatchRequest {
            run_id: "r1".into(),
            job_id: "j".into(),
            namespace: "default".into(),
            scheduled_at: chrono::Utc::now(),
            attempt: 1,
            shard: Default::default(),
            params: "p".into(),
            task: Task::Shell {
                command: "echo hi".into(),
            },
            timeout_ms: 1000,
            report_to: vec!["http://127.0.0.1:1".into()],
            term: 0,
            expires_at: None,
            parent_run_ids: Vec::new(),
            parent_scheduled_at: None,
        };
        let back: DispatchRequest = decode(&encode(&req).unwrap()).unwrap();
        assert_eq!(back, req);
        let json = serde_json::to_vec(&req).unwrap();
        assert_eq!(
            decode_body::<DispatchRequest>(Some("application/json"), &json).unwrap(),
            req
        );
    }
}
