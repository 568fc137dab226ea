/*!
Reading one setting: its `--flag` first, then its environment variable, then
its default; a bad value becomes a `Problem` naming the flag or variable it
came from, and reading goes on, so every problem is reported at once.
*/

use std::fmt;

use super::defs::SETTINGS;
use super::kinds::{Bool, Choice, Int, Kind, Number, Setting, Text};
use crate::secret::Secret;

/// One bad setting: which one, the value given, and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `WATCH_NAMESPACES` or `--watch-namespaces`, whichever the value came from.
    pub name: String,
    pub value: String,
    pub why: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.name, self.value, self.why)
    }
}

/// Raw values as given: a flag value if the flag was passed, else the env var.
pub trait Source {
    fn flag(&self, flag: &str) -> Option<String>;
    fn env(&self, env: &str) -> Option<String>;
}

/// Nothing set: every setting at its default (what the `Default`s are).
pub struct Unset;

impl Source for Unset {
    fn flag(&self, _: &str) -> Option<String> {
        None
    }
    fn env(&self, _: &str) -> Option<String> {
        None
    }
}

/// Most bytes read from a `*_FILE` secret: keys and tokens are far smaller,
/// and a path to a device (`/dev/zero`) must fail, not be read forever.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// A FIFO or device there is refused (`util::file`): start-up fails with
/// exit 2 naming the setting instead of hanging.
fn read_secret_file(path: &str) -> std::io::Result<String> {
    crate::util::file::read_regular_text(std::path::Path::new(path), MAX_SECRET_FILE)
}

pub struct Reader<'a> {
    pub source: &'a dyn Source,
    pub problems: Vec<Problem>,
}

impl<'a> Reader<'a> {
    pub fn new(source: &'a dyn Source) -> Reader<'a> {
        Reader {
            source,
            problems: Vec::new(),
        }
    }

    /// The value given and the name it came under; `None` when neither the
    /// flag nor the variable is set.
    pub fn given<K>(&self, s: &Setting<K>) -> Option<(String, String)> {
        self.given_as(s.env, s.flag)
    }

    // Not generic: one copy for every kind of setting.
    fn given_as(&self, env: &str, flag: &str) -> Option<(String, String)> {
        if let Some(v) = self.source.flag(flag) {
            return Some((flag.to_string(), v));
        }
        self.source.env(env).map(|v| (env.to_string(), v))
    }

    /// The value given, or the default as text, and the name to report it under.
    pub fn raw<K: Kind>(&self, s: &Setting<K>) -> (String, String) {
        self.given(s)
            .unwrap_or_else(|| (s.env.to_string(), s.kind.default_text()))
    }

    pub fn bad(&mut self, name: String, value: String, why: String) {
        self.problems.push(Problem { name, value, why });
    }

    /// A problem whose value must not be echoed (a key, a token, a URL with a token).
    pub fn bad_secret(&mut self, name: String, why: String) {
        self.bad(name, "<redacted>".into(), why);
    }

    /// A problem with the value given: "allowed: …".
    fn not_allowed<K: Kind>(&mut self, s: &Setting<K>, name: String, value: String) {
        let why = format!("allowed: {}", s.kind.allowed());
        self.bad(name, value, why);
    }

    /// The given value (trimmed) as `f` reads it, or the default when unset.
    /// A bad value is reported and the default stands in for it.
    fn typed<K: Kind, T>(
        &mut self,
        s: &Setting<K>,
        default: T,
        f: impl FnOnce(&str) -> Option<T>,
    ) -> T {
        let Some((name, value)) = self.given(s) else {
            return default;
        };
        match f(value.trim()) {
            Some(v) => v,
            None => {
                self.not_allowed(s, name, value);
                default
            }
        }
    }

    pub fn int(&mut self, s: &Setting<Int>) -> u64 {
        let k = s.kind;
        self.int_where(s, |n| k.accepts(n))
    }

    /// An integer that `ok` accepts, for a range with an exception (its
    /// `note` says which).
    pub fn int_where(&mut self, s: &Setting<Int>, ok: impl Fn(u64) -> bool) -> u64 {
        self.typed(s, s.kind.default, |v| {
            v.parse::<u64>().ok().filter(|&n| ok(n))
        })
    }

    pub fn number(&mut self, s: &Setting<Number>) -> f64 {
        let k = s.kind;
        self.typed(s, k.default, |v| {
            v.parse::<f64>().ok().filter(|&x| k.accepts(x))
        })
    }

    pub fn boolean(&mut self, s: &Setting<Bool>) -> bool {
        self.typed(s, s.kind.default, |v| {
            match v.to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            }
        })
    }

    pub fn choice<T: Copy + PartialEq + Sync>(&mut self, s: &Setting<Choice<T>>) -> T {
        self.typed(s, s.kind.default, |v| s.kind.find(v))
    }

    /// A text setting read by `f`: `Some` when valid (the default counts),
    /// `None` when reported as bad.
    pub fn text<T>(&mut self, s: &Setting<Text>, f: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        let (name, value) = self.raw(s);
        let v = f(value.trim());
        if v.is_none() {
            self.not_allowed(s, name, value);
        }
        v
    }

    /// A set, non-empty value (trimmed), or `None` when unset or empty.
    pub fn optional(&self, s: &Setting<Text>) -> Option<(String, String)> {
        let (name, value) = self.raw(s);
        let v = value.trim();
        (!v.is_empty()).then(|| (name, v.to_string()))
    }

    /// An optional text setting that `ok` accepts; `None` when unset, empty or bad.
    pub fn checked(&mut self, s: &Setting<Text>, ok: impl FnOnce(&str) -> bool) -> Option<String> {
        let (name, v) = self.optional(s)?;
        if ok(&v) {
            Some(v)
        } else {
            self.not_allowed(s, name, v);
            None
        }
    }

    /// An http(s) URL; a URL that may carry a token is never echoed.
    pub fn url(&mut self, s: &Setting<Text>, secret: bool) -> Option<String> {
        let (name, v) = self.optional(s)?;
        match super::validate::http_url(&v) {
            Some(u) => Some(u),
            None => {
                let why = format!("allowed: {}", s.kind.allowed);
                if secret {
                    self.bad_secret(name, why);
                } else {
                    self.bad(name, v, why);
                }
                None
            }
        }
    }

    /// `ENV` or `ENV_FILE` (never both): the secret, read and trimmed.
    pub fn secret(
        &mut self,
        s: &Setting<Text>,
        file: &Setting<Text>,
        check: fn(&str) -> bool,
    ) -> Option<Secret> {
        let direct = self.optional(s);
        let from_file = self.optional(file);
        match (direct, from_file) {
            (Some((name, _)), Some((fname, _))) => {
                self.bad_secret(
                    name,
                    format!("set both this and {fname}; allowed: one of them"),
                );
                None
            }
            (Some((name, v)), None) => {
                if check(&v) {
                    Some(Secret::new(v))
                } else {
                    let why = format!("allowed: {}", s.kind.allowed);
                    self.bad_secret(name, why);
                    None
                }
            }
            (None, Some((name, path))) => match read_secret_file(&path) {
                Ok(text) if check(text.trim()) => Some(Secret::new(text.trim())),
                Ok(_) => {
                    let why = format!(
                        "the file holds no usable value; allowed: {}",
                        s.kind.allowed
                    );
                    self.bad(name, path, why);
                    None
                }
                Err(e) => {
                    self.bad(name, path, format!("cannot read it: {e}"));
                    None
                }
            },
            (None, None) => None,
        }
    }

    /// Whether a problem was already reported for this setting, or for its
    /// `_FILE` form, under its variable or its flag.
    pub fn reported<K>(&self, s: &Setting<K>) -> bool {
        self.reported_as(s.env)
    }

    fn reported_as(&self, env: &str) -> bool {
        SETTINGS
            .iter()
            .filter(|o| o.env == env || o.env.strip_suffix("_FILE") == Some(env))
            .any(|o| {
                self.problems
                    .iter()
                    .any(|p| p.name == o.env || p.name == o.flag)
            })
    }

    /// Whether the user set this (to something not empty).
    pub fn is_given<K>(&self, s: &Setting<K>) -> bool {
        self.given(s).is_some_and(|(_, v)| !v.trim().is_empty())
    }

    /// A setting that only means something with another one.
    pub fn requires<K, O>(&mut self, s: &Setting<K>, other: &Setting<O>) {
        // One line per mistake: a value already reported as invalid gets no
        // "has no effect" line on top, and neither does a setting whose partner
        // was given but is invalid (it is not missing, it is wrong).
        if self.reported(s) || self.reported(other) {
            return;
        }
        if let Some((name, v)) = self.given(s).filter(|(_, v)| !v.trim().is_empty()) {
            self.bad(
                name,
                v,
                format!("has no effect without {}; set both or neither", other.env),
            );
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::Source;
    use std::collections::HashMap;

    /// Flags and variables as a test sets them.
    #[derive(Default)]
    pub struct Fake {
        pub flags: HashMap<String, String>,
        pub env: HashMap<String, String>,
    }

    impl Source for Fake {
        fn flag(&self, flag: &str) -> Option<String> {
            self.flags.get(flag).cloned()
        }
        fn env(&self, env: &str) -> Option<String> {
            self.env.get(env).cloned()
        }
    }
}
