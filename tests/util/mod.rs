/*!
Shared helpers for the integration tests: the one HTTP server under every fake (`http`), the
fake API server (`fake_api`) and the fake receivers (`fake_slack`, `fake_receiver`, `fake_llm`,
`fake_backend`), the driver of the real binary (`daemon`), kubelet-shaped pod JSON
(`pod(ns, name)` → `PodBuilder`, in `fake_api::pods` so the `fake_apiserver` example gets it
with the fake), a self-removing temp dir, a polling `wait_until`, and an exec credential
plugin script.
*/

pub mod daemon;
pub mod fake_api;
pub mod fake_backend;
pub mod fake_llm;
pub mod fake_receiver;
pub mod fake_services;
pub mod fake_slack;
pub mod http;
pub mod items;
pub mod real_api;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use self::fake_api::FakeApi;
pub use self::fake_api::pods::pod;
use self::fake_api::rand_u64;

/// The pod (of Deployment `marker`) a test stages after what must NOT be reported.
pub const MARKER: &str = "marker-6f7d8c9b5-zzzzz";

/// Stage an unrelated failure, `MARKER` crash-looping in `ns`, as the positive signal a test
/// waits for before it asserts that something was not reported: the daemon handles events in
/// order, so once the marker's report is out, anything the earlier events wrongly caused is
/// out too (on stdout and in the log exactly; through a sink, queued before it), and a late
/// wrong output is caught instead of slipping in after the assertions.
pub fn stage_marker(api: &FakeApi, ns: &str) {
    api.upsert_pod(pod(ns, MARKER).crash_loop(3, 1, "Error").build());
}

/// Whether a JSON incident record or a log line is about the marker's workload.
pub fn is_marker(record: &serde_json::Value) -> bool {
    record["workload"]["name"] == "marker"
}

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
