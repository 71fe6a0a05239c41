//! Target `raft_frame`: what a peer (or anything else that connects to the
//! `--raft` port) sends, through node/src/raft/transport.rs: frames read by
//! `read_frame` from the byte stream, each payload decoded by
//! `decode_batch`; and the same bytes taken as one payload.
//!
//! Invariants:
//! - `read_frame` never hands out a payload over `MAX_FRAME_BYTES`, nor
//!   more bytes than the stream held;
//! - a batch that decodes re-encodes with `encode_frames` (split into
//!   small frames, to exercise the split) into frames whose length
//!   prefixes and counts are right and that decode to the same messages
//!   (compared as their own bytes decode), none left out.

use node::raft::transport::{decode_batch, encode_frames, read_frame, MAX_FRAME_BYTES};
use protobuf::Message as _;
use raft::eraftpb::Message;

/// Soft frame size of the re-encoding: small, so most batches split.
const SOFT_LIMIT: usize = 64;

pub fn run(data: &[u8]) {
    if let Ok(messages) = decode_batch(data) {
        check_reencodes(&messages);
    }
    let mut stream = data;
    let mut consumed = 0usize;
    loop {
        let before = stream.len();
        match futures::executor::block_on(read_frame(&mut stream)) {
            Ok(Some(payload)) => {
                assert!(payload.len() <= MAX_FRAME_BYTES);
                consumed += before - stream.len();
                assert!(consumed <= data.len());
                assert_eq!(before - stream.len(), payload.len() + 4, "frame length");
                if let Ok(messages) = decode_batch(&payload) {
                    check_reencodes(&messages);
                }
            }
            // End of stream, or a bad frame: the connection is closed.
            Ok(None) | Err(_) => break,
        }
    }
}

/// The second invariant above.
fn check_reencodes(messages: &[Message]) {
    let (frames, unsendable) = encode_frames(messages, SOFT_LIMIT, MAX_FRAME_BYTES);
    assert_eq!(unsendable.messages, 0, "messages left out of the frames");
    let mut decoded = Vec::with_capacity(messages.len());
    for frame in &frames {
        let (prefix, payload) = frame.bytes.split_at(4);
        let prefix: [u8; 4] = prefix.try_into().unwrap_or_default();
        assert_eq!(
            u32::from_be_bytes(prefix) as usize,
            payload.len(),
            "length prefix"
        );
        let batch = decode_batch(payload)
            .unwrap_or_else(|e| panic!("a frame of encode_frames does not decode: {e}"));
        assert_eq!(batch.len() as u64, frame.messages, "message count");
        decoded.extend(batch);
    }
    assert_eq!(decoded, normalized(messages), "re-encoded messages differ");
}

/// `messages` as their own bytes decode: rust-protobuf keeps an empty set
/// of unknown fields apart from none (a message field sent twice, merged,
/// can leave the former), which its `==` tells apart though the bytes are
/// the same.
fn normalized(messages: &[Message]) -> Vec<Message> {
    messages
        .iter()
        .map(|message| {
            let bytes = message
                .write_to_bytes()
                .unwrap_or_else(|e| panic!("{message:?} does not encode: {e}"));
            Message::parse_from_bytes(&bytes)
                .unwrap_or_else(|e| panic!("{message:?}: its own bytes do not decode: {e}"))
        })
        .collect()
}
