/*!
The node table, owned by the classification thread like the pod store.

Fed by the node stream with the same `Init`, `Page`…, `InitDone` protocol
(see `store`): listed nodes are marked, and at `InitDone` the unmarked ones
are swept out. An update equal to what is kept (a status heartbeat, which
moves only fields the record does not hold) is no change at all.
*/

use std::collections::HashMap;

use super::store::Event;
use crate::model::NodeRecord;

/// What changed, for the detector.
#[derive(Debug, PartialEq)]
pub enum NodeChange {
    /// The node is new or different; `previous` is what was known before.
    Upserted {
        name: Box<str>,
        previous: Option<NodeRecord>,
    },
    /// The node is gone; this was its last known state.
    Deleted(NodeRecord),
}

#[derive(Default)]
pub struct NodeStore {
    nodes: HashMap<Box<str>, (u32, NodeRecord)>,
    generation: u32,
    /// A LIST is being received.
    listing: bool,
    /// The first LIST completed.
    listed: bool,
}

impl NodeStore {
    pub fn new() -> NodeStore {
        NodeStore::default()
    }

    pub fn get(&self, name: &str) -> Option<&NodeRecord> {
        self.nodes.get(name).map(|(_, n)| n)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.values().map(|(_, n)| n)
    }

    /// The first LIST of nodes completed.
    pub fn listed(&self) -> bool {
        self.listed
    }

    pub fn apply(&mut self, event: Event<NodeRecord>) -> Vec<NodeChange> {
        match event {
            Event::Init => {
                self.generation = self.generation.wrapping_add(1);
                self.listing = true;
                Vec::new()
            }
            Event::Page(nodes) => nodes.into_iter().filter_map(|n| self.upsert(n)).collect(),
            Event::InitDone => {
                self.listing = false;
                self.listed = true;
                let generation = self.generation;
                let gone: Vec<Box<str>> = self
                    .nodes
                    .iter()
                    .filter(|(_, (seen, _))| *seen != generation)
                    .map(|(k, _)| k.clone())
                    .collect();
                gone.into_iter()
                    .filter_map(|k| self.nodes.remove(&k))
                    .map(|(_, n)| NodeChange::Deleted(n))
                    .collect()
            }
            Event::Apply(n) => self.upsert(*n).into_iter().collect(),
            Event::Delete(n) => match self.nodes.remove(&n.name) {
                Some((_, n)) => vec![NodeChange::Deleted(n)],
                None => Vec::new(),
            },
        }
    }

    fn upsert(&mut self, node: NodeRecord) -> Option<NodeChange> {
        let generation = self.generation;
        match self.nodes.get_mut(&node.name) {
            Some((seen, kept)) => {
                *seen = generation;
                if *kept == node {
                    return None;
                }
                let name = node.name.clone();
                let previous = std::mem::replace(kept, node);
                Some(NodeChange::Upserted {
                    name,
                    previous: Some(previous),
                })
            }
            None => {
                let name = node.name.clone();
                self.nodes.insert(name.clone(), (generation, node));
                Some(NodeChange::Upserted {
                    name,
                    previous: None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &mut NodeStore, nodes: Vec<NodeRecord>) -> Vec<NodeChange> {
        let mut c = s.apply(Event::Init);
        c.extend(s.apply(Event::Page(nodes)));
        c.extend(s.apply(Event::InitDone));
        c
    }

    #[test]
    fn a_heartbeat_equal_record_is_no_change_and_a_relist_sweeps_the_missing() {
        let mut s = NodeStore::new();
        assert!(!s.listed());
        assert_eq!(
            list(&mut s, vec![NodeRecord::bare("a"), NodeRecord::bare("b")]).len(),
            2
        );
        assert!(s.listed());
        assert!(
            s.apply(Event::Apply(Box::new(NodeRecord::bare("a"))))
                .is_empty()
        );
        let mut cordoned = NodeRecord::bare("a");
        cordoned.unschedulable = true;
        let c = s.apply(Event::Apply(Box::new(cordoned)));
        assert!(
            matches!(&c[..], [NodeChange::Upserted { previous: Some(p), .. }] if !p.unschedulable)
        );
        let c = list(&mut s, vec![NodeRecord::bare("b")]);
        assert!(
            matches!(&c[..], [NodeChange::Deleted(n)] if &*n.name == "a"),
            "{c:?}"
        );
        assert_eq!(s.len(), 1);
        assert!(
            s.apply(Event::Delete(Box::new(NodeRecord::bare("zz"))))
                .is_empty()
        );
    }
}
