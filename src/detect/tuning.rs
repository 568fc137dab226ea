/*!
What detection is tuned by: `Detect`, in the settings' units (milliseconds,
counts), and its conversion into each engine's configuration. The settings
build it (`settings::resolve`); its `Default`, the product defaults, is
implemented in `settings::defaults` from the setting definitions, so
detection depends on no settings code.
*/

use super::classify::Thresholds;
use super::incident::Config;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detect {
    pub min_restart: u32,
    pub max_pending_ms: i64,
    pub image_pull_grace_ms: i64,
    pub not_ready_grace_ms: i64,
    pub resolve_after_ms: i64,
    pub rate_limit_ms: i64,
    pub renotify_ms: i64,
    pub batch_ms: i64,
    pub storm_threshold: usize,
}

/// The classifier's thresholds (milliseconds → seconds).
pub fn thresholds(d: &Detect) -> Thresholds {
    Thresholds {
        min_restart: d.min_restart,
        max_pending_secs: d.max_pending_ms / 1000,
        image_pull_grace_secs: d.image_pull_grace_ms / 1000,
        not_ready_grace_secs: d.not_ready_grace_ms / 1000,
    }
}

/// The incident engine's configuration.
pub fn engine_config(cluster: String, d: &Detect) -> Config {
    Config {
        cluster,
        resolve_after_ms: d.resolve_after_ms,
        rate_limit_ms: d.rate_limit_ms,
        renotify_ms: d.renotify_ms,
        batch_ms: d.batch_ms,
        storm_threshold: d.storm_threshold,
    }
}
