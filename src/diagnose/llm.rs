/*!
The optional LLM second opinion: an OpenAI-compatible chat-completions API
(OpenAI, Ollama, vLLM, LM Studio…) is asked about an incident, and its short
answer is attached to the rules' diagnosis as `Diagnosis::ai`
(`{"model", "answer"}`).

The rules' diagnosis always stands on its own; the LLM only adds to it.
Whatever goes wrong (timeout, refused connection, non-2xx, an answer that is
not JSON or is empty) is logged once as a warning, counted in
`llm_failures`, and the incident goes out without `ai`.

What is sent is built here (`user_message`) from the incident, the rules'
verdict, the events and the log tail, every piece passed through
`redact::redact` and the whole capped at `MAX_PROMPT` bytes. The API key is
only ever a header value; it never reaches a log line.

Answers are cached by incident fingerprint (`fingerprint`: namespace,
workload, container, failure type, reason, exit code, signal and the rules'
cause, nothing that changes from one pod or crash to the next), for
`DIAGNOSIS_CACHE_TTL_MS`, at most `DIAGNOSIS_CACHE_MAX_ENTRIES` of them, so a
crash loop's repeated notifications cost one request.

After a failure that says the service is unavailable (transport error or
timeout, 429, 5xx) no request is sent for `PAUSE` (or the 429's
`Retry-After`, up to `MAX_PAUSE`): the delivery workers that call this also
deliver alerts, and must not spend a full timeout on every incident while
the LLM is down.

`LlmClient` is shared by the delivery workers: every method takes `&self`,
the cache sits behind a mutex that is never held during a request.
*/

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::redact::{redact, redact_lines};
use super::vars::cap;
use crate::metrics::{Counters, Metrics};
use crate::model::Item;
use crate::net::http;
use crate::secret::Secret;
use crate::settings::{DiagnosisSettings, Llm};
use crate::util::lru::Lru;
use crate::util::sync::lock;

/// Most of the user message, in bytes.
pub const MAX_PROMPT: usize = 12 * 1024;
/// Most of the answer kept, in characters (a Slack section holds 3000, the
/// sinks cut further as they need).
pub const MAX_ANSWER_CHARS: usize = 4000;
/// Most of one event, log or evidence line in the prompt, in bytes.
const MAX_LINE: usize = 400;
/// The events' share of the prompt: the logs usually say more.
const MAX_EVENTS_BYTES: usize = 3 * 1024;
/// Pods named in the prompt; the rest are counted.
const MAX_PODS: usize = 5;
/// No requests for this long after the LLM was found unavailable.
pub const PAUSE: Duration = Duration::from_secs(60);
/// Cap on a 429's `Retry-After`.
pub const MAX_PAUSE: Duration = Duration::from_secs(600);
const TEMPERATURE: f64 = 0.2;
const MAX_TOKENS: u32 = 600;

const SYSTEM_PROMPT: &str = "You are a senior Kubernetes site reliability engineer helping an on-call engineer. \
You get one failing workload: the failure Kubernetes reports, a diagnosis from an offline rule table, \
the pod's events and the last log lines of the failed run. Values shown as [REDACTED] or [REDACTED:kind] \
were removed on purpose; never ask for them. \
Answer in at most 150 words of plain text: first 'Root cause:' with the most likely cause and the evidence \
for it (say whether you agree with the rules' diagnosis), then 'Fix:' with concrete steps and kubectl \
commands using the real names given. If the data is not enough to be sure, say what to check next.";

/// The API is unavailable for now; see `PAUSE`.
#[derive(Debug)]
struct Failed {
    why: String,
    pause: Option<Duration>,
}

impl Failed {
    fn new(why: impl Into<String>) -> Failed {
        Failed {
            why: why.into(),
            pause: None,
        }
    }
}

pub struct LlmClient {
    agent: ureq::Agent,
    /// `{base_url}/chat/completions`.
    url: String,
    model: String,
    api_key: Option<Secret>,
    metrics: Arc<Metrics>,
    /// Fingerprint → `{"model", "answer"}`.
    cache: Mutex<Lru<String, Value>>,
    /// No requests before this instant (see `PAUSE`).
    paused_until: Mutex<Option<Instant>>,
}

impl LlmClient {
    /// The client the settings ask for: `None` when diagnosis is off or no
    /// LLM is configured.
    pub fn from_settings(
        diagnosis: &DiagnosisSettings,
        metrics: Arc<Metrics>,
    ) -> Option<LlmClient> {
        if !diagnosis.enabled {
            return None;
        }
        let llm = diagnosis.llm.as_ref()?;
        Some(LlmClient::new(llm, diagnosis, metrics))
    }

    /// A client answering within `DIAGNOSIS_TIMEOUT_MS`, caching as the
    /// diagnosis settings say.
    pub fn new(llm: &Llm, diagnosis: &DiagnosisSettings, metrics: Arc<Metrics>) -> LlmClient {
        LlmClient::with_timeout(llm, diagnosis, metrics, diagnosis.timeout)
    }

    /// As `new`, with another time budget per request (tests use less than
    /// the settings' 5 s minimum).
    pub fn with_timeout(
        llm: &Llm,
        diagnosis: &DiagnosisSettings,
        metrics: Arc<Metrics>,
        timeout: Duration,
    ) -> LlmClient {
        LlmClient {
            agent: http::agent(timeout),
            url: format!("{}/chat/completions", llm.base_url.trim_end_matches('/')),
            model: llm.model.clone(),
            api_key: llm.api_key.clone().filter(|k| !k.is_empty()),
            metrics,
            cache: Mutex::new(Lru::new(diagnosis.cache_max_entries, diagnosis.cache_ttl)),
            paused_until: Mutex::new(None),
        }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The LLM's `{"model", "answer"}` on this incident, from the cache when
    /// an answer for its fingerprint is fresh, or `None` when the LLM could
    /// not answer (the rules' diagnosis then stands alone). Blocks for up to
    /// the time budget; call it from a delivery worker, not the
    /// classification thread.
    pub fn second_opinion(&self, item: &Item) -> Option<Value> {
        let c = &self.metrics.counters;
        let key = fingerprint(item);
        if let Some(v) = self.cached(&key) {
            Counters::inc(&c.llm_cache_hits);
            return Some(v);
        }
        Counters::inc(&c.llm_cache_misses);
        let inc = &item.incident;
        if let Some(left) = self.pause_left() {
            log::debug!(
                "LLM not asked about incident {} ({}/{}): paused for {} s more after a failure",
                inc.id,
                inc.namespace,
                inc.workload.name,
                left.as_secs()
            );
            return None;
        }
        Counters::inc(&c.llm_requests);
        match self.ask(item) {
            Ok(answer) => {
                let v = json!({"model": self.model, "answer": answer});
                let mut cache = lock(&self.cache);
                cache.insert(key, v.clone(), Instant::now());
                self.count_entries(&cache);
                Some(v)
            }
            Err(f) => {
                Counters::inc(&c.llm_failures);
                let pause = match f.pause {
                    Some(d) => {
                        *lock(&self.paused_until) = Instant::now().checked_add(d);
                        format!("; not asking it again for {} s", d.as_secs())
                    }
                    None => String::new(),
                };
                log::warn!(
                    "LLM second opinion on incident {} ({}/{}) failed: {}; the rules' diagnosis stands{pause}",
                    inc.id,
                    inc.namespace,
                    inc.workload.name,
                    f.why
                );
                None
            }
        }
    }

    fn cached(&self, key: &str) -> Option<Value> {
        let mut cache = lock(&self.cache);
        let v = cache.get(&key.to_owned(), Instant::now()).cloned();
        // A lookup removes an expired entry.
        self.count_entries(&cache);
        v
    }

    /// Publishes the cache's size (`/health`'s `cacheStats.entries`).
    fn count_entries(&self, cache: &Lru<String, Value>) {
        let n = cache.len() as u64;
        let gauge = &self.metrics.counters.llm_cache_entries;
        gauge.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn pause_left(&self) -> Option<Duration> {
        let p = lock(&self.paused_until);
        let until = (*p)?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// One request; the cleaned answer, or why there is none.
    fn ask(&self, item: &Item) -> Result<String, Failed> {
        let body = request_body(&self.model, item);
        let auth = self
            .api_key
            .as_ref()
            .map(|k| format!("Bearer {}", k.expose()));
        let headers: Vec<(&str, &str)> = match &auth {
            Some(v) => vec![("Authorization", v.as_str())],
            None => Vec::new(),
        };
        let reply =
            http::post_json(&self.agent, &self.url, &headers, &body).map_err(|why| Failed {
                why,
                pause: Some(PAUSE),
            })?;
        if !reply.ok() {
            let unavailable = reply.status == 429 || reply.status >= 500;
            return Err(Failed {
                // Error bodies may echo part of the key ("Incorrect API key provided: sk-…").
                why: format!("HTTP {}: {}", reply.status, redact(&reply.body_excerpt())),
                pause: unavailable.then(|| reply.retry_after.unwrap_or(PAUSE).min(MAX_PAUSE)),
            });
        }
        let v = reply.json().ok_or_else(|| {
            Failed::new(format!(
                "the answer is not JSON: {}",
                redact(&reply.body_excerpt())
            ))
        })?;
        let content = v
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| Failed::new("the answer has no choices[0].message.content"))?;
        let answer = clean_answer(content);
        if answer.is_empty() {
            return Err(Failed::new("the answer is empty"));
        }
        Ok(answer)
    }
}

/// What identifies an incident's problem, not its occurrence: no pod names,
/// times, counts or messages (they carry pod names and back-off delays).
pub fn fingerprint(item: &Item) -> String {
    let i = &item.incident;
    let f = &i.finding;
    let num = |n: Option<i32>| n.map(|n| n.to_string()).unwrap_or_default();
    [
        i.cluster.as_str(),
        &i.namespace,
        &i.workload.kind,
        &i.workload.name,
        f.container.as_deref().unwrap_or(""),
        f.kind.as_str(),
        &f.reason,
        &num(f.exit_code),
        &num(f.signal),
        item.diagnosis.as_ref().map_or("", |d| d.cause.as_str()),
    ]
    .join("\u{1f}")
}

/// The chat-completions request.
pub fn request_body(model: &str, item: &Item) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_message(item)},
        ],
        "temperature": TEMPERATURE,
        "max_tokens": MAX_TOKENS,
        "stream": false,
    })
}

/// One redacted line, cut to `MAX_LINE` (redacted first: a cut could split
/// a secret from what identifies it).
fn line(s: &str) -> String {
    cap(&redact(s), MAX_LINE)
}

/// The incident as the LLM reads it: every value redacted, at most `MAX_PROMPT` bytes.
pub fn user_message(item: &Item) -> String {
    let i = &item.incident;
    let f = &i.finding;
    let mut p = String::with_capacity(4096);
    let _ = writeln!(p, "Failure: {} (reason: {})", f.kind, line(&f.reason));
    let _ = writeln!(
        p,
        "Workload: {} {} in namespace {}",
        line(&i.workload.kind),
        line(&i.workload.name),
        line(&i.namespace)
    );
    if !i.pods.is_empty() {
        let named: Vec<String> = i.pods.iter().take(MAX_PODS).map(|n| line(n)).collect();
        let more = i.pods.len().saturating_sub(MAX_PODS);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let _ = writeln!(p, "Pods: {}{more}", named.join(", "));
    }
    if let Some(c) = &f.container {
        let init = if f.init_container {
            " (init container)"
        } else {
            ""
        };
        let _ = writeln!(p, "Container: {}{init}", line(c));
    }
    if let Some(image) = &f.image {
        let _ = writeln!(p, "Image: {}", line(image));
    }
    if let Some(code) = f.exit_code {
        let _ = writeln!(p, "Exit code: {code}");
    }
    if let Some(sig) = f.signal {
        let _ = writeln!(p, "Signal: {sig}");
    }
    if let Some(n) = f.restart_count {
        let _ = writeln!(p, "Restarts: {n}");
    }
    if let Some(node) = &f.node {
        let _ = writeln!(p, "Node: {}", line(node));
    }
    if !f.message.trim().is_empty() {
        let _ = writeln!(p, "Message: {}", cap(&redact(&f.message), 2 * MAX_LINE));
    }
    if !item.facts.is_empty() {
        // Image, resources, probes, env names (never values): what a fix is checked against.
        let _ = writeln!(p, "Container facts:");
        for fact in &item.facts {
            let _ = writeln!(p, "- {}", line(fact));
        }
    }
    if let Some(d) = &item.diagnosis {
        let _ = writeln!(p, "\nRules-based diagnosis (offline rule table):");
        let _ = writeln!(
            p,
            "Cause: {} (confidence {:.2}, rule {})",
            d.cause, d.confidence, d.rule
        );
        let _ = writeln!(p, "Summary: {}", cap(&redact(&d.summary), 2 * MAX_LINE));
        if !d.evidence.is_empty() {
            let _ = writeln!(p, "Evidence:");
            for e in &d.evidence {
                let _ = writeln!(p, "- {}", line(e));
            }
        }
        let _ = writeln!(
            p,
            "Suggested fix: {}",
            cap(&redact(&d.fix.text), 2 * MAX_LINE)
        );
        for c in &d.fix.commands {
            let _ = writeln!(p, "  $ {}", line(c));
        }
    }
    if !item.events.is_empty() {
        let _ = writeln!(p, "\nEvents (most relevant first):");
        let budget = p.len() + MAX_EVENTS_BYTES;
        for e in &item.events {
            let l = line(e);
            if p.len() + l.len() + 3 > budget {
                break;
            }
            let _ = writeln!(p, "- {l}");
        }
    }
    const TAIL: &str = "\nWhat is the root cause, and how do I fix it?";
    if !item.logs.is_empty() {
        const HEAD: &str = "\nLast log lines of the failed run:\n";
        // The last lines matter most (the error is at the end): keep a tail that fits.
        let room = MAX_PROMPT.saturating_sub(p.len() + HEAD.len() + TAIL.len());
        let mut kept: Vec<String> = Vec::new();
        let mut used = 0;
        for l in redact_lines(&item.logs).iter().rev() {
            let l = cap(l, MAX_LINE);
            if used + l.len() + 1 > room {
                break;
            }
            used += l.len() + 1;
            kept.push(l);
        }
        if !kept.is_empty() {
            p.push_str(HEAD);
            for l in kept.iter().rev() {
                p.push_str(l);
                p.push('\n');
            }
        }
    }
    p.push_str(TAIL);
    if p.len() > MAX_PROMPT {
        // Only a very long header gets here; keep the beginning.
        p = cap(&p, MAX_PROMPT - 3);
    }
    p
}

/// The answer without a reasoning model's `<think>…</think>` preamble,
/// trimmed and cut to `MAX_ANSWER_CHARS`.
fn clean_answer(content: &str) -> String {
    let mut s = content.trim();
    if s.starts_with("<think>") {
        s = match s.find("</think>") {
            Some(end) => s[end + "</think>".len()..].trim(),
            // Cut off while thinking: nothing usable.
            None => "",
        };
    }
    match s.char_indices().nth(MAX_ANSWER_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FailureType, Finding, Workload};
    use crate::model::{Incident, State};

    fn finding(pod: &str, reason: &str) -> Finding {
        Finding {
            container: Some("api".into()),
            reason: reason.into(),
            message: format!("back-off 40s restarting failed container=api pod={pod}_shop(uid)"),
            exit_code: Some(1),
            restart_count: Some(4),
            node: Some("worker-1".into()),
            image: Some("registry.example.com/shop/api:2.8.0".into()),
            since: Some(1_715_677_090),
            ..Finding::test(FailureType::CrashLoopBackOff, pod)
        }
    }

    fn item(pod: &str, reason: &str) -> Item {
        let incident = Incident {
            cluster: "prod".into(),
            workload: Workload {
                kind: "Deployment".into(),
                name: "api".into(),
            },
            first_seen_ms: 1,
            detected_ms: 1,
            last_seen_ms: 2,
            ..Incident::test(finding(pod, reason), State::Open)
        };
        Item::new(incident, None)
    }

    #[test]
    fn the_fingerprint_ignores_pods_times_and_messages() {
        let a = item("api-5f6d8b9c4-q7w2z", "Error");
        let mut b = item("api-5f6d8b9c4-zzzzz", "Error");
        b.incident.first_seen_ms = 99;
        b.incident.finding.restart_count = Some(9);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = item("api-5f6d8b9c4-q7w2z", "OOMKilled");
        assert_ne!(fingerprint(&a), fingerprint(&c));
        let mut d = item("api-5f6d8b9c4-q7w2z", "Error");
        d.incident.finding.exit_code = Some(137);
        assert_ne!(fingerprint(&a), fingerprint(&d));
    }

    #[test]
    fn the_message_is_capped_and_keeps_the_newest_log_lines() {
        let mut it = item("api-5f6d8b9c4-q7w2z", "Error");
        it.events = (0..100)
            .map(|n| format!("Warning BackOff (x{n}): {}", "e".repeat(300)))
            .collect();
        it.logs = (0..2000)
            .map(|n| format!("line {n} {}", "x".repeat(50)))
            .collect();
        let m = user_message(&it);
        assert!(m.len() <= MAX_PROMPT, "{}", m.len());
        assert!(m.contains("line 1999 "), "the last line is kept");
        assert!(!m.contains("line 0 "), "the oldest lines go first");
        assert!(m.ends_with("how do I fix it?"));
        let events = m.matches("Warning BackOff").count();
        assert!(events > 3 && events < 100, "{events}");
    }

    #[test]
    fn answers_are_cleaned_and_capped() {
        assert_eq!(
            clean_answer("  <think>hmm</think>\n Root cause: x "),
            "Root cause: x"
        );
        assert_eq!(clean_answer("<think>never finished"), "");
        let long = "é".repeat(MAX_ANSWER_CHARS + 10);
        let c = clean_answer(&long);
        assert_eq!(c.chars().count(), MAX_ANSWER_CHARS + 1);
        assert!(c.ends_with('…'));
    }
}
