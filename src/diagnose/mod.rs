/*!
Offline diagnosis: from a finding, its pod record and (when enriched) the
pod's events and logs, a likely cause from a closed vocabulary, the evidence
for it, and a fix with copy-pasteable `kubectl` commands naming the real
workload, namespace and container.

Pure and table-driven (`rules::RULES`): no I/O, no clock, so every rule is
tested with plain values. It replaces the original's `rules.json` (17
rules matched against events and logs), which the original daemon shipped
but never called, and whose fixes named nothing.

- `context`: what the rules look at (`Context`, `ProbeSlot`).
- `rules`: the rule table, the matcher and `diagnose`.
- `fit`: where an unschedulable pod would fit (nodes' allocatable, taints, cordons).
- `node`: node incidents' diagnoses, and pod failures attributed to their node.
- `log_rules`: causes named by the crashed run's log tail (refused
  connections, DNS, missing env vars and files, runtime OOM, ports, migrations,
  permissions, panics), consulted by `rules` after the table.
- `user_rules`: `RULES_FILE`, the user's own rules, checked and loaded.
- `vars`: the template variables the table's texts use, and name parsing.
- `quantity`: Kubernetes quantities, parsed and scaled for fixes.
- `redact`: secret and personal-detail redaction for text that leaves the
  cluster (the LLM's prompt, log tails).
- `llm`: the optional LLM second opinion (`LlmClient`), attached as
  `Diagnosis::ai`; the one part of diagnosis that does I/O.
*/

pub mod context;
pub mod fit;
pub mod llm;
pub mod log_rules;
pub mod node;
pub mod quantity;
pub mod redact;
pub mod rules;
pub mod user_rules;
pub mod vars;

pub use rules::{Context, Diagnosis, Fix, RuleSet, diagnose};
