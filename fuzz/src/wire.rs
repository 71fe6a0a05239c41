//! Target `wire`: the bodies of the executor protocol, decoded by
//! `protocol::wire::decode_body` as their receivers do:
//!
//! | kind | type | read by |
//! |---|---|---|
//! | 0 | `DispatchRequest` | executor, `POST /v1/dispatch` |
//! | 1 | `DispatchBatch` | executor, `POST /v1/dispatch/batch` |
//! | 2 | `KillRequest` | executor, `POST /v1/runs/{id}/kill` |
//! | 3 | `RunReport` | scheduler, `POST /v1/internal/runs/{id}/report` |
//! | 4 | `ReportBatch` | scheduler, `POST /v1/internal/reports` |
//! | 5 | `ReportBatchAck` | executor, the answer to a report batch |
//! | 6 | `DispatchBatchAck` | scheduler, the answer to a dispatch batch |
//! | 7 | `DispatchAck` | scheduler, the answer to a dispatch |
//!
//! Input: one byte, then the body. The byte's low three bits are the kind;
//! its top bit set means the body is sent as `application/json`, clear as
//! MessagePack. Invariant: whatever decodes re-encodes, in both encodings,
//! to a value that decodes equal.

use protocol::{
    dispatch::{
        DispatchAck, DispatchBatch, DispatchBatchAck, DispatchRequest, KillRequest, ReportBatch,
        ReportBatchAck, RunReport, MSGPACK,
    },
    wire,
};
use serde::{de::DeserializeOwned, Serialize};

/// The content type of a JSON body.
pub const JSON: &str = "application/json";
/// The top bit of the first byte: the body is JSON.
pub const JSON_FLAG: u8 = 0x80;

pub fn run(data: &[u8]) {
    let Some((&head, body)) = data.split_first() else {
        return;
    };
    let content_type = if head & JSON_FLAG != 0 { JSON } else { MSGPACK };
    match head & 0x07 {
        0 => round_trip::<DispatchRequest>(content_type, body),
        1 => round_trip::<DispatchBatch>(content_type, body),
        2 => round_trip::<KillRequest>(content_type, body),
        3 => round_trip::<RunReport>(content_type, body),
        4 => round_trip::<ReportBatch>(content_type, body),
        5 => round_trip::<ReportBatchAck>(content_type, body),
        6 => round_trip::<DispatchBatchAck>(content_type, body),
        _ => round_trip::<DispatchAck>(content_type, body),
    }
}

/// The kind byte of `T` in `encoding` (for building seeds).
pub fn head(kind: u8, json: bool) -> u8 {
    kind | if json { JSON_FLAG } else { 0 }
}

fn round_trip<T>(content_type: &str, body: &[u8])
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(value) = wire::decode_body::<T>(Some(content_type), body) else {
        return;
    };
    let packed = wire::encode(&value).unwrap_or_else(|e| panic!("{value:?}: no MessagePack: {e}"));
    let back: T = wire::decode_body(Some(MSGPACK), &packed)
        .unwrap_or_else(|e| panic!("{value:?}: its own MessagePack does not decode: {e}"));
    assert_eq!(back, value, "MessagePack round trip");
    let json = serde_json::to_vec(&value).unwrap_or_else(|e| panic!("{value:?}: no JSON: {e}"));
    let back: T = wire::decode_body(Some(JSON), &json)
        .unwrap_or_else(|e| panic!("{value:?}: its own JSON does not decode: {e}"));
    assert_eq!(back, value, "JSON round trip");
}
