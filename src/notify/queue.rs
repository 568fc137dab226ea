/*!
The delivery queue, without threads: bounded, ordered per incident, and
honest about what it drops.

- A job is *ready* when none of its incidents is being delivered and no
  older queued job shares one of them, so the messages of one incident go
  out one at a time and in order, while different incidents go in parallel.
- When full, the oldest job of the lowest severity makes room (a new job
  of lower severity than everything queued is itself the one refused);
  the caller logs and counts it.

Pure: the pool (`pool.rs`) wraps it in a mutex and a condvar.
*/

use std::collections::{HashSet, VecDeque};

use crate::model::Severity;

/// What the queue needs to know of a job.
pub trait Keyed {
    /// The incidents it is about (a grouped alert has several).
    fn keys(&self) -> Vec<u64>;
    fn severity(&self) -> Severity;
}

pub struct Queue<J> {
    jobs: VecDeque<J>,
    capacity: usize,
    /// Incidents a worker is delivering now.
    busy: HashSet<u64>,
}

impl<J: Keyed> Queue<J> {
    pub fn new(capacity: usize) -> Queue<J> {
        Queue {
            jobs: VecDeque::new(),
            capacity: capacity.max(1),
            busy: HashSet::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Incidents being delivered now.
    pub fn in_flight(&self) -> usize {
        self.busy.len()
    }

    /// Queues a job; when full, returns the job dropped to make room (which
    /// may be `job` itself).
    pub fn push(&mut self, job: J) -> Option<J> {
        if self.jobs.len() < self.capacity {
            self.jobs.push_back(job);
            return None;
        }
        let lowest = self.jobs.iter().map(Keyed::severity).min()?;
        if job.severity() < lowest {
            return Some(job);
        }
        let i = self.jobs.iter().position(|j| j.severity() == lowest)?;
        let dropped = self.jobs.remove(i);
        self.jobs.push_back(job);
        dropped
    }

    /// The oldest ready job, its incidents marked busy until `done`.
    pub fn pop_ready(&mut self) -> Option<J> {
        let mut blocked: HashSet<u64> = HashSet::new();
        let mut found = None;
        for (i, job) in self.jobs.iter().enumerate() {
            let keys = job.keys();
            if keys
                .iter()
                .all(|k| !self.busy.contains(k) && !blocked.contains(k))
            {
                found = Some(i);
                break;
            }
            blocked.extend(keys);
        }
        let job = self.jobs.remove(found?)?;
        self.busy.extend(job.keys());
        Some(job)
    }

    /// A worker finished `job`'s incidents.
    pub fn done(&mut self, keys: &[u64]) {
        for k in keys {
            self.busy.remove(k);
        }
    }

    /// Everything still queued (for the shutdown report).
    pub fn take_all(&mut self) -> Vec<J> {
        self.jobs.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct J(Vec<u64>, Severity, &'static str);
    impl Keyed for J {
        fn keys(&self) -> Vec<u64> {
            self.0.clone()
        }
        fn severity(&self) -> Severity {
            self.1
        }
    }
    use Severity::*;

    #[test]
    fn one_incident_at_a_time_in_order_others_in_parallel() {
        let mut q = Queue::new(10);
        q.push(J(vec![1], High, "1a"));
        q.push(J(vec![1], High, "1b"));
        q.push(J(vec![2], High, "2a"));
        let a = q.pop_ready().unwrap();
        assert_eq!(a.2, "1a");
        // 1b waits for 1a; 2a may go.
        let b = q.pop_ready().unwrap();
        assert_eq!(b.2, "2a");
        assert!(q.pop_ready().is_none());
        q.done(&a.0);
        assert_eq!(q.pop_ready().unwrap().2, "1b");
    }

    #[test]
    fn a_grouped_alert_waits_for_each_of_its_incidents_and_blocks_later_ones() {
        let mut q = Queue::new(10);
        q.push(J(vec![1], High, "1"));
        let first = q.pop_ready().unwrap();
        q.push(J(vec![1, 2], High, "group"));
        q.push(J(vec![2], High, "2 after group"));
        q.push(J(vec![3], High, "3"));
        // The group waits for 1; 2's update must not overtake the group.
        assert_eq!(q.pop_ready().unwrap().2, "3");
        assert!(q.pop_ready().is_none());
        q.done(&first.0);
        assert_eq!(q.pop_ready().unwrap().2, "group");
    }

    #[test]
    fn full_queue_drops_the_oldest_of_the_lowest_severity() {
        let mut q = Queue::new(3);
        q.push(J(vec![1], High, "h1"));
        q.push(J(vec![2], Medium, "m1"));
        q.push(J(vec![3], Medium, "m2"));
        assert_eq!(q.push(J(vec![4], Critical, "c")).unwrap().2, "m1");
        assert_eq!(q.len(), 3);
        // Lower than everything queued: the newcomer itself is refused.
        assert_eq!(q.push(J(vec![5], Low, "l")).unwrap().2, "l");
        let order: Vec<&str> = q.take_all().iter().map(|j| j.2).collect();
        assert_eq!(order, ["h1", "m2", "c"]);
    }
}
