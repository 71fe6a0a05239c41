//! Which (job, slot) of the soak's window an executor received, once or
//! more: two bits per pair (received; received again) rather than the
//! receipts themselves, so 1,000 jobs over 1,800 slots take 450 KB
//! however long the run. The bench's jobs have one shard each; receipts
//! of any other shard are counted in a map of their own, empty in
//! practice.

use std::{collections::HashMap, ops::Range};

use anyhow::bail;

/// Most (job, slot) pairs one soak tracks: its two bitmaps then take
/// 256 MiB.
pub const MOST_PAIRS: u64 = 1 << 30;

/// A bit per (job, slot), slot-major, so the pairs of consecutive slots
/// (an interval) are one run of bits.
#[derive(Debug)]
struct Bits {
    words: Vec<u64>,
}

impl Bits {
    fn new(bits: usize) -> Self {
        Self {
            words: vec![0; bits.div_ceil(64)],
        }
    }

    /// Sets bit `i`; answers whether it was set already.
    fn set(&mut self, i: usize) -> bool {
        let (word, mask) = (i / 64, 1u64 << (i % 64));
        match self.words.get_mut(word) {
            Some(w) => {
                let was = *w & mask != 0;
                *w |= mask;
                was
            }
            None => false,
        }
    }

    /// Bits set in `range`: whole words at once, the ends bit by bit.
    fn count(&self, range: Range<usize>) -> u64 {
        let mut set = 0;
        let mut i = range.start;
        while i < range.end {
            let word = self.words.get(i / 64).copied().unwrap_or(0);
            if i.is_multiple_of(64) && i + 64 <= range.end {
                set += u64::from(word.count_ones());
                i += 64;
            } else {
                set += (word >> (i % 64)) & 1;
                i += 1;
            }
        }
        set
    }
}

/// The (job, slot) pairs of a window and what became of them.
#[derive(Debug)]
pub struct SlotBook {
    jobs: u32,
    slots: usize,
    /// Shard 0 of the pair reached an executor.
    received: Bits,
    /// It reached one more than once (as a new run each time).
    doubled: Bits,
    /// Receipts of shards other than 0, by (job, slot, shard).
    other_shards: HashMap<(u32, usize, u32), u32>,
}

/// What became of the pairs of some slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotCounts {
    /// One per job and slot.
    pub expected: u64,
    /// Expected pairs no executor received.
    pub lost: u64,
    /// (job, slot, shard) received as a new run more than once.
    pub duplicate: u64,
}

impl SlotBook {
    /// A book of `jobs` jobs over `slots` slots; an error if that is more
    /// pairs than [`MOST_PAIRS`].
    pub fn new(jobs: u32, slots: usize) -> anyhow::Result<Self> {
        let pairs = u64::from(jobs) * slots as u64;
        if pairs > MOST_PAIRS {
            bail!(
                "{jobs} jobs over {slots} slots are {pairs} (job, slot) pairs to track, more than {MOST_PAIRS}; give fewer --jobs or a shorter --duration"
            );
        }
        Ok(Self {
            jobs,
            slots,
            received: Bits::new(pairs as usize),
            doubled: Bits::new(pairs as usize),
            other_shards: HashMap::new(),
        })
    }

    /// Notes a receipt of `job` for slot number `slot`, shard `shard`;
    /// answers whether it is the first of that (job, slot, shard). Pairs
    /// outside the book are passed over (and are never first).
    pub fn note(&mut self, job: u32, slot: usize, shard: u32) -> bool {
        if job >= self.jobs || slot >= self.slots {
            return false;
        }
        if shard != 0 {
            let times = self.other_shards.entry((job, slot, shard)).or_insert(0);
            *times += 1;
            return *times == 1;
        }
        let at = slot * self.jobs as usize + job as usize;
        if self.received.set(at) {
            self.doubled.set(at);
            return false;
        }
        true
    }

    /// The counts of the slots numbered `slots`.
    pub fn count(&self, slots: Range<usize>) -> SlotCounts {
        let slots = slots.start.min(self.slots)..slots.end.min(self.slots);
        let jobs = self.jobs as usize;
        let pairs = slots.start * jobs..slots.end * jobs;
        let expected = pairs.len() as u64;
        let other_doubled = self
            .other_shards
            .iter()
            .filter(|((_, slot, _), times)| slots.contains(slot) && **times > 1)
            .count() as u64;
        SlotCounts {
            expected,
            lost: expected - self.received.count(pairs.clone()),
            duplicate: self.doubled.count(pairs) + other_doubled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lost_and_doubled_pairs() -> anyhow::Result<()> {
        // 3 jobs over 4 slots.
        let mut book = SlotBook::new(3, 4)?;
        assert!(book.note(0, 0, 0));
        assert!(book.note(1, 0, 0));
        assert!(!book.note(1, 0, 0), "a second receipt is not first");
        assert!(!book.note(1, 0, 0), "nor a third");
        assert!(book.note(2, 1, 0));
        assert!(book.note(0, 3, 0));
        assert!(book.note(0, 3, 1), "another shard is a pair of its own");
        assert!(!book.note(0, 3, 1));
        assert!(!book.note(3, 0, 0), "not a job of the book");
        assert!(!book.note(0, 4, 0), "not a slot of the book");

        let all = book.count(0..4);
        assert_eq!(all.expected, 12);
        assert_eq!(all.lost, 12 - 4);
        assert_eq!(
            all.duplicate, 2,
            "job 1 at slot 0, and shard 1 of job 0 at slot 3"
        );
        let first = book.count(0..1);
        assert_eq!((first.expected, first.lost, first.duplicate), (3, 1, 1));
        let middle = book.count(1..3);
        assert_eq!((middle.expected, middle.lost, middle.duplicate), (6, 5, 0));
        assert_eq!(book.count(3..9).expected, 3, "clamped to the book");
        Ok(())
    }

    #[test]
    fn pairs_cross_word_boundaries() -> anyhow::Result<()> {
        let mut book = SlotBook::new(1000, 3)?;
        for job in 0..1000 {
            assert!(book.note(job, 1, 0));
        }
        assert_eq!(book.count(1..2).lost, 0);
        assert_eq!(book.count(0..1).lost, 1000);
        assert_eq!(book.count(0..3).lost, 2000);
        Ok(())
    }

    #[test]
    fn too_many_pairs_are_refused() {
        assert!(SlotBook::new(1_000_000, 86_400).is_err());
        assert!(SlotBook::new(1000, 1800).is_ok());
    }
}
