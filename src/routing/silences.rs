/*!
Silences: an incident is detected, printed and counted as ever, but its
notifications wait. From two places:

- the annotation `opsctrl.dev/silence-until: <RFC 3339>` on a pod (a pod
  template's annotations are on every pod of the workload) or a namespace;
- `SILENCES_FILE`, a list of matchers (as routes) with a time window:

```yaml
silences:
  - match: {namespace: shop, type: [CrashLoopBackOff]}
    starts_at: "2026-12-02T22:00:00Z"   # optional: from start-up
    ends_at: "2026-12-03T02:00:00Z"
    comment: "Postgres migration, CHG-1234"
```

A bare list is read as the silences. Times are RFC 3339 (`Z` or an offset).
*/

use std::path::Path;

use serde_json::Value;

use super::file;
use super::matcher::{Facts, Matcher};
use crate::util::time::parse_rfc3339;

pub use crate::model::pod::SILENCE_ANNOTATION;

#[derive(Clone, Debug, PartialEq)]
pub struct Silence {
    /// Position in the file, from 1.
    pub number: usize,
    matcher: Matcher,
    pub starts_ms: Option<i64>,
    pub ends_ms: i64,
    pub comment: String,
}

impl Silence {
    /// Whether it silences `s` at `now_ms` (`starts_at` ≤ now < `ends_at`).
    pub fn silences(&self, s: &Facts, now_ms: i64) -> bool {
        self.starts_ms.is_none_or(|t| t <= now_ms)
            && now_ms < self.ends_ms
            && self.matcher.matches(s)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Silences {
    list: Vec<Silence>,
}

const FIELDS: &str = "match, starts_at, ends_at, comment";

fn time(o: &serde_json::Map<String, Value>, k: &str, at: &str, p: &mut Vec<String>) -> Option<i64> {
    let v = o.get(k)?;
    match v.as_str().and_then(|s| parse_rfc3339(s.trim())) {
        Some(secs) => Some(secs.saturating_mul(1000)),
        None => {
            p.push(format!(
                "{at}: {k}: must be an RFC 3339 time such as 2026-12-03T02:00:00Z"
            ));
            None
        }
    }
}

impl Silences {
    pub fn load(path: &Path) -> Result<Silences, Vec<String>> {
        let v = file::read(path).map_err(|e| vec![format!("SILENCES_FILE {e}")])?;
        Silences::parse(&v).map_err(|ps| {
            ps.into_iter()
                .map(|p| format!("SILENCES_FILE {}: {p}", path.display()))
                .collect()
        })
    }

    pub fn parse(v: &Value) -> Result<Silences, Vec<String>> {
        let mut problems = Vec::new();
        let list = match v {
            Value::Null => &[][..],
            Value::Array(a) => a.as_slice(),
            Value::Object(o) => {
                for k in o.keys().filter(|k| *k != "silences") {
                    problems.push(format!("{k}: unknown field (allowed: silences)"));
                }
                match o.get("silences") {
                    None | Some(Value::Null) => &[][..],
                    Some(Value::Array(a)) => a.as_slice(),
                    Some(_) => {
                        problems.push("silences: must be a list".into());
                        &[][..]
                    }
                }
            }
            _ => {
                return Err(vec![
                    "must be a mapping with silences, or a list of silences".into(),
                ]);
            }
        };
        let mut out = Vec::new();
        for (i, s) in list.iter().enumerate() {
            let at = format!("silence {}", i + 1);
            let Value::Object(o) = s else {
                problems.push(format!("{at}: must be a mapping of {FIELDS}"));
                continue;
            };
            for k in o.keys().filter(|k| !FIELDS.split(", ").any(|f| f == *k)) {
                problems.push(format!("{at}: {k}: unknown field (allowed: {FIELDS})"));
            }
            let matcher = Matcher::parse(
                o.get("match").unwrap_or(&Value::Null),
                &format!("{at}: match"),
                &mut problems,
            );
            let starts_ms = time(o, "starts_at", &at, &mut problems);
            let ends_ms = time(o, "ends_at", &at, &mut problems);
            if !o.contains_key("ends_at") {
                problems.push(format!("{at}: ends_at: missing (an RFC 3339 time)"));
            }
            if let (Some(s), Some(e)) = (starts_ms, ends_ms) {
                if e <= s {
                    problems.push(format!("{at}: ends_at: must be after starts_at"));
                }
            }
            let comment = o
                .get("comment")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            if comment.is_empty() {
                problems.push(format!("{at}: comment: missing (say why, and who)"));
            }
            if let Some(ends_ms) = ends_ms {
                out.push(Silence {
                    number: i + 1,
                    matcher,
                    starts_ms,
                    ends_ms,
                    comment: comment.to_string(),
                });
            }
        }
        if problems.is_empty() {
            Ok(Silences { list: out })
        } else {
            Err(problems)
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn uses_labels(&self) -> bool {
        self.list.iter().any(|x| x.matcher.uses_labels())
    }

    /// The silence in force for `s` at `now_ms` that ends last, if any.
    pub fn active(&self, s: &Facts, now_ms: i64) -> Option<&Silence> {
        self.list
            .iter()
            .filter(|x| x.silences(s, now_ms))
            .max_by_key(|x| x.ends_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::matcher::tests::{labels, subject};
    use serde_json::json;

    /// 2026-12-02T22:00:00Z and friends, in ms.
    const T22: i64 = 1_796_248_800_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    fn a_window_silences_from_its_start_until_its_end() {
        let s = Silences::parse(&json!({"silences": [
            {"match": {"namespace": "shop"}, "starts_at": "2026-12-02T22:00:00Z",
             "ends_at": "2026-12-03T02:00:00+02:00", "comment": "migration"},
            {"match": {"namespace": "other"}, "ends_at": "2026-12-02T23:00:00Z", "comment": "x"}
        ]}))
        .unwrap();
        let l = labels();
        let shop = subject(&l);
        assert_eq!(s.active(&shop, T22 - 1), None, "not yet");
        let on = s.active(&shop, T22).unwrap();
        assert_eq!((on.number, on.comment.as_str()), (1, "migration"));
        assert_eq!(on.ends_ms, T22 + 2 * HOUR, "the offset counts");
        assert!(s.active(&shop, T22 + 2 * HOUR - 1).is_some());
        assert_eq!(s.active(&shop, T22 + 2 * HOUR), None, "over at ends_at");
        let mut other = shop;
        other.namespace = "other";
        assert_eq!(
            s.active(&other, 0).map(|x| x.number),
            Some(2),
            "no start: already on"
        );
    }

    #[test]
    fn the_longest_of_overlapping_silences_is_the_one_in_force() {
        let s = Silences::parse(&json!([
            {"ends_at": "2026-12-02T23:00:00Z", "comment": "short"},
            {"match": {"type": "CrashLoopBackOff"}, "ends_at": "2026-12-03T01:00:00Z", "comment": "long"}
        ]))
        .unwrap();
        let l = labels();
        assert_eq!(s.active(&subject(&l), T22).map(|x| x.number), Some(2));
        assert!(Silences::parse(&json!(null)).unwrap().is_empty());
    }

    #[test]
    fn problems_name_the_silence_and_field() {
        let err = Silences::parse(&json!({"silences": [
            {"match": {"namespace": "shop"}, "ends_at": "tomorrow", "comment": "x"},
            {"starts_at": "2026-12-03T00:00:00Z", "ends_at": "2026-12-02T00:00:00Z"},
            {"match": {"sev": "high"}, "until": "x"}
        ]}))
        .unwrap_err()
        .join("\n");
        for want in [
            "silence 1: ends_at: must be an RFC 3339 time",
            "silence 2: ends_at: must be after starts_at",
            "silence 2: comment: missing",
            "silence 3: until: unknown field (allowed: match, starts_at, ends_at, comment)",
            "silence 3: match.sev: unknown field",
            "silence 3: ends_at: missing",
        ] {
            assert!(err.contains(want), "want {want:?} in\n{err}");
        }
    }
}
