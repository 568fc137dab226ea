/*!
Every `Default` of a type the settings build: what resolving an empty
environment gives. The defaults are therefore the definitions' (`defs.rs`),
converted by the same code as a user's values, and written nowhere else.

`detect::tuning` converts `Detect::default()` for the detection engines.
*/

use super::read::{Reader, Unset};
use super::resolve;
use super::types::{Alerts, Detect, DiagnosisSettings, Reconnect, Settings};

impl Default for Settings {
    fn default() -> Self {
        resolve::settings(&mut Reader::new(&Unset))
    }
}

impl Default for Reconnect {
    fn default() -> Self {
        resolve::reconnect(&mut Reader::new(&Unset))
    }
}

impl Default for Detect {
    fn default() -> Self {
        resolve::detect(&mut Reader::new(&Unset))
    }
}

impl Default for DiagnosisSettings {
    fn default() -> Self {
        resolve::diagnosis(&mut Reader::new(&Unset))
    }
}

impl Default for Alerts {
    fn default() -> Self {
        resolve::alerts(&mut Reader::new(&Unset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::read::Unset;
    use std::time::Duration;

    #[test]
    fn the_defaults_are_valid_and_are_what_resolving_nothing_gives() {
        let mut r = Reader::new(&Unset);
        let s = resolve::settings(&mut r);
        assert_eq!(r.problems, []);
        assert_eq!(crate::settings::resolve(&Unset), Ok(s.clone()));
        assert_eq!(s, Settings::default());
        assert_eq!(s.reconnect, Reconnect::default());
        assert_eq!(s.detect, Detect::default());
        assert_eq!(s.diagnosis, DiagnosisSettings::default());
        assert_eq!(s.alerts, Alerts::default());
    }

    #[test]
    fn the_delivery_and_diagnosis_defaults_are_the_documented_ones() {
        let a = Alerts::default();
        assert_eq!(
            (
                a.workers,
                a.queue_size,
                a.max_attempts,
                a.backoff,
                a.max_backoff
            ),
            (2, 1000, 3, Duration::from_secs(1), Duration::from_secs(30))
        );
        let d = DiagnosisSettings::default();
        assert_eq!(
            (d.enabled, d.timeout, d.include_logs),
            (true, Duration::from_secs(30), true)
        );
    }
}
