//! What a sink remembers per incident (a posted message's id, an open
//! alert), bounded: past `MAX` entries the oldest incidents (lowest ids)
//! are forgotten, and their later alerts start afresh. The key is the
//! incident id, or `(incident id, destination)` for a sink a route can
//! point elsewhere, so one incident has an entry per destination.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::util::sync::lock;

/// Incidents remembered at most.
pub const MAX: usize = 10_000;

/// `K` orders by incident id first, so the oldest incidents go first.
pub struct Memory<T, K = u64> {
    map: Mutex<BTreeMap<K, T>>,
}

impl<T: Clone, K: Ord + Clone> Default for Memory<T, K> {
    fn default() -> Self {
        Memory {
            map: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<T: Clone, K: Ord + Clone> Memory<T, K> {
    pub fn get(&self, key: &K) -> Option<T> {
        lock(&self.map).get(key).cloned()
    }

    pub fn insert(&self, key: K, value: T) {
        let mut map = lock(&self.map);
        map.insert(key, value);
        while map.len() > MAX {
            map.pop_first();
        }
    }

    pub fn remove(&self, key: &K) -> Option<T> {
        lock(&self.map).remove(key)
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, in key order.
    pub fn all(&self) -> Vec<(K, T)> {
        lock(&self.map)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_incidents_are_forgotten_first() {
        let m = Memory::default();
        for id in 0..(MAX as u64 + 5) {
            m.insert(id, id * 2);
        }
        assert_eq!(m.len(), MAX);
        assert_eq!(m.get(&4), None);
        assert_eq!(m.get(&5), Some(10));
        assert_eq!(m.remove(&5), Some(10));
        assert_eq!(m.all().first().map(|e| e.0), Some(6));
    }

    #[test]
    fn one_incident_has_an_entry_per_destination_and_goes_whole() {
        let m: Memory<u64, (u64, u64)> = Memory::default();
        for id in 0..(MAX as u64 / 2 + 1) {
            m.insert((id, 1), id);
            m.insert((id, 2), id);
        }
        assert_eq!(m.len(), MAX);
        assert_eq!((m.get(&(0, 1)), m.get(&(0, 2))), (None, None));
        assert_eq!((m.get(&(1, 1)), m.get(&(1, 2))), (Some(1), Some(1)));
    }
}
