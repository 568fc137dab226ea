/*!
The original daemon's three state files, same names and schemas
(the original wrote them as plain JSON, mode 0644, in `~/.opsctrl`), kept in `OPSCTRL_STATE_DIR` (default `~/.opsctrl`):

| file | schema |
|---|---|
| `cluster.json` | `{cluster_id, cluster_name, user_email, registered_at, is_claimed, org_id?, cluster_foreign_id}` |
| `pending.json` | `{cluster_id, cluster_name, user_email, registration_url, requires_browser_confirmation, created_at}` |
| `tokens.json`  | `{accessToken, refreshToken, expiresIn, expiresAt, clusterId, orgId?}` |

Unlike the original (plain `writeFileSync`, mode 0644), every write goes to
a temporary file in the same directory created with mode 0600, is fsynced
and then renamed over the target, so a crash never leaves a half-written
file and the refresh token is never readable by other users. The directory
is created with mode 0700.

Files written by the original daemon load too: ids may be JSON numbers, and
optional fields may be missing.
*/

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub const CLUSTER: &str = "cluster.json";
pub const PENDING: &str = "pending.json";
pub const TOKENS: &str = "tokens.json";

/// Largest state file read: they are a few hundred bytes; anything bigger is not ours.
const MAX_FILE: u64 = 64 * 1024;

/// `cluster.json`: a registration the backend confirmed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// `clu_<kube-system UID>`, the backend's `externalRefId`.
    pub cluster_id: String,
    #[serde(default)]
    pub cluster_name: String,
    #[serde(default)]
    pub user_email: String,
    /// ISO 8601.
    #[serde(default)]
    pub registered_at: String,
    #[serde(default)]
    pub is_claimed: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_id"
    )]
    pub org_id: Option<String>,
    /// The backend's own id for the cluster (its primary key). Required:
    /// without it no token can be fetched, so such a file is not usable.
    #[serde(deserialize_with = "lenient_id")]
    pub cluster_foreign_id: String,
}

/// `pending.json`: registered, waiting for the user to claim the cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingFile {
    pub cluster_id: String,
    #[serde(default)]
    pub cluster_name: String,
    #[serde(default)]
    pub user_email: String,
    /// The claim URL (the original wrote only `<FRONTEND>/` here).
    #[serde(default)]
    pub registration_url: String,
    /// Always false, as in the original.
    #[serde(default)]
    pub requires_browser_confirmation: bool,
    #[serde(default)]
    pub created_at: String,
}

/// `tokens.json`. Plain strings for serde; in memory the tokens live in
/// `tokens::Tokens` as `Secret`s. `Debug` is written by hand so they never
/// reach a log line.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokensFile {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds.
    pub expires_in: u64,
    /// Unix milliseconds (`now + expiresIn * 1000` when issued).
    pub expires_at: i64,
    /// The cluster id the tokens were issued for. This daemon writes the
    /// backend id (`cluster_foreign_id`); the original wrote `clu_…`.
    #[serde(deserialize_with = "lenient_id")]
    pub cluster_id: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_id"
    )]
    pub org_id: Option<String>,
}

impl fmt::Debug for TokensFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokensFile")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("expires_at", &self.expires_at)
            .field("cluster_id", &self.cluster_id)
            .field("org_id", &self.org_id)
            .finish()
    }
}

/// An id the backend may have sent as a string or a number.
pub fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn lenient_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    id_string(&v).ok_or_else(|| serde::de::Error::custom("expected a non-empty id"))
}

fn lenient_opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(id_string(&Value::deserialize(d)?))
}

/// The state directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Reads and decodes one file. `Ok(None)` when it does not exist;
    /// `Err` (with the reason) when it exists but is unreadable or not the
    /// expected schema, so the caller can say so and start afresh.
    pub fn load<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, String> {
        let path = self.path(name);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        if meta.len() > MAX_FILE {
            return Err(format!(
                "{}: {} bytes, more than a state file can be",
                path.display(),
                meta.len()
            ));
        }
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        // serde_json's message names the field and position, never the values.
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes one file atomically with mode 0600 (see the module doc).
    pub fn save<T: Serialize>(&self, name: &str, value: &T) -> io::Result<()> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let tmp = self.dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            // The umask can only remove bits from 0600, but say it outright.
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            f.write_all(&bytes)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            fs::rename(&tmp, self.path(name))
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        // Make the rename itself durable; not every filesystem allows
        // syncing a directory, and the file is complete either way.
        if let Ok(d) = fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Removes one file; a missing file is not an error.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.path(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn temp_dir(tag: &str) -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        std::env::temp_dir().join(format!(
            "opsctrl-state-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn cluster() -> ClusterFile {
        ClusterFile {
            cluster_id: "clu_abc".into(),
            cluster_name: "edge".into(),
            user_email: "ops@example.com".into(),
            registered_at: "2026-01-01T00:00:00.000Z".into(),
            is_claimed: true,
            org_id: Some("org-1".into()),
            cluster_foreign_id: "c-42".into(),
        }
    }

    #[test]
    fn writes_atomically_with_private_modes_and_reads_back() {
        let base = temp_dir("rw");
        let dir = base.join("nested");
        let store = Store::new(&dir);
        assert_eq!(store.load::<ClusterFile>(CLUSTER), Ok(None));
        store.save(CLUSTER, &cluster()).unwrap();
        assert_eq!(store.load::<ClusterFile>(CLUSTER), Ok(Some(cluster())));
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&store.path(CLUSTER)), 0o600);
        assert_eq!(mode(&dir), 0o700);
        // Overwrite: still 0600, and no temporary file left behind.
        let mut c = cluster();
        c.cluster_name = "edge-2".into();
        store.save(CLUSTER, &c).unwrap();
        assert_eq!(store.load::<ClusterFile>(CLUSTER), Ok(Some(c)));
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![CLUSTER.to_string()]);
        store.remove(CLUSTER).unwrap();
        store.remove(CLUSTER).unwrap();
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn keeps_the_original_field_names() {
        let v = serde_json::to_value(cluster()).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "cluster_foreign_id",
                "cluster_id",
                "cluster_name",
                "is_claimed",
                "org_id",
                "registered_at",
                "user_email"
            ]
        );
        let t = TokensFile {
            access_token: "a".into(),
            refresh_token: "r".into(),
            expires_in: 3600,
            expires_at: 1,
            cluster_id: "c-42".into(),
            org_id: None,
        };
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"accessToken": "a", "refreshToken": "r", "expiresIn": 3600,
                               "expiresAt": 1, "clusterId": "c-42"})
        );
        assert!(!format!("{t:?}").contains("\"a\""));
    }

    #[test]
    fn reads_files_the_original_wrote_and_rejects_broken_ones() {
        let dir = temp_dir("orig");
        let store = Store::new(&dir);
        fs::create_dir_all(&dir).unwrap();
        // Numeric ids, no org_id.
        fs::write(
            store.path(CLUSTER),
            r#"{"cluster_id":"clu_x","cluster_name":"n","user_email":"e@x.io",
               "registered_at":"2025-01-01T00:00:00.000Z","is_claimed":true,"cluster_foreign_id":17}"#,
        )
        .unwrap();
        let c: ClusterFile = store.load(CLUSTER).unwrap().unwrap();
        assert_eq!((c.cluster_foreign_id.as_str(), c.org_id), ("17", None));
        // The original leaves cluster_foreign_id out when the backend sent no id.
        fs::write(store.path(CLUSTER), r#"{"cluster_id":"clu_x"}"#).unwrap();
        assert!(store.load::<ClusterFile>(CLUSTER).is_err());
        fs::write(store.path(PENDING), "{not json").unwrap();
        assert!(store.load::<PendingFile>(PENDING).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
