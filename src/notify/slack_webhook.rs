/*!
The Slack incoming-webhook sink (`SLACK_WEBHOOK_URL`): every alert is one
Block Kit message POSTed to the webhook, which picks the channel itself
(a route's `webhook_file` names another webhook, so another channel).

Slack answers `200 ok`, or a 4xx with a plain-text error (`invalid_blocks`,
`no_text`, `channel_not_found`…) that ends up in the `Failure` reason, or
`429` with `Retry-After`. The URL is the credential: it never appears in a
log line or a failure.
*/

use super::{Alert, Failure, Override, Sink, post_attempt, slack, url_secrets};
use crate::secret::Secret;
use crate::util::time::now_ms;
use crate::util::url_template::UrlTemplate;

pub struct SlackWebhook {
    url: Secret,
    agent: ureq::Agent,
    /// `DASHBOARD_URL_TEMPLATE`.
    dashboard: Option<UrlTemplate>,
}

impl SlackWebhook {
    /// `url` is `settings::Alerts::slack_webhook`; `agent` from `net::http::agent`.
    pub fn new(url: Secret, agent: ureq::Agent) -> SlackWebhook {
        SlackWebhook {
            url,
            agent,
            dashboard: None,
        }
    }

    /// Links each workload to `DASHBOARD_URL_TEMPLATE`.
    pub fn with_dashboard(mut self, dashboard: Option<UrlTemplate>) -> SlackWebhook {
        self.dashboard = dashboard;
        self
    }
}

impl SlackWebhook {
    fn post(&self, alert: &Alert, url: &Secret) -> Result<(), Failure> {
        let style = slack::Style {
            now_ms: now_ms(),
            dashboard: self.dashboard.as_ref(),
        };
        let body = slack::render_with(alert, &style);
        let url = url.expose();
        let secrets = url_secrets(url);
        post_attempt(&self.agent, url, &[], &body, "Slack webhook", &secrets)
    }
}

impl Sink for SlackWebhook {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        self.post(alert, &self.url)
    }

    /// A route's `webhook_file`: another incoming webhook (another channel).
    fn deliver_to(&self, alert: &Alert, to: &Override) -> Result<(), Failure> {
        match to {
            Override::Webhook { url, .. } => self.post(alert, url),
            Override::Channel(_) => self.deliver(alert),
        }
    }
}
