/*!
`Lru`: a bounded map that forgets its least recently used entry first, and
whose entries expire a fixed time after they were stored. It keeps the LLM's
answers (`DIAGNOSIS_CACHE_MAX_ENTRIES`, `DIAGNOSIS_CACHE_TTL_MS`) and what
enrichment gathered per open incident.

Every operation is O(1): a `HashMap` from key to slot, and the entries in a
dense `Vec` linked into a doubly-linked recency list by index (most recent at
the head). Removing an entry moves the last slot into its place
(`swap_remove`) and repairs that one entry's links, so there is no free list
and no tombstone.

The clock is passed in (`now`), never read here, so tests drive time by hand.
Not thread-safe by itself: its users keep it behind a `Mutex`.
*/

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// No neighbour.
const NIL: usize = usize::MAX;

struct Node<K, V> {
    key: K,
    value: V,
    /// `None`: `now + ttl` overflowed `Instant`, so it never expires.
    expires: Option<Instant>,
    /// Towards the most recently used end.
    prev: usize,
    /// Towards the least recently used end.
    next: usize,
}

pub struct Lru<K, V> {
    index: HashMap<K, usize>,
    nodes: Vec<Node<K, V>>,
    /// Most recently used.
    head: usize,
    /// Least recently used: evicted first.
    tail: usize,
    capacity: usize,
    ttl: Duration,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// Holds at most `capacity` entries (at least 1), each fresh for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Lru<K, V> {
        let capacity = capacity.max(1);
        Lru {
            // Sized on demand: a large limit costs nothing until it is used.
            index: HashMap::new(),
            nodes: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
            ttl,
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The value if present and fresh at `now`, which then becomes the most
    /// recently used. An expired entry is removed and counts as absent.
    pub fn get(&mut self, key: &K, now: Instant) -> Option<&V> {
        let i = *self.index.get(key)?;
        if self.nodes[i].expires.is_some_and(|e| now >= e) {
            self.remove_at(i);
            return None;
        }
        self.unlink(i);
        self.push_front(i);
        Some(&self.nodes[i].value)
    }

    /// Stores `value` fresh from `now` as the most recently used entry,
    /// replacing any value under `key`; evicts the least recently used entry
    /// when full.
    pub fn insert(&mut self, key: K, value: V, now: Instant) {
        let expires = now.checked_add(self.ttl);
        if let Some(&i) = self.index.get(&key) {
            let node = &mut self.nodes[i];
            node.value = value;
            node.expires = expires;
            self.unlink(i);
            self.push_front(i);
            return;
        }
        if self.nodes.len() >= self.capacity && self.tail != NIL {
            self.remove_at(self.tail);
        }
        let i = self.nodes.len();
        self.nodes.push(Node {
            key: key.clone(),
            value,
            expires,
            prev: NIL,
            next: NIL,
        });
        self.index.insert(key, i);
        self.push_front(i);
    }

    /// Removes `key`, returning its value (fresh or not).
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let i = *self.index.get(key)?;
        Some(self.remove_at(i))
    }

    /// Keys from most to least recently used (tests, debugging).
    pub fn keys(&self) -> Vec<&K> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut i = self.head;
        while i != NIL {
            out.push(&self.nodes[i].key);
            i = self.nodes[i].next;
        }
        out
    }

    /// Takes node `i` out of the recency list (it stays in `nodes`).
    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.nodes[i].prev, self.nodes[i].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next].prev = prev;
        }
        self.nodes[i].prev = NIL;
        self.nodes[i].next = NIL;
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].prev = NIL;
        self.nodes[i].next = self.head;
        if self.head != NIL {
            self.nodes[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Removes node `i` for good: unlinks it, then fills its slot with the
    /// last node and points that node's neighbours and index entry at `i`.
    fn remove_at(&mut self, i: usize) -> V {
        self.unlink(i);
        let last = self.nodes.len() - 1;
        if i != last {
            let (prev, next) = (self.nodes[last].prev, self.nodes[last].next);
            if prev == NIL {
                self.head = i;
            } else {
                self.nodes[prev].next = i;
            }
            if next == NIL {
                self.tail = i;
            } else {
                self.nodes[next].prev = i;
            }
            if let Some(slot) = self.index.get_mut(&self.nodes[last].key) {
                *slot = i;
            }
        }
        let node = self.nodes.swap_remove(i);
        self.index.remove(&node.key);
        node.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    /// The list and the index agree, both ways, and the list is well formed.
    fn check<K: Hash + Eq + Clone + std::fmt::Debug, V>(c: &Lru<K, V>) {
        let keys = c.keys();
        assert_eq!(keys.len(), c.len());
        assert_eq!(c.index.len(), c.len());
        assert!(c.len() <= c.capacity);
        for (pos, k) in keys.iter().enumerate() {
            let i = c.index[*k];
            assert_eq!(&&c.nodes[i].key, k);
            let prev = c.nodes[i].prev;
            if pos == 0 {
                assert_eq!(prev, NIL);
                assert_eq!(c.head, i);
            } else {
                assert_eq!(&c.nodes[prev].key, keys[pos - 1]);
            }
        }
        if let Some(last) = keys.last() {
            assert_eq!(c.tail, c.index[*last]);
        } else {
            assert_eq!((c.head, c.tail), (NIL, NIL));
        }
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let t0 = Instant::now();
        let mut c = Lru::new(3, TTL);
        for k in ["a", "b", "c"] {
            c.insert(k, k.to_uppercase(), t0);
        }
        assert_eq!(c.keys(), [&"c", &"b", &"a"]);
        c.insert("d", "D".into(), t0);
        assert_eq!(c.keys(), [&"d", &"c", &"b"]);
        assert!(c.get(&"a", t0).is_none());
        check(&c);
    }

    #[test]
    fn get_and_reinsert_make_an_entry_most_recent() {
        let t0 = Instant::now();
        let mut c = Lru::new(3, TTL);
        for k in ["a", "b", "c"] {
            c.insert(k, 0, t0);
        }
        assert_eq!(c.get(&"a", t0), Some(&0));
        c.insert("d", 0, t0);
        // "b" was the least recently used once "a" was read.
        assert_eq!(c.keys(), [&"d", &"a", &"c"]);
        c.insert("c", 7, t0);
        assert_eq!(c.keys(), [&"c", &"d", &"a"]);
        assert_eq!(c.get(&"c", t0), Some(&7));
        assert_eq!(c.len(), 3);
        check(&c);
    }

    #[test]
    fn entries_expire_after_the_ttl_and_are_removed() {
        let t0 = Instant::now();
        let mut c = Lru::new(10, TTL);
        c.insert("a", 1, t0);
        c.insert("b", 2, at(t0, 30));
        assert_eq!(c.get(&"a", at(t0, 59)), Some(&1));
        // Reading does not extend the life of an entry; storing again does.
        assert_eq!(c.get(&"a", at(t0, 60)), None);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(&"b", at(t0, 89)), Some(&2));
        c.insert("b", 3, at(t0, 89));
        assert_eq!(c.get(&"b", at(t0, 148)), Some(&3));
        assert_eq!(c.get(&"b", at(t0, 149)), None);
        assert!(c.is_empty());
        check(&c);
    }

    #[test]
    fn capacity_one_keeps_the_last_entry() {
        let t0 = Instant::now();
        let mut c = Lru::new(1, TTL);
        c.insert(1, "one", t0);
        c.insert(2, "two", t0);
        assert_eq!(c.get(&1, t0), None);
        assert_eq!(c.get(&2, t0), Some(&"two"));
        c.insert(2, "deux", t0);
        assert_eq!(c.get(&2, t0), Some(&"deux"));
        assert_eq!(c.len(), 1);
        check(&c);
        // Zero is taken as one: a cache that can hold nothing is a bug magnet.
        let mut z = Lru::new(0, TTL);
        z.insert(1, (), t0);
        assert_eq!(z.len(), 1);
    }

    #[test]
    fn remove_repairs_the_list_wherever_the_entry_is() {
        let t0 = Instant::now();
        for victim in 0..5 {
            let mut c = Lru::new(5, TTL);
            for k in 0..5 {
                c.insert(k, k * 10, t0);
            }
            assert_eq!(c.remove(&victim), Some(victim * 10));
            assert_eq!(c.remove(&victim), None);
            check(&c);
            let expect: Vec<i32> = (0..5).rev().filter(|k| *k != victim).collect();
            assert_eq!(c.keys().into_iter().copied().collect::<Vec<_>>(), expect);
        }
    }

    #[test]
    fn an_enormous_ttl_never_expires() {
        let t0 = Instant::now();
        let mut c = Lru::new(2, Duration::MAX);
        c.insert("a", 1, t0);
        assert_eq!(c.get(&"a", at(t0, 1_000_000_000)), Some(&1));
    }

    /// Random operations against a simple model (a Vec in recency order).
    #[test]
    fn churn_matches_a_model() {
        let t0 = Instant::now();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let cap = 8;
        let mut c: Lru<u64, u64> = Lru::new(cap, Duration::from_secs(50));
        // (key, value, stored at), most recent first.
        let mut model: Vec<(u64, u64, u64)> = Vec::new();
        let mut now = 0;
        for step in 0..20_000 {
            now += rand(3);
            let t = at(t0, now);
            let k = rand(20);
            match rand(3) {
                0 | 1 => {
                    model.retain(|e| e.0 != k);
                    if model.len() == cap {
                        model.pop();
                    }
                    model.insert(0, (k, step, now));
                    c.insert(k, step, t);
                }
                _ => {
                    let want = match model.iter().position(|e| e.0 == k) {
                        Some(p) if now >= model[p].2 + 50 => {
                            model.remove(p);
                            None
                        }
                        Some(p) => {
                            let e = model.remove(p);
                            model.insert(0, e);
                            Some(e.1)
                        }
                        None => None,
                    };
                    assert_eq!(c.get(&k, t).copied(), want, "step {step}");
                }
            }
            let keys: Vec<u64> = c.keys().into_iter().copied().collect();
            let mkeys: Vec<u64> = model.iter().map(|e| e.0).collect();
            assert_eq!(keys, mkeys, "step {step}");
        }
        check(&c);
    }
}
