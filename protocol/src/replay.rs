//! The nonces a receiver of signed requests has accepted, remembered until
//! their signatures leave the replay window, so each is accepted once.
//!
//! Memory is bounded by a cap on entries. When the cap is reached and no
//! entry has expired, new requests are refused ([`V2Error::CacheFull`],
//! answered 503 so senders retry) rather than an unexpired nonce being
//! forgotten: forgetting would reopen exactly the replays the cache exists
//! to stop. A flood of validly signed requests can only come from a holder
//! of the secret, so the refusal costs availability, never safety.

use std::{collections::HashMap, sync::Mutex};

use crate::signature_v2::{Header, V2Error};

/// Entries remembered by default: at the default 300 s window, more than
/// 300 signed requests a second, sustained, to one receiver. Each entry
/// is a nonce of at most 64 hex digits and a time: a few MiB at most.
pub const DEFAULT_REPLAY_CACHE_ENTRIES: usize = 100_000;

/// Nonces seen, each with the last second its signature is fresh.
pub struct ReplayCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Nonce → the last unix second its request is inside the window.
    seen: HashMap<String, i64>,
    /// When expired entries were last dropped, so a full cache is swept at
    /// most once a second, not on every refused request.
    swept_at: i64,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                seen: HashMap::new(),
                swept_at: i64::MIN,
            }),
        }
    }

    /// Accepts `header`'s nonce once: a nonce seen and not yet expired is
    /// [`V2Error::Replayed`]. `header` must already have passed the window
    /// check of [`crate::signature_v2::verify`] with `window_secs`.
    pub fn admit(&self, header: &Header, now_unix: i64, window_secs: i64) -> Result<(), V2Error> {
        let expires = header.unix.saturating_add(window_secs.abs());
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&until) = inner.seen.get(&header.nonce) {
            if until >= now_unix {
                return Err(V2Error::Replayed);
            }
        }
        if inner.seen.len() >= self.capacity && !inner.seen.contains_key(&header.nonce) {
            if inner.swept_at != now_unix {
                inner.swept_at = now_unix;
                inner.seen.retain(|_, until| *until >= now_unix);
            }
            if inner.seen.len() >= self.capacity {
                return Err(V2Error::CacheFull);
            }
        }
        inner.seen.insert(header.nonce.clone(), expires);
        Ok(())
    }

    /// Entries held now (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CACHE_ENTRIES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(unix: i64, nonce: &str) -> Header {
        Header {
            unix,
            nonce: nonce.to_string(),
            sig: vec![],
        }
    }

    #[test]
    fn a_nonce_is_admitted_once_within_the_window_and_forgotten_after() {
        let cache = ReplayCache::new(10);
        let first = header(1000, "aa");
        assert_eq!(cache.admit(&first, 1000, 300), Ok(()));
        assert_eq!(cache.admit(&first, 1299, 300), Err(V2Error::Replayed));
        assert_eq!(cache.admit(&first, 1300, 300), Err(V2Error::Replayed));
        // Past 1300 the signature is stale anyway; the entry may go.
        assert_eq!(cache.admit(&first, 1301, 300), Ok(()));
        assert_eq!(cache.admit(&header(1000, "bb"), 1000, 300), Ok(()));
    }

    #[test]
    fn a_full_cache_refuses_rather_than_forgets_and_frees_expired_entries() {
        let cache = ReplayCache::new(2);
        assert_eq!(cache.admit(&header(1000, "a1"), 1000, 300), Ok(()));
        assert_eq!(cache.admit(&header(1010, "a2"), 1010, 300), Ok(()));
        assert_eq!(
            cache.admit(&header(1020, "a3"), 1020, 300),
            Err(V2Error::CacheFull)
        );
        // The first nonces are still remembered: refused, not forgotten.
        assert_eq!(
            cache.admit(&header(1000, "a1"), 1020, 300),
            Err(V2Error::Replayed)
        );
        assert_eq!(cache.len(), 2);
        // Once a1 expired (after 1300) it is swept to make room.
        assert_eq!(cache.admit(&header(1301, "a3"), 1301, 300), Ok(()));
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.admit(&header(1010, "a2"), 1301, 300),
            Err(V2Error::Replayed)
        );
    }
}
