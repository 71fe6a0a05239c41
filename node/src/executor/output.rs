//! The tail of a run's combined stdout and stderr.

use std::sync::{Arc, Mutex, MutexGuard};

use protocol::run::{tail, OUTPUT_LIMIT};

/// Keeps the last `limit` bytes written to it.
#[derive(Debug)]
pub struct OutputBuffer {
    bytes: Vec<u8>,
    limit: usize,
}

impl Default for OutputBuffer {
    fn default() -> Self {
        Self::with_limit(OUTPUT_LIMIT)
    }
}

impl OutputBuffer {
    pub fn with_limit(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            limit,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= self.limit {
            self.bytes.clear();
            self.bytes
                .extend_from_slice(&chunk[chunk.len() - self.limit..]);
            return;
        }
        self.bytes.extend_from_slice(chunk);
        // Trim only once the buffer holds twice the limit, so appending
        // stays amortised O(1) per byte.
        if self.bytes.len() > 2 * self.limit {
            let excess = self.bytes.len() - self.limit;
            self.bytes.drain(..excess);
        }
    }

    /// The kept tail as text: invalid UTF-8 becomes U+FFFD, and a character
    /// cut in half at the start of the tail is dropped.
    pub fn text(&self) -> String {
        let start = self.bytes.len().saturating_sub(self.limit);
        let mut kept = &self.bytes[start..];
        if start > 0 {
            // Skip UTF-8 continuation bytes of a character that began before the tail.
            let skip = kept
                .iter()
                .take(3)
                .take_while(|b| (**b & 0b1100_0000) == 0b1000_0000)
                .count();
            kept = &kept[skip..];
        }
        let text = String::from_utf8_lossy(kept);
        // Replacement characters can make lossy text longer than the bytes.
        tail(&text, self.limit).to_string()
    }
}

/// An output buffer shared by the task reading a process and the API.
#[derive(Clone, Debug, Default)]
pub struct SharedOutput(Arc<Mutex<OutputBuffer>>);

impl SharedOutput {
    pub fn push(&self, chunk: &[u8]) {
        self.lock().push(chunk);
    }

    pub fn text(&self) -> String {
        self.lock().text()
    }

    fn lock(&self) -> MutexGuard<'_, OutputBuffer> {
        // A panic while holding this lock cannot leave the bytes invalid.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_bytes() {
        let mut out = OutputBuffer::with_limit(8);
        out.push(b"hello ");
        assert_eq!(out.text(), "hello ");
        out.push(b"world");
        assert_eq!(out.text(), "lo world");
        for _ in 0..100 {
            out.push(b"abc");
        }
        assert_eq!(out.text(), "bcabcabc");
        out.push(b"0123456789");
        assert_eq!(out.text(), "23456789");
    }

    #[test]
    fn drops_a_character_cut_at_the_start() {
        let mut out = OutputBuffer::with_limit(4);
        out.push("xé€".as_bytes()); // 1 + 2 + 3 bytes; the tail starts inside é
        assert_eq!(out.text(), "€");
        let mut out = OutputBuffer::with_limit(8);
        out.push(&[0xff, b'a']);
        assert_eq!(out.text(), "\u{fffd}a");
    }

    #[test]
    fn default_limit_is_the_protocol_limit() {
        let out = SharedOutput::default();
        out.push(&vec![b'x'; OUTPUT_LIMIT + 10]);
        assert_eq!(out.text().len(), OUTPUT_LIMIT);
    }
}
