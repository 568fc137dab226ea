/*!
The pod store, owned by the classification thread alone (no locks).

Fed by the watch streams through `apply`. A (re)list arrives as `Init`, one
`Page` per LIST page, then `InitDone`; only at `InitDone` is the listed set
swapped in, and the difference with what was known becomes changes: pods
that changed while the watch was down come out as `Upserted`, pods that
vanished as `Deleted`. So a 410 relist loses nothing and repeats nothing.
Each stream only ever replaces its own pods (one stream per namespace, or
one for the cluster).
*/

use std::collections::HashMap;

use super::types::PodRecord;

pub type StreamId = u16;

/// What a watch stream tells the store.
#[derive(Debug)]
pub enum Event {
    /// A LIST starts: forget any half-received earlier list.
    Init,
    /// One LIST page.
    Page(Vec<PodRecord>),
    /// The LIST is complete: swap it in.
    InitDone,
    /// ADDED or MODIFIED (boxed: keeps channel slots small).
    Apply(Box<PodRecord>),
    /// DELETED (the last state of the pod).
    Delete(Box<PodRecord>),
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

#[derive(Default)]
pub struct Store {
    pods: HashMap<String, (StreamId, PodRecord)>,
    listing: HashMap<StreamId, HashMap<String, PodRecord>>,
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
        self.pods.get(key).map(|(_, p)| p)
    }

    pub fn iter(&self) -> impl Iterator<Item = &PodRecord> {
        self.pods.values().map(|(_, p)| p)
    }

    /// Applies one event from `stream`; returns what changed.
    pub fn apply(&mut self, stream: StreamId, event: Event) -> Vec<Change> {
        match event {
            Event::Init => {
                self.listing.insert(stream, HashMap::new());
                Vec::new()
            }
            Event::Page(pods) => {
                let buf = self.listing.entry(stream).or_default();
                for p in pods {
                    buf.insert(p.key(), p);
                }
                Vec::new()
            }
            Event::InitDone => self.swap_in(stream),
            Event::Apply(pod) => self.upsert(stream, *pod).into_iter().collect(),
            Event::Delete(pod) => match self.pods.remove(&pod.key()) {
                Some((_, known)) => vec![Change::Deleted(known)],
                None => Vec::new(),
            },
        }
    }

    fn upsert(&mut self, stream: StreamId, pod: PodRecord) -> Option<Change> {
        let key = pod.key();
        match self.pods.get_mut(&key) {
            Some((_, known)) if *known == pod => None,
            Some((s, known)) => {
                *s = stream;
                let previous = std::mem::replace(known, pod);
                Some(Change::Upserted {
                    key,
                    previous: Some(previous),
                })
            }
            None => {
                self.pods.insert(key.clone(), (stream, pod));
                Some(Change::Upserted {
                    key,
                    previous: None,
                })
            }
        }
    }

    fn swap_in(&mut self, stream: StreamId) -> Vec<Change> {
        let listed = self.listing.remove(&stream).unwrap_or_default();
        let mut changes = Vec::new();
        let gone: Vec<String> = self
            .pods
            .iter()
            .filter(|(k, (s, _))| *s == stream && !listed.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            if let Some((_, p)) = self.pods.remove(&k) {
                changes.push(Change::Deleted(p));
            }
        }
        for (_, pod) in listed {
            changes.extend(self.upsert(stream, pod));
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::types::{Phase, PodRecord};

    fn pod(name: &str, phase: Phase) -> PodRecord {
        PodRecord {
            namespace: "ns".into(),
            name: name.into(),
            uid: format!("uid-{name}").into(),
            created: None,
            deleting: None,
            owner: None,
            node: None,
            phase,
            reason: None,
            message: None,
            scheduled: None,
            ready: None,
            ignore: false,
            containers: Box::new([]),
            init_containers: Box::new([]),
        }
    }

    fn list(store: &mut Store, stream: StreamId, pages: Vec<Vec<PodRecord>>) -> Vec<Change> {
        store.apply(stream, Event::Init);
        for p in pages {
            assert!(store.apply(stream, Event::Page(p)).is_empty());
        }
        store.apply(stream, Event::InitDone)
    }

    #[test]
    fn first_list_adds_every_pod_only_when_done() {
        let mut s = Store::new();
        s.apply(0, Event::Init);
        s.apply(0, Event::Page(vec![pod("a", Phase::Running)]));
        assert!(s.is_empty(), "pages are buffered until InitDone");
        s.apply(0, Event::Page(vec![pod("b", Phase::Running)]));
        let changes = s.apply(0, Event::InitDone);
        assert_eq!(changes.len(), 2);
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
    fn an_interrupted_list_is_discarded_by_the_next_init() {
        let mut s = Store::new();
        s.apply(0, Event::Init);
        s.apply(0, Event::Page(vec![pod("stale", Phase::Running)]));
        let changes = list(&mut s, 0, vec![vec![pod("a", Phase::Running)]]);
        assert_eq!(changes.len(), 1);
        assert!(s.get("ns/stale").is_none());
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
