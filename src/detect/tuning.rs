/*!
What detection is tuned by: the settings' `Detect` (milliseconds, counts)
converted into each engine's configuration. The `Default`s of those
configurations are the settings' defaults, converted the same way, so no
default is written here.
*/

use super::classify::Thresholds;
use super::incident::Config;
use crate::settings::Detect;

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

impl Default for Thresholds {
    fn default() -> Self {
        thresholds(&Detect::default())
    }
}

/// No cluster name: the caller names its cluster.
impl Default for Config {
    fn default() -> Self {
        engine_config(String::new(), &Detect::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detection_defaults_are_the_documented_ones_in_each_unit() {
        // The README's values, as each engine counts them.
        let t = Thresholds::default();
        assert_eq!(
            (
                t.min_restart,
                t.max_pending_secs,
                t.image_pull_grace_secs,
                t.not_ready_grace_secs
            ),
            (3, 600, 60, 300)
        );
        let c = Config::default();
        assert_eq!(c.cluster, "");
        assert_eq!(
            (
                c.resolve_after_ms,
                c.rate_limit_ms,
                c.renotify_ms,
                c.batch_ms,
                c.storm_threshold
            ),
            (120_000, 5 * 60_000, 240 * 60_000, 5000, 10)
        );
    }
}
