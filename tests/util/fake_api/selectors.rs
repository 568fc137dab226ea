//! Label and field selectors, parsed and applied like the apiserver does.

use std::collections::BTreeMap;

use super::super::http::Request;
use super::status::ApiError;
use super::store::Obj;

#[derive(Clone, Debug)]
pub(super) enum LabelReq {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

impl LabelReq {
    pub(super) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let num = |k: &str| labels.get(k).and_then(|v| v.parse::<i64>().ok());
        match self {
            LabelReq::Eq(k, v) => labels.get(k) == Some(v),
            LabelReq::Ne(k, v) => labels.get(k) != Some(v),
            LabelReq::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            LabelReq::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            LabelReq::Exists(k) => labels.contains_key(k),
            LabelReq::NotExists(k) => !labels.contains_key(k),
            LabelReq::Gt(k, n) => num(k).is_some_and(|v| v > *n),
            LabelReq::Lt(k, n) => num(k).is_some_and(|v| v < *n),
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct FieldReq {
    pub(super) field: String,
    pub(super) eq: bool,
    pub(super) value: String,
}

/// What a LIST or WATCH selects: namespace scope (from the path) and selectors.
#[derive(Clone, Debug, Default)]
pub(super) struct Filter {
    pub(super) namespace: Option<String>,
    pub(super) labels: Vec<LabelReq>,
    pub(super) fields: Vec<FieldReq>,
}

impl Filter {
    pub(super) fn matches(&self, o: &Obj) -> bool {
        if let Some(ns) = &self.namespace {
            if o.ns() != ns {
                return false;
            }
        }
        self.labels.iter().all(|r| r.matches(&o.labels))
            && self.fields.iter().all(|r| {
                let v = o
                    .fields
                    .iter()
                    .find(|(f, _)| *f == r.field)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("");
                (v == r.value) == r.eq
            })
    }

    pub(super) fn has_selectors(&self) -> bool {
        !self.labels.is_empty() || !self.fields.is_empty()
    }

    pub(super) fn from_query(
        req: &Request,
        namespace: Option<&str>,
        supported_fields: &[&str],
    ) -> Result<Filter, ApiError> {
        let labels = parse_label_selector(req.param("labelSelector").unwrap_or(""))
            .map_err(|m| ApiError::new(400, m))?;
        let fields =
            parse_field_selector(req.param("fieldSelector").unwrap_or(""), supported_fields)
                .map_err(|m| ApiError::new(400, m))?;
        Ok(Filter {
            namespace: namespace.map(str::to_string),
            labels,
            fields,
        })
    }
}

/// Split on commas outside parentheses (`a in (x,y),b` is two requirements).
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_label_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn valid_label_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn parse_label_selector(s: &str) -> Result<Vec<LabelReq>, String> {
    let bad = |why: String| Err(format!("unable to parse requirement: {why}"));
    let mut out = Vec::new();
    if s.trim().is_empty() {
        return Ok(out);
    }
    for part in split_top_level(s) {
        let p = part.trim();
        if p.is_empty() {
            return bad("found ',', expected: !, identifier, or 'end of string'".into());
        }
        let key_ok = |k: &str| -> Result<String, String> {
            if valid_label_key(k) {
                Ok(k.to_string())
            } else {
                Err(format!(
                    "unable to parse requirement: invalid label key \"{k}\""
                ))
            }
        };
        let val_ok = |v: &str| -> Result<String, String> {
            if valid_label_value(v) {
                Ok(v.to_string())
            } else {
                Err(format!(
                    "unable to parse requirement: invalid label value: \"{v}\""
                ))
            }
        };
        let req = if let Some(k) = p.strip_prefix('!') {
            LabelReq::NotExists(key_ok(k.trim())?)
        } else if let Some(i) = p.find('(') {
            if !p.ends_with(')') {
                return bad(format!("found '{p}', expected: ')'"));
            }
            let mut head = p[..i].split_whitespace();
            let (k, op) = (head.next().unwrap_or(""), head.next().unwrap_or(""));
            if head.next().is_some() {
                return bad(format!("found '{p}', expected: 'in' or 'notin'"));
            }
            let vals = p[i + 1..p.len() - 1]
                .split(',')
                .map(|v| val_ok(v.trim()))
                .collect::<Result<Vec<_>, _>>()?;
            match op {
                "in" => LabelReq::In(key_ok(k)?, vals),
                "notin" => LabelReq::NotIn(key_ok(k)?, vals),
                _ => {
                    return bad(format!(
                        "found '{op}', expected: 'in', 'notin', '=', '==', '!=', 'gt', 'lt'"
                    ));
                }
            }
        } else if let Some((k, v)) = p.split_once("!=") {
            LabelReq::Ne(key_ok(k.trim())?, val_ok(v.trim())?)
        } else if let Some((k, v)) = p.split_once("==") {
            LabelReq::Eq(key_ok(k.trim())?, val_ok(v.trim())?)
        } else if let Some((k, v)) = p.split_once('=') {
            LabelReq::Eq(key_ok(k.trim())?, val_ok(v.trim())?)
        } else if let Some((k, v)) = p.split_once('>') {
            LabelReq::Gt(
                key_ok(k.trim())?,
                v.trim().parse().map_err(|_| {
                    format!("unable to parse requirement: invalid integer value \"{v}\"")
                })?,
            )
        } else if let Some((k, v)) = p.split_once('<') {
            LabelReq::Lt(
                key_ok(k.trim())?,
                v.trim().parse().map_err(|_| {
                    format!("unable to parse requirement: invalid integer value \"{v}\"")
                })?,
            )
        } else {
            LabelReq::Exists(key_ok(p)?)
        };
        out.push(req);
    }
    Ok(out)
}

/// Field selectors: `f=v`, `f==v`, `f!=v`, comma-AND, `\` escapes; unsupported fields are
/// rejected with the apiserver's message.
fn parse_field_selector(s: &str, supported: &[&str]) -> Result<Vec<FieldReq>, String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                // Keep the escape so an escaped '=' is not taken for the operator below.
                let last = parts.last_mut().expect("non-empty");
                last.push('\\');
                if let Some(n) = chars.next() {
                    last.push(n);
                }
            }
            ',' => parts.push(String::new()),
            c => parts.last_mut().expect("non-empty").push(c),
        }
    }
    let unescape = |v: &str| {
        let mut o = String::new();
        let mut it = v.chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                if let Some(n) = it.next() {
                    o.push(n);
                }
            } else {
                o.push(c);
            }
        }
        o
    };
    let mut out = Vec::new();
    for p in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let op_at = |op: &str| {
            let mut prev_escape = false;
            for (i, c) in p.char_indices() {
                if !prev_escape && p[i..].starts_with(op) {
                    return Some(i);
                }
                prev_escape = c == '\\' && !prev_escape;
            }
            None
        };
        let (field, eq, value) = if let Some(i) = op_at("!=") {
            (&p[..i], false, &p[i + 2..])
        } else if let Some(i) = op_at("==") {
            (&p[..i], true, &p[i + 2..])
        } else if let Some(i) = op_at("=") {
            (&p[..i], true, &p[i + 1..])
        } else {
            return Err(format!("invalid selector: '{s}'; can't understand '{p}'"));
        };
        let field = field.trim();
        if !supported.contains(&field) {
            return Err(format!("field label not supported: {field}"));
        }
        out.push(FieldReq {
            field: field.to_string(),
            eq,
            value: unescape(value),
        });
    }
    Ok(out)
}
