/*!
SIGTERM, SIGINT and SIGHUP: set a shared flag that every loop checks, and
wake the classification thread (through `wake`) so it stops at once instead
of at its next tick. SIGHUP is a stop too (a closed terminal or a supervisor
that sends it must not kill the daemon without its drain and a log line).

The exit never depends on a thread that may be stuck (a reader in a socket
read, a sink that hangs, a stdout nobody drains): a backstop exits the
process once `limit` has passed since the first signal; a second signal
cuts the delivery drain short (`cut`) and leaves `CUT_LIMIT` to finish.
*/

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// After a second signal: time left to log what was not delivered and exit.
pub const CUT_LIMIT: Duration = Duration::from_secs(2);

fn name(sig: i32) -> &'static str {
    match sig {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        _ => "SIGHUP",
    }
}

/// Exits the process `after` from now, whatever the other threads do.
fn backstop(after: Duration) {
    let _ = thread::Builder::new()
        .name("shutdown-backstop".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            thread::sleep(after);
            log::error!(
                "shutdown not finished {} ms after the signal: exiting now",
                after.as_millis()
            );
            std::process::exit(0);
        });
}

/// Installs the handlers; returns the flag they set. `limit` bounds the
/// whole shutdown from the first signal.
pub fn install(
    wake: impl Fn() + Send + 'static,
    cut: impl Fn() + Send + 'static,
    limit: Duration,
) -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    let f = flag.clone();
    thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut received = signals.forever();
            let Some(sig) = received.next() else { return };
            log::info!(
                "{} received: shutting down (at most {} ms; a second signal cuts the delivery drain short)",
                name(sig),
                limit.as_millis()
            );
            f.store(true, Ordering::SeqCst);
            wake();
            backstop(limit);
            if let Some(sig) = received.next() {
                log::warn!(
                    "{} received during shutdown: cutting the delivery drain short",
                    name(sig)
                );
                cut();
                backstop(CUT_LIMIT);
            }
        })?;
    Ok(flag)
}
