/*!
SIGTERM and SIGINT: set a shared flag that every loop checks, and wake the
classification thread (through `wake`) so it stops at once instead of at
its next tick. Reader threads blocked in a socket read are not waited for:
the process exits around them, so a stuck read cannot hold up shutdown.
*/

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Installs the handlers; returns the flag they set.
pub fn install(wake: impl Fn() + Send + 'static) -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    let f = flag.clone();
    thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
                log::info!("{name} received: shutting down");
                f.store(true, Ordering::SeqCst);
                wake();
            }
        })?;
    Ok(flag)
}
