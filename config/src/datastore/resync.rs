//! The watch's bookkeeping, as a pure state machine: which key -> mod revision the consumer
//! has been told about, and up to which revision it is current. From that it filters watch
//! events (never repeat one) and turns a fresh listing into exactly the difference (never
//! miss one), so a disconnect or a compaction is invisible to the consumer.

use std::collections::HashMap;

use super::Kv;

/// One change under a watched prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was created or changed.
    Put(Kv),
    /// The key was deleted. After a resync the exact deletion revision is unknown; it is then
    /// the revision of the listing that no longer contained the key.
    Delete { key: String, mod_revision: i64 },
}

impl WatchEvent {
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put(kv) => &kv.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }

    pub fn mod_revision(&self) -> i64 {
        match self {
            WatchEvent::Put(kv) => kv.mod_revision,
            WatchEvent::Delete { mod_revision, .. } => *mod_revision,
        }
    }
}

/// What the consumer of one watch knows.
#[derive(Debug, Default)]
pub(crate) struct WatchState {
    /// Every key the consumer holds, with the mod revision it was told.
    known: HashMap<String, i64>,
    /// Every change up to and including this revision has reached the consumer.
    revision: i64,
}

impl WatchState {
    /// The consumer holds `baseline` (key, mod revision), the state at `revision`.
    pub(crate) fn new(baseline: impl IntoIterator<Item = (String, i64)>, revision: i64) -> Self {
        WatchState {
            known: baseline.into_iter().collect(),
            revision,
        }
    }

    /// The revision the next etcd watch must start at.
    pub(crate) fn next_revision(&self) -> i64 {
        self.revision + 1
    }

    /// A change reported by etcd's watch: returns it if the consumer has not seen it yet.
    /// A replayed event (at or below the current revision, or for a key already at that
    /// revision) and the deletion of a key the consumer never held are dropped.
    pub(crate) fn apply(&mut self, event: WatchEvent) -> Option<WatchEvent> {
        let revision = event.mod_revision();
        if revision <= self.revision {
            return None;
        }
        self.revision = revision;
        match &event {
            WatchEvent::Put(kv) => {
                if self
                    .known
                    .get(&kv.key)
                    .is_some_and(|&seen| seen >= kv.mod_revision)
                {
                    return None;
                }
                self.known.insert(kv.key.clone(), kv.mod_revision);
            }
            WatchEvent::Delete { key, .. } => {
                self.known.remove(key)?;
            }
        }
        Some(event)
    }

    /// etcd says nothing under the prefix changed up to `revision` (progress notification).
    pub(crate) fn progress(&mut self, revision: i64) {
        self.revision = self.revision.max(revision);
    }

    /// A complete listing of the prefix at `revision`: returns the events that turn what the
    /// consumer holds into it (Puts for new or changed keys in mod revision order, then Deletes
    /// for vanished keys at `revision`), and makes the listing the new baseline.
    pub(crate) fn resync(&mut self, listing: Vec<Kv>, revision: i64) -> Vec<WatchEvent> {
        let mut fresh = HashMap::with_capacity(listing.len());
        let mut puts = Vec::new();
        for kv in listing {
            fresh.insert(kv.key.clone(), kv.mod_revision);
            if self.known.get(&kv.key) != Some(&kv.mod_revision) {
                puts.push(kv);
            }
        }
        puts.sort_by(|a, b| {
            a.mod_revision
                .cmp(&b.mod_revision)
                .then_with(|| a.key.cmp(&b.key))
        });
        let mut gone: Vec<String> = self
            .known
            .keys()
            .filter(|k| !fresh.contains_key(*k))
            .cloned()
            .collect();
        gone.sort();
        self.known = fresh;
        self.revision = self.revision.max(revision);
        let mut events: Vec<WatchEvent> = puts.into_iter().map(WatchEvent::Put).collect();
        events.extend(gone.into_iter().map(|key| WatchEvent::Delete {
            key,
            mod_revision: revision,
        }));
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str, rev: i64) -> Kv {
        Kv {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            mod_revision: rev,
        }
    }

    fn put(key: &str, value: &str, rev: i64) -> WatchEvent {
        WatchEvent::Put(kv(key, value, rev))
    }

    fn del(key: &str, rev: i64) -> WatchEvent {
        WatchEvent::Delete {
            key: key.into(),
            mod_revision: rev,
        }
    }

    #[test]
    fn new_events_pass_and_advance_the_revision() {
        let mut s = WatchState::new([("/p/a".to_string(), 3)], 5);
        assert_eq!(s.next_revision(), 6);
        assert_eq!(s.apply(put("/p/b", "1", 6)), Some(put("/p/b", "1", 6)));
        assert_eq!(s.apply(del("/p/a", 7)), Some(del("/p/a", 7)));
        assert_eq!(s.next_revision(), 8);
    }

    #[test]
    fn replayed_events_are_dropped() {
        let mut s = WatchState::new([], 5);
        assert!(s.apply(put("/p/a", "1", 6)).is_some());
        // A re-watch from an older revision replays revision 6: already seen.
        assert_eq!(s.apply(put("/p/a", "1", 6)), None);
        assert_eq!(s.apply(put("/p/x", "1", 4)), None);
        assert!(s.apply(put("/p/a", "2", 9)).is_some());
    }

    #[test]
    fn delete_of_a_key_never_held_is_dropped() {
        let mut s = WatchState::new([], 1);
        assert_eq!(s.apply(del("/p/ghost", 2)), None);
        // The revision still advanced: the watch must not restart before it.
        assert_eq!(s.next_revision(), 3);
    }

    #[test]
    fn resync_emits_exactly_the_difference() {
        let mut s = WatchState::new(
            [
                ("/p/same".to_string(), 2),
                ("/p/changed".to_string(), 3),
                ("/p/gone".to_string(), 4),
            ],
            4,
        );
        let events = s.resync(
            vec![
                kv("/p/changed", "new", 9),
                kv("/p/new", "n", 7),
                kv("/p/same", "s", 2),
            ],
            10,
        );
        assert_eq!(
            events,
            vec![
                put("/p/new", "n", 7),
                put("/p/changed", "new", 9),
                del("/p/gone", 10)
            ]
        );
        assert_eq!(s.next_revision(), 11);
        // Nothing changed since: a second resync is silent.
        let again = s.resync(
            vec![
                kv("/p/changed", "new", 9),
                kv("/p/new", "n", 7),
                kv("/p/same", "s", 2),
            ],
            12,
        );
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn resync_then_events_from_the_listing_revision_do_not_repeat() {
        let mut s = WatchState::new([], 0);
        let snapshot = s.resync(vec![kv("/p/a", "1", 3)], 5);
        assert_eq!(snapshot, vec![put("/p/a", "1", 3)]);
        assert_eq!(s.apply(put("/p/a", "1", 3)), None);
        assert_eq!(s.apply(put("/p/a", "2", 6)), Some(put("/p/a", "2", 6)));
    }

    #[test]
    fn key_deleted_and_recreated_while_away_is_one_put() {
        let mut s = WatchState::new([("/p/a".to_string(), 3)], 3);
        let events = s.resync(vec![kv("/p/a", "again", 8)], 8);
        assert_eq!(events, vec![put("/p/a", "again", 8)]);
    }

    #[test]
    fn progress_only_moves_forward() {
        let mut s = WatchState::new([], 10);
        s.progress(7);
        assert_eq!(s.next_revision(), 11);
        s.progress(20);
        assert_eq!(s.next_revision(), 21);
    }
}
