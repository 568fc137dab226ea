/*!
Shared helpers for the integration tests: the fake API server (`fake_api`), kubelet-shaped
pod JSON (`pod(ns, name)` → `PodBuilder`, defined next to the fake in `fake_api::pods` so
the `fake_apiserver` example gets it from that one file), a self-removing temp dir, a
polling `wait_until`, and an exec credential plugin script.
*/
#![allow(dead_code)]

pub mod daemon;
pub mod fake_api;
pub mod fake_backend;
pub mod fake_llm;
pub mod fake_receiver;
pub mod fake_slack;
pub mod items;
pub mod real_api;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // not every test binary build uses both
pub use self::fake_api::pods::{PodBuilder, pod};
use self::fake_api::rand_u64;

// ---------------------------------------------------------------------------------------------
// Temp dir, polling, exec plugin
// ---------------------------------------------------------------------------------------------

/// A fresh directory under `std::env::temp_dir()`, removed (recursively) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{:08x}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            rand_u64() as u32
        ));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Poll `f` every 20 ms until it returns true (→ true) or `timeout` passes (→ false).
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Write an executable `/bin/sh` exec credential plugin into `dir` that prints a
/// client.authentication.k8s.io/v1 ExecCredential whose token is the content of `token_file`
/// (read at every call, so tests can rotate it). Returns the script path.
pub fn write_exec_plugin(dir: &Path, token_file: &Path) -> PathBuf {
    let script = dir.join("exec-credential.sh");
    let body = format!(
        "#!/bin/sh\n# Test exec credential plugin: prints the token in {tf}.\ntoken=$(cat '{tf}') || exit 1\n\
         printf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"%s\"}}}}\\n' \"$token\"\n",
        tf = token_file.display()
    );
    std::fs::write(&script, body).unwrap_or_else(|e| panic!("write {}: {e}", script.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755));
    }
    script
}
