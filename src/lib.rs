/*!
opsctrl-daemon: a synchronous Kubernetes pod-failure daemon.

The binary (`src/main.rs`) only parses, validates and dispatches to these
modules. Pure decisions (the watch state machine, classification, the
incident lifecycle, diagnosis rules, rendering) live apart from the threads
that do I/O, so they are tested with plain values and a fake clock.

# Layers

A module may import only from the rows below its own (`tests/architecture.rs`
fails on an import that goes up or sideways, and on a cycle between the
files of one directory module):

```text
daemon scan check test_alert routes_test cli  commands: wire threads, apply effects, print
classifier serve enrich       the classification step; health; enrichment
notify backend leader         sinks and the delivery pool; OpsCtrl backend; Lease
output printer streams        renderers of the record; its stdout writer; which streams to watch
diagnose                      rules, template variables, redaction, the LLM
detect routing                classification, workloads, the incident engine; routes and silences
kube                          API access: config, auth, TLS, client, watch, store
settings metrics net          settings; counters; the HTTP agent for non-Kubernetes calls
secret shutdown logging       secret strings; signals; the log line format
model util                    the vocabulary; time, backoff, random, LRU, text, locks
```

# One watch event, from the socket to a Slack post

1. `kube::client::WatchBody::next_line` reads one line of the chunked watch
   response; `kube::types::decode_watch_line` decodes it into a `Pod` and
   `model::pod::PodRecord::from` keeps the compact record.
2. `kube::watch::Stream::watch` (reader thread) sends `Msg::Store { Event::Apply }`
   on the channel; `kube::watch::step` decides what the stream does next.
3. `daemon::run` (classification thread) passes it to
   `classifier::Classifier::handle`, which calls `kube::store::Store::apply`
   (a `Change`), then `classifier::detector::Detector::on_change`:
   `detect::classify::classify` gives the findings and
   `detect::incident::Engine::observe` the incident `Transition`s, each
   diagnosed by `diagnose::rules::RuleSet::diagnose`.
4. At the next tick `detect::incident::Engine::tick` releases the
   `Notification`; `classifier::silence::Silencer` holds it back while a
   silence covers it (and releases it at a later tick when the silence
   ends); `classifier::Classifier::job` makes it a `model::Job` (with a
   copy of the pod). `daemon::Apply::effects` renders the record with
   `output::print_transitions` for `printer::Printer` (stdout's own writer
   thread, which never blocks it) and hands the job to
   `notify::pool::Pool::submit`, which never blocks.
5. A pool worker (`notify::pool::prepare_worker`) runs `enrich::Enricher::prepare`
   (events, logs, diagnosis again, LLM, backend), hands it to the lanes of
   the sinks `routing::Routes::plan` names (all of them without routes), then
   `notify::slack_webhook::SlackWebhook::deliver` renders it with
   `notify::slack::render` and posts it with `notify::post_attempt`,
   retried with `util::backoff::Backoff`.
*/

#![forbid(unsafe_code)]

pub mod backend;
pub mod check;
pub mod classifier;
pub mod cli;
pub mod daemon;
pub mod detect;
pub mod diagnose;
pub mod enrich;
pub mod kube;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod net;
pub mod notify;
pub mod output;
pub mod printer;
pub mod routes_test;
pub mod routing;
pub mod scan;
pub mod secret;
pub mod serve;
pub mod settings;
pub mod shutdown;
pub mod streams;
pub mod test_alert;
pub mod util;
