/*!
The record's writer thread: incident records reach stdout through a bounded
buffer, so a stdout that stops draining (a stalled node log pipeline,
`opsctrl-daemon run | sleep 120`) costs records, never detection. The
classification thread only ever `try_send`s: when the buffer is full the
record is dropped, counted in `opsctrl_records_dropped_total`, and warned
about at most once a minute.

The writer writes to its own copy of descriptor 1, without std's stdout lock
or buffer, so a writer stuck in `write(2)` holds nothing anyone else needs,
not even the exit.
*/

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// Records waiting for the writer (each a few hundred bytes).
pub const CAPACITY: usize = 256;
const WARN_EVERY: Duration = Duration::from_secs(60);

pub struct Printer {
    /// `None` once the writer has stopped (stdout closed or failing).
    tx: Option<SyncSender<Vec<u8>>>,
    /// The writer's "all written" signal, for `finish`.
    done: Receiver<()>,
    capacity: usize,
    metrics: Arc<Metrics>,
    last_warn: Option<Instant>,
    /// Dropped since the last warning.
    unwarned: u64,
}

impl Printer {
    /// A writer thread on a copy of stdout.
    pub fn stdout(metrics: Arc<Metrics>) -> io::Result<Printer> {
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        Printer::start(File::from(fd), CAPACITY, metrics)
    }

    /// A writer thread on `out`, `capacity` records deep.
    pub fn start(
        out: impl Write + Send + 'static,
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> io::Result<Printer> {
        let (tx, rx) = sync_channel::<Vec<u8>>(capacity.max(1));
        let (done_tx, done) = sync_channel::<()>(1);
        thread::Builder::new()
            .name("stdout".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                writer(rx, out);
                let _ = done_tx.send(());
            })?;
        Ok(Printer {
            tx: Some(tx),
            done,
            capacity: capacity.max(1),
            metrics,
            last_warn: None,
            unwarned: 0,
        })
    }

    /// Hands one rendered record to the writer; never blocks.
    pub fn print(&mut self, record: Vec<u8>) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.metrics
                    .counters
                    .records_dropped
                    .fetch_add(1, Ordering::Relaxed);
                self.unwarned += 1;
                if self.last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    log::warn!(
                        "stdout is not draining: {} incident record(s) dropped (buffer of {} full, opsctrl_records_dropped_total); detection and alerts go on",
                        self.unwarned,
                        self.capacity
                    );
                    self.last_warn = Some(Instant::now());
                    self.unwarned = 0;
                }
            }
            // The writer stopped and said why.
            Err(TrySendError::Disconnected(_)) => self.tx = None,
        }
    }

    /// Lets the writer write what is buffered for at most `within`; true
    /// when everything was written.
    pub fn finish(mut self, within: Duration) -> bool {
        self.tx = None;
        self.done.recv_timeout(within).is_ok()
    }
}

fn writer(rx: Receiver<Vec<u8>>, mut out: impl Write) {
    for record in rx {
        if let Err(e) = out.write_all(&record).and_then(|()| out.flush()) {
            log::error!("cannot write incidents to stdout: {e}; further incidents are only logged");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};

    /// A stdout nobody reads: the first write blocks until released.
    struct Stalled(Arc<(Mutex<bool>, Condvar)>, Arc<Mutex<Vec<u8>>>);
    impl Write for Stalled {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let (lock, cv) = &*self.0;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.1.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_stdout_drops_records_and_never_blocks() {
        let m = Arc::new(Metrics::new(&[], 5));
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let got = Arc::new(Mutex::new(Vec::new()));
        let mut p = Printer::start(Stalled(gate.clone(), got.clone()), 4, m.clone()).unwrap();
        let t = Instant::now();
        for i in 0..1000 {
            p.print(format!("record {i}\n").into_bytes());
        }
        assert!(t.elapsed() < Duration::from_secs(5), "print never waits");
        // 4 buffered, at most one in the writer's hands.
        let dropped = m.counters.records_dropped.load(Ordering::Relaxed);
        assert!((995..=996).contains(&dropped), "{dropped}");
        // Unstalled, what was buffered comes out, in order.
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        assert!(p.finish(Duration::from_secs(5)));
        let text = String::from_utf8(got.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with("record 0\n"), "{text}");
        assert_eq!(text.lines().count() as u64, 1000 - dropped);
    }

    #[test]
    fn a_closed_stdout_stops_the_writer_quietly() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let m = Arc::new(Metrics::new(&[], 5));
        let mut p = Printer::start(Closed, 4, m.clone()).unwrap();
        for _ in 0..100 {
            p.print(b"x\n".to_vec());
            thread::sleep(Duration::from_millis(1));
        }
        assert!(p.finish(Duration::from_secs(5)));
    }
}
