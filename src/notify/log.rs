/*!
The log sink: every notification that goes out is also one `info` line
(`notification: open: critical CrashLoopBackOff shop/Deployment/web (1 pod)
cause=oom_killed`), the local record of what the other sinks were given.
It never fails, so it is also what a daemon with no sink configured does.
*/

use super::{Alert, Failure, Sink};
use crate::output::alert_text;

pub struct LogSink;

impl Sink for LogSink {
    fn name(&self) -> &'static str {
        "log"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        let causes: Vec<&str> = alert
            .items()
            .iter()
            .filter_map(|i| i.diagnosis.as_ref().map(|d| d.cause.as_str()))
            .collect();
        let cause = match causes.as_slice() {
            [] => String::new(),
            [one] => format!(" cause={one}"),
            many => format!(" causes={}", many.join(",")),
        };
        log::info!("notification: {}{cause}", alert_text(alert));
        Ok(())
    }
}
