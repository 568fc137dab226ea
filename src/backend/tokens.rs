/*!
The backend's access and refresh tokens in memory, and when to refresh them.

Pure: every decision takes the clock as `now_ms` (Unix milliseconds), so it
is tested with plain numbers.

Validity follows the original's `isTokenValid` (`now < expiresAt - 2 min`),
except that a token living less than four minutes gets half its lifetime as
the margin: with the fixed two minutes a short-lived token would never count
as valid and would be refreshed in a tight loop.

Which cluster id goes with the tokens: the original sent the backend's id in
the first exchange and `clu_…` in later refreshes,
so one of the two was wrong. This daemon always sends `cluster_foreign_id`,
the backend's primary key, which is also what the token listing (#3) is
keyed on. `tokens.json` records that id; a file the original wrote (with
`clu_…`) is still accepted for the same cluster, because refreshes take the
id from `cluster.json`, not from the tokens file.
*/

use super::state::{ClusterFile, TokensFile};
use crate::secret::Secret;

/// The original's buffer before `expiresAt` (2 minutes).
pub const REFRESH_MARGIN_MS: i64 = 120_000;

/// What a token exchange (`POST /auth/cluster/refresh`) answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Exchange {
    pub access: Secret,
    /// `None` when the backend did not rotate it: the one sent stays valid.
    pub refresh: Option<Secret>,
    /// Seconds.
    pub expires_in: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tokens {
    pub access: Secret,
    pub refresh: Secret,
    /// Seconds, as the backend said.
    pub expires_in: u64,
    pub expires_at_ms: i64,
    /// The backend cluster id they were issued for.
    pub cluster_id: String,
    pub org_id: Option<String>,
}

impl Tokens {
    /// Tokens from an exchange made at `now_ms` with `sent_refresh`.
    pub fn issued(
        x: Exchange,
        sent_refresh: &Secret,
        cluster: &ClusterFile,
        now_ms: i64,
    ) -> Tokens {
        Tokens {
            access: x.access,
            refresh: x.refresh.unwrap_or_else(|| sent_refresh.clone()),
            expires_in: x.expires_in,
            expires_at_ms: now_ms.saturating_add((x.expires_in as i64).saturating_mul(1000)),
            cluster_id: cluster.cluster_foreign_id.clone(),
            org_id: cluster.org_id.clone(),
        }
    }

    /// The buffer before expiry in which the token is refreshed.
    pub fn margin_ms(&self) -> i64 {
        REFRESH_MARGIN_MS.min((self.expires_in as i64).saturating_mul(500))
    }

    /// When a proactive refresh is due.
    pub fn refresh_at_ms(&self) -> i64 {
        self.expires_at_ms.saturating_sub(self.margin_ms())
    }

    /// The original's `isTokenValid`: not yet in the refresh margin.
    pub fn valid(&self, now_ms: i64) -> bool {
        now_ms < self.refresh_at_ms()
    }

    /// Past `expiresAt`: sending it can only earn a 401.
    pub fn expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_at_ms
    }

    /// Milliseconds until a refresh is due (0 when due).
    pub fn refresh_in_ms(&self, now_ms: i64) -> u64 {
        self.refresh_at_ms().saturating_sub(now_ms).max(0) as u64
    }

    pub fn to_file(&self) -> TokensFile {
        TokensFile {
            access_token: self.access.expose().to_string(),
            refresh_token: self.refresh.expose().to_string(),
            expires_in: self.expires_in,
            expires_at: self.expires_at_ms,
            cluster_id: self.cluster_id.clone(),
            org_id: self.org_id.clone(),
        }
    }

    /// Tokens saved for `cluster`, if they are its own (see the module doc)
    /// and complete. Expired ones are still returned: the refresh token may
    /// outlive the access token.
    pub fn from_file(f: TokensFile, cluster: &ClusterFile) -> Option<Tokens> {
        let ours = f.cluster_id == cluster.cluster_foreign_id || f.cluster_id == cluster.cluster_id;
        if !ours || f.refresh_token.is_empty() || f.access_token.is_empty() {
            return None;
        }
        Some(Tokens {
            access: Secret::new(f.access_token),
            refresh: Secret::new(f.refresh_token),
            expires_in: f.expires_in,
            expires_at_ms: f.expires_at,
            // From now on the id refreshes actually use.
            cluster_id: cluster.cluster_foreign_id.clone(),
            org_id: f.org_id.or_else(|| cluster.org_id.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> ClusterFile {
        ClusterFile {
            cluster_id: "clu_uid".into(),
            cluster_name: "edge".into(),
            user_email: "ops@example.com".into(),
            registered_at: String::new(),
            is_claimed: true,
            org_id: Some("org-1".into()),
            cluster_foreign_id: "c-42".into(),
        }
    }

    fn issued(expires_in: u64, now: i64) -> Tokens {
        Tokens::issued(
            Exchange {
                access: Secret::new("acc"),
                refresh: None,
                expires_in,
            },
            &Secret::new("ref"),
            &cluster(),
            now,
        )
    }

    #[test]
    fn validity_keeps_the_two_minute_margin() {
        let t = issued(3600, 1_000_000);
        assert_eq!(t.expires_at_ms, 1_000_000 + 3_600_000);
        assert_eq!(
            t.refresh.expose(),
            "ref",
            "an unrotated refresh token is kept"
        );
        assert_eq!(t.cluster_id, "c-42", "the backend id, always");
        let due = t.expires_at_ms - 120_000;
        assert!(t.valid(due - 1));
        assert!(!t.valid(due));
        assert!(!t.expired(due));
        assert!(t.expired(t.expires_at_ms));
        assert_eq!(t.refresh_in_ms(due - 5_000), 5_000);
        assert_eq!(t.refresh_in_ms(due + 5_000), 0);
    }

    #[test]
    fn short_lived_tokens_get_half_their_lifetime() {
        let t = issued(4, 0);
        assert_eq!(t.refresh_at_ms(), 2_000);
        assert!(t.valid(1_999));
        let t = issued(0, 0);
        assert_eq!(t.refresh_at_ms(), 0);
        assert!(!t.valid(0));
    }

    #[test]
    fn saved_tokens_are_taken_only_for_their_cluster() {
        let t = issued(3600, 0);
        let f = t.to_file();
        assert_eq!(f.cluster_id, "c-42");
        assert_eq!(Tokens::from_file(f.clone(), &cluster()), Some(t.clone()));
        // Written by the original: `clu_…` — same cluster, refreshed with the backend id.
        let mut legacy = f.clone();
        legacy.cluster_id = "clu_uid".into();
        assert_eq!(
            Tokens::from_file(legacy, &cluster()).map(|t| t.cluster_id),
            Some("c-42".into())
        );
        let mut other = f.clone();
        other.cluster_id = "c-7".into();
        assert_eq!(Tokens::from_file(other, &cluster()), None);
        let mut empty = f;
        empty.refresh_token.clear();
        assert_eq!(Tokens::from_file(empty, &cluster()), None);
    }
}
