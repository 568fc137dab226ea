/*!
Mutex access without the poisoning `Result`.

A lock is poisoned only when a thread panics while holding it. The release
build aborts on any panic (`panic = "abort"` in Cargo.toml), so the daemon
never observes a poisoned lock; in unwinding builds (tests) the panicking
thread has already failed its test. Failing a second thread helps nobody, so
the guarded data is used as it is. Every value the daemon guards is updated
by plain assignments or single map/queue operations, never left half-built
across a call that could panic.
*/

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// `m.lock()`, ignoring poisoning (see the module doc).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `cv.wait_timeout(guard, d)`, ignoring poisoning; whether it timed out is
/// for the caller to tell from the state and the clock.
pub fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    d: Duration,
) -> MutexGuard<'a, T> {
    match cv.wait_timeout(guard, d) {
        Ok((g, _)) => g,
        Err(poisoned) => poisoned.into_inner().0,
    }
}

/// `cv.wait_timeout_while(guard, d, condition)`, ignoring poisoning.
pub fn wait_timeout_while<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    d: Duration,
    condition: impl FnMut(&mut T) -> bool,
) -> MutexGuard<'a, T> {
    match cv.wait_timeout_while(guard, d, condition) {
        Ok((g, _)) => g,
        Err(poisoned) => poisoned.into_inner().0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_poisoned_lock_still_gives_its_data() {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 2);
        let cv = Condvar::new();
        let g = wait_timeout(&cv, lock(&m), Duration::from_millis(1));
        assert_eq!(*g, 2);
        drop(g);
        let g = wait_timeout_while(&cv, lock(&m), Duration::from_millis(1), |v| *v == 2);
        assert_eq!(*g, 2);
    }
}
