/*!
Outgoing HTTP to everything that is not the Kubernetes API: Slack, webhooks,
the LLM and the OpsCtrl backend.

- `http`: the shared agent (public roots built in, timeouts on every
  request, statuses as values) and small helpers to POST JSON and read a
  bounded answer.
*/

pub mod http;
