//! The tail of a run's combined stdout and stderr.

use std::sync::{Arc, Mutex, MutexGuard};

use protocol::run::OutputTail;

/// An output buffer shared by the task reading a process and the API.
#[derive(Clone, Debug, Default)]
pub struct SharedOutput(Arc<Mutex<OutputTail>>);

impl SharedOutput {
    pub fn push(&self, chunk: &[u8]) {
        self.lock().push(chunk);
    }

    pub fn text(&self) -> String {
        self.lock().text()
    }

    fn lock(&self) -> MutexGuard<'_, OutputTail> {
        // A panic while holding this lock cannot leave the bytes invalid.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use protocol::run::OUTPUT_LIMIT;

    use super::*;

    #[test]
    fn default_limit_is_the_protocol_limit() {
        let out = SharedOutput::default();
        out.push(&vec![b'x'; OUTPUT_LIMIT + 10]);
        assert_eq!(out.text().len(), OUTPUT_LIMIT);
    }
}
