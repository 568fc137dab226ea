/*!
The registration state machine's decisions (the original's: reuse
`cluster.json` when its id matches, else follow up `pending.json`, else
register), as pure
functions of the saved files, the current cluster id and the backend's
answers. The background thread in `mod.rs` does the I/O and the waiting.

```text
            saved cluster.json ──same id──▶ Registered ──▶ tokens
                    │ other id: delete cluster.json + tokens.json
                    ▼
 saved pending.json (same id) ──▶ Pending ──claimed by USER_EMAIL──▶ Registered
                    │ none / other id                │ 404: forgotten
                    ▼                                ▼
                Register ──isClaimed:false──▶ Pending
                    └──────isClaimed true or absent──▶ Registered
```

Differences from the original, on purpose:
- a pending.json for another cluster id is discarded rather than polled
  forever;
- a claim check answering 404 (the backend forgot the cluster) registers
  again instead of staying pending forever;
- a registration answer without an `id` is an error to retry, not a
  cluster.json with no backend id (which made tokens unobtainable);
- `USER_EMAIL` is compared case-insensitively (email domains are);
- pending.json's `registration_url` holds the claim URL itself.
*/

use super::api::ClusterRecord;
use super::state::{ClusterFile, PendingFile};

/// Who this daemon registers as.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// `clu_<kube-system UID>`.
    pub cluster_id: String,
    pub cluster_name: String,
    pub user_email: String,
    pub frontend_url: String,
}

impl Identity {
    pub fn claim_url(&self) -> String {
        claim_url(&self.frontend_url, &self.cluster_id)
    }
}

/// `<FRONTEND>/claim?cluster=<clu_id>`, as the original logs it.
pub fn claim_url(frontend_url: &str, cluster_id: &str) -> String {
    format!(
        "{}/claim?cluster={}",
        frontend_url.trim_end_matches('/'),
        super::api::encode(cluster_id)
    )
}

/// Where to begin, from what is saved.
#[derive(Clone, Debug, PartialEq)]
pub enum Start {
    /// cluster.json is this cluster's: registered; go on to the tokens.
    Registered(ClusterFile),
    /// cluster.json names another cluster (a rebuilt cluster, a state
    /// volume moved): delete it and tokens.json, then register.
    ClusterMismatch { saved: String },
    /// pending.json is this cluster's: check the claim.
    Pending(PendingFile),
    /// pending.json names another cluster: delete it, then register.
    PendingMismatch { saved: String },
    /// Nothing saved: register.
    Register,
}

pub fn start(
    cluster: Option<ClusterFile>,
    pending: Option<PendingFile>,
    cluster_id: &str,
) -> Start {
    match (cluster, pending) {
        (Some(c), _) if c.cluster_id == cluster_id => Start::Registered(c),
        (Some(c), _) => Start::ClusterMismatch {
            saved: c.cluster_id,
        },
        (None, Some(p)) if p.cluster_id == cluster_id => Start::Pending(p),
        (None, Some(p)) => Start::PendingMismatch {
            saved: p.cluster_id,
        },
        (None, None) => Start::Register,
    }
}

/// What `POST /clusters` led to.
#[derive(Clone, Debug, PartialEq)]
pub enum Registered {
    /// Claimed already (or `isClaimed` absent, as the original reads it).
    Claimed(ClusterFile),
    /// Waiting for the user to claim it at the claim URL.
    Pending(PendingFile),
}

pub fn after_register(
    rec: &ClusterRecord,
    me: &Identity,
    now_iso: &str,
) -> Result<Registered, String> {
    if rec.is_claimed == Some(false) {
        return Ok(Registered::Pending(PendingFile {
            cluster_id: me.cluster_id.clone(),
            cluster_name: me.cluster_name.clone(),
            user_email: me.user_email.clone(),
            registration_url: me.claim_url(),
            requires_browser_confirmation: false,
            created_at: now_iso.to_string(),
        }));
    }
    cluster_file(rec, me, now_iso).map(Registered::Claimed)
}

/// What a claim check (`GET /clusters/{id}`) said.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// Claimed by `USER_EMAIL`: registered.
    Confirmed(ClusterFile),
    /// Not claimed yet.
    Waiting,
    /// Claimed, but by another account than `USER_EMAIL` (named here):
    /// the original stays pending, and so does this daemon, loudly.
    OtherAccount(String),
}

pub fn after_check(rec: &ClusterRecord, me: &Identity, now_iso: &str) -> Result<Claim, String> {
    let email = rec.user_email.as_deref().unwrap_or("");
    let same = email.trim().eq_ignore_ascii_case(me.user_email.trim());
    match rec.is_claimed {
        Some(true) if same => cluster_file(rec, me, now_iso).map(Claim::Confirmed),
        Some(true) => Ok(Claim::OtherAccount(email.to_string())),
        _ => Ok(Claim::Waiting),
    }
}

fn cluster_file(rec: &ClusterRecord, me: &Identity, now_iso: &str) -> Result<ClusterFile, String> {
    let id = rec
        .id
        .clone()
        .ok_or("the backend's answer has no cluster id")?;
    Ok(ClusterFile {
        cluster_id: me.cluster_id.clone(),
        cluster_name: me.cluster_name.clone(),
        user_email: me.user_email.clone(),
        registered_at: now_iso.to_string(),
        is_claimed: true,
        org_id: rec.org_id.clone(),
        cluster_foreign_id: id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00.000Z";

    fn me() -> Identity {
        Identity {
            cluster_id: "clu_1".into(),
            cluster_name: "edge".into(),
            user_email: "Ops@Example.com".into(),
            frontend_url: "https://app.opsctrl.dev/".into(),
        }
    }

    fn rec(claimed: Option<bool>, email: &str) -> ClusterRecord {
        ClusterRecord {
            id: Some("c-9".into()),
            org_id: Some("org".into()),
            is_claimed: claimed,
            user_email: Some(email.into()),
        }
    }

    fn cluster(id: &str) -> ClusterFile {
        match after_register(&rec(Some(true), "x"), &me(), NOW).unwrap() {
            Registered::Claimed(mut c) => {
                c.cluster_id = id.into();
                c
            }
            other => panic!("{other:?}"),
        }
    }

    fn pending(id: &str) -> PendingFile {
        match after_register(&rec(Some(false), "x"), &me(), NOW).unwrap() {
            Registered::Pending(mut p) => {
                p.cluster_id = id.into();
                p
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn starts_from_what_is_saved() {
        assert_eq!(start(None, None, "clu_1"), Start::Register);
        let c = cluster("clu_1");
        assert_eq!(
            start(Some(c.clone()), Some(pending("clu_1")), "clu_1"),
            Start::Registered(c)
        );
        assert_eq!(
            start(Some(cluster("clu_old")), None, "clu_1"),
            Start::ClusterMismatch {
                saved: "clu_old".into()
            }
        );
        let p = pending("clu_1");
        assert_eq!(start(None, Some(p.clone()), "clu_1"), Start::Pending(p));
        assert_eq!(
            start(None, Some(pending("clu_old")), "clu_1"),
            Start::PendingMismatch {
                saved: "clu_old".into()
            }
        );
    }

    #[test]
    fn registration_answers() {
        let Ok(Registered::Pending(p)) = after_register(&rec(Some(false), ""), &me(), NOW) else {
            panic!()
        };
        assert_eq!(
            p.registration_url,
            "https://app.opsctrl.dev/claim?cluster=clu_1"
        );
        assert!(!p.requires_browser_confirmation);
        assert_eq!(p.created_at, NOW);
        // Claimed, or isClaimed absent (the original's `else` branch).
        for claimed in [Some(true), None] {
            let Ok(Registered::Claimed(c)) = after_register(&rec(claimed, ""), &me(), NOW) else {
                panic!()
            };
            assert_eq!(
                (c.cluster_id.as_str(), c.cluster_foreign_id.as_str()),
                ("clu_1", "c-9")
            );
            assert_eq!((c.org_id.as_deref(), c.is_claimed), (Some("org"), true));
        }
        let mut no_id = rec(Some(true), "");
        no_id.id = None;
        assert!(after_register(&no_id, &me(), NOW).is_err());
    }

    #[test]
    fn claim_checks() {
        assert_eq!(
            after_check(&rec(Some(false), "ops@example.com"), &me(), NOW),
            Ok(Claim::Waiting)
        );
        assert_eq!(
            after_check(&rec(None, "ops@example.com"), &me(), NOW),
            Ok(Claim::Waiting)
        );
        let Ok(Claim::Confirmed(c)) =
            after_check(&rec(Some(true), " ops@EXAMPLE.com "), &me(), NOW)
        else {
            panic!()
        };
        assert_eq!(c.cluster_foreign_id, "c-9");
        assert_eq!(
            after_check(&rec(Some(true), "eve@example.com"), &me(), NOW),
            Ok(Claim::OtherAccount("eve@example.com".into()))
        );
    }
}
