//! What a sink remembers per incident (a posted message's id, an open
//! alert), bounded: past `MAX` entries the oldest incidents (lowest ids)
//! are forgotten, and their later alerts start afresh.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::util::sync::lock;

/// Incidents remembered at most.
pub const MAX: usize = 10_000;

pub struct Memory<T> {
    map: Mutex<BTreeMap<u64, T>>,
}

impl<T: Clone> Default for Memory<T> {
    fn default() -> Self {
        Memory {
            map: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<T: Clone> Memory<T> {
    pub fn get(&self, id: u64) -> Option<T> {
        lock(&self.map).get(&id).cloned()
    }

    pub fn insert(&self, id: u64, value: T) {
        let mut map = lock(&self.map);
        map.insert(id, value);
        while map.len() > MAX {
            map.pop_first();
        }
    }

    pub fn remove(&self, id: u64) -> Option<T> {
        lock(&self.map).remove(&id)
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, in id order.
    pub fn all(&self) -> Vec<(u64, T)> {
        lock(&self.map)
            .iter()
            .map(|(k, v)| (*k, v.clone()))
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
        assert_eq!(m.get(4), None);
        assert_eq!(m.get(5), Some(10));
        assert_eq!(m.remove(5), Some(10));
        assert_eq!(m.all().first().map(|e| e.0), Some(6));
    }
}
