/*!
The Slack incoming-webhook sink (`SLACK_WEBHOOK_URL`): every alert is one
Block Kit message POSTed to the webhook, which picks the channel itself.

Slack answers `200 ok`, or a 4xx with a plain-text error (`invalid_blocks`,
`no_text`, `channel_not_found`…) that ends up in the `Failure` reason, or
`429` with `Retry-After`. The URL is the credential: it never appears in a
log line or a failure.
*/

use super::{Alert, Failure, Sink, post_attempt, slack, url_secrets};
use crate::secret::Secret;

pub struct SlackWebhook {
    url: Secret,
    agent: ureq::Agent,
}

impl SlackWebhook {
    /// `url` is `settings::Alerts::slack_webhook`; `agent` from `net::http::agent`.
    pub fn new(url: Secret, agent: ureq::Agent) -> SlackWebhook {
        SlackWebhook { url, agent }
    }
}

impl Sink for SlackWebhook {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        let body = slack::render(alert);
        let url = self.url.expose();
        let secrets = url_secrets(url);
        post_attempt(&self.agent, url, &[], &body, "Slack webhook", &secrets)
    }
}
