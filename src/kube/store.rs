/*!
The pod store, owned by the classification thread alone (no locks).

Fed by the watch streams through `apply`. A (re)list arrives as `Init`, one
`Page` per LIST page, then `InitDone`. Pages are applied as they come (pods
that changed while the watch was down come out as `Upserted`, unchanged ones
as nothing) and every pod listed is marked with the list's generation; at
`InitDone` the pods of that stream left unmarked are swept out as `Deleted`.
So a 410 relist loses nothing and repeats nothing, and no second copy of the
listed pods is ever held. Each stream only ever sweeps its own pods (one
stream per namespace, or one for the cluster).
*/

use std::collections::HashMap;

use super::types::PodRecord;

pub type StreamId = u16;

/// What a watch stream tells its consumer (`R`: the record kept per object).
#[derive(Debug)]
pub enum Event<R = PodRecord> {
    /// A LIST starts: pods seen from now on belong to the new list.
    Init,
    /// One LIST page.
    Page(Vec<R>),
    /// The LIST is complete: pods it did not contain are gone.
    InitDone,
    /// ADDED or MODIFIED (boxed: keeps channel slots small).
    Apply(Box<R>),
    /// DELETED (the last state of the object).
    Delete(Box<R>),
}

/// What changed in the store, for the classifier.
#[derive(Debug, PartialEq)]
pub enum Change {
    /// The pod at `key` is new or different; `previous` is what was known before.
    Upserted {
        key: String,
        previous: Option<PodRecord>,
    },
    /// The pod is gone; this was its last known state.
    Deleted(PodRecord),
}

struct Entry {
    stream: StreamId,
    /// The list generation that last saw this pod (see `Store::generation`).
    seen: u32,
    pod: PodRecord,
}

#[derive(Default)]
pub struct Store {
    /// Boxed: a hash table's empty slots cost the full value size, and a
    /// record is ~350 bytes; boxed, a slot is a pointer.
    pods: HashMap<String, Box<Entry>>,
    /// Bumped at each `Init`; per stream, the generation of its current list.
    generation: u32,
    listing: HashMap<StreamId, u32>,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&PodRecord> {
        self.pods.get(key).map(|e| &e.pod)
    }

    pub fn iter(&self) -> impl Iterator<Item = &PodRecord> {
        self.pods.values().map(|e| &e.pod)
    }

    /// Applies one event from `stream`; returns what changed.
    pub fn apply(&mut self, stream: StreamId, event: Event) -> Vec<Change> {
        match event {
            Event::Init => {
                self.generation = self.generation.wrapping_add(1);
                self.listing.insert(stream, self.generation);
                Vec::new()
            }
            Event::Page(pods) => {
                let seen = self
                    .listing
                    .get(&stream)
                    .copied()
                    .unwrap_or(self.generation);
                self.pods.reserve(pods.len());
                pods.into_iter()
                    .filter_map(|p| self.upsert(stream, seen, p))
                    .collect()
            }
            Event::InitDone => self.sweep(stream),
            Event::Apply(pod) => {
                let seen = self
                    .listing
                    .get(&stream)
                    .copied()
                    .unwrap_or(self.generation);
                self.upsert(stream, seen, *pod).into_iter().collect()
            }
            Event::Delete(pod) => match self.pods.remove(&pod.key()) {
                Some(e) => vec![Change::Deleted(e.pod)],
                None => Vec::new(),
            },
        }
    }

    fn upsert(&mut self, stream: StreamId, seen: u32, pod: PodRecord) -> Option<Change> {
        let key = pod.key();
        match self.pods.get_mut(&key) {
            Some(e) => {
                e.stream = stream;
                e.seen = seen;
                if e.pod == pod {
                    return None;
                }
                let previous = std::mem::replace(&mut e.pod, pod);
                Some(Change::Upserted {
                    key,
                    previous: Some(previous),
                })
            }
            None => {
                self.pods
                    .insert(key.clone(), Box::new(Entry { stream, seen, pod }));
                Some(Change::Upserted {
                    key,
                    previous: None,
                })
            }
        }
    }

    /// Ends a list: the stream's pods it did not see are gone.
    fn sweep(&mut self, stream: StreamId) -> Vec<Change> {
        let Some(generation) = self.listing.remove(&stream) else {
            return Vec::new();
        };
        let gone: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, e)| e.stream == stream && e.seen != generation)
            .map(|(k, _)| k.clone())
            .collect();
        gone.into_iter()
            .filter_map(|k| self.pods.remove(&k))
            .map(|e| Change::Deleted(e.pod))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Phase, PodRecord};

    fn pod(name: &str, phase: Phase) -> PodRecord {
        PodRecord::bare("ns", name, phase)
    }

    fn list(store: &mut Store, stream: StreamId, pages: Vec<Vec<PodRecord>>) -> Vec<Change> {
        let mut changes = store.apply(stream, Event::Init);
        for p in pages {
            changes.extend(store.apply(stream, Event::Page(p)));
        }
        changes.extend(store.apply(stream, Event::InitDone));
        changes
    }

    #[test]
    fn first_list_adds_every_pod() {
        let mut s = Store::new();
        s.apply(0, Event::Init);
        assert_eq!(
            s.apply(0, Event::Page(vec![pod("a", Phase::Running)]))
                .len(),
            1
        );
        assert_eq!(
            s.apply(0, Event::Page(vec![pod("b", Phase::Running)]))
                .len(),
            1
        );
        assert!(s.apply(0, Event::InitDone).is_empty());
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn relist_synthesizes_updates_and_deletions_but_nothing_for_unchanged_pods() {
        let mut s = Store::new();
        list(
            &mut s,
            0,
            vec![vec![
                pod("a", Phase::Running),
                pod("b", Phase::Running),
                pod("c", Phase::Running),
            ]],
        );
        let changes = list(
            &mut s,
            0,
            vec![
                vec![pod("a", Phase::Running), pod("b", Phase::Failed)],
                vec![pod("d", Phase::Pending)],
            ],
        );
        let mut deleted: Vec<&str> = vec![];
        let mut upserted: Vec<(&str, bool)> = vec![];
        for c in &changes {
            match c {
                Change::Deleted(p) => deleted.push(&p.name),
                Change::Upserted { key, previous } => {
                    upserted.push((key.as_str(), previous.is_some()))
                }
            }
        }
        upserted.sort();
        assert_eq!(deleted, ["c"]);
        assert_eq!(upserted, [("ns/b", true), ("ns/d", false)]);
        assert_eq!(s.get("ns/b").map(|p| p.phase), Some(Phase::Failed));
    }

    #[test]
    fn a_relist_of_one_stream_never_deletes_another_streams_pods() {
        let mut s = Store::new();
        list(&mut s, 0, vec![vec![pod("a", Phase::Running)]]);
        let mut other = pod("x", Phase::Running);
        other.namespace = "other".into();
        list(&mut s, 1, vec![vec![other]]);
        let changes = list(&mut s, 0, vec![vec![]]);
        assert_eq!(changes.len(), 1);
        assert!(s.get("other/x").is_some());
    }

    #[test]
    fn a_pod_seen_only_by_an_interrupted_list_is_swept_by_the_next_complete_one() {
        let mut s = Store::new();
        s.apply(0, Event::Init);
        s.apply(0, Event::Page(vec![pod("stale", Phase::Running)]));
        let changes = list(&mut s, 0, vec![vec![pod("a", Phase::Running)]]);
        assert_eq!(changes.len(), 2, "a added, stale deleted: {changes:?}");
        assert!(s.get("ns/stale").is_none());
    }

    #[test]
    fn a_watch_event_during_a_relist_counts_as_seen() {
        // A pod the watch reports between Init and InitDone is current.
        let mut s = Store::new();
        list(&mut s, 0, vec![vec![pod("a", Phase::Running)]]);
        s.apply(0, Event::Init);
        s.apply(0, Event::Apply(Box::new(pod("a", Phase::Failed))));
        assert!(s.apply(0, Event::InitDone).is_empty());
        assert!(s.get("ns/a").is_some());
    }

    #[test]
    fn identical_updates_are_not_changes_and_deletes_of_unknown_pods_are_ignored() {
        let mut s = Store::new();
        assert_eq!(
            s.apply(0, Event::Apply(Box::new(pod("a", Phase::Running))))
                .len(),
            1
        );
        assert!(
            s.apply(0, Event::Apply(Box::new(pod("a", Phase::Running))))
                .is_empty()
        );
        assert!(
            s.apply(0, Event::Delete(Box::new(pod("zz", Phase::Running))))
                .is_empty()
        );
        let c = s.apply(0, Event::Delete(Box::new(pod("a", Phase::Running))));
        assert!(matches!(&c[..], [Change::Deleted(p)] if &*p.name == "a"));
        assert!(s.is_empty());
    }
}
