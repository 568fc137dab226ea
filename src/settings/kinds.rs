/*!
The kinds of setting: what a value must look like, its typed default and
its bounds. `Setting<K>` is one definition; `Spec` is the same definition
with its kind erased, for the lists that show every setting (`--help`, the
README table, the tests).

The text shown for a default and for what is allowed is derived from the
typed values, so a bound or a default is written once.
*/

/// One setting: its names, its kind (type, default, bounds) and its doc.
pub struct Setting<K: 'static> {
    /// The environment variable, e.g. `HEALTH_CHECK_PORT`.
    pub env: &'static str,
    /// The long flag, with its leading `--`.
    pub flag: &'static str,
    /// What the flag takes, for `--help` (`N`, `MS`, `URL`…).
    pub value: &'static str,
    pub kind: K,
    /// One line: what the setting does.
    pub doc: &'static str,
}

/// A setting of any kind.
pub type Spec = Setting<&'static dyn Kind>;

impl<K: Kind> Setting<K> {
    /// This definition, kind erased, for `SETTINGS`.
    pub const fn spec(&'static self) -> Spec {
        Setting {
            env: self.env,
            flag: self.flag,
            value: self.value,
            kind: &self.kind,
            doc: self.doc,
        }
    }
}

/// What every kind can say about itself.
pub trait Kind: Sync {
    /// The default as a user would type it; empty when there is none.
    fn default_text(&self) -> String;
    /// What a value must be, for error messages, `--help` and the README.
    fn allowed(&self) -> String;
}

/// A whole number in `min..=max`.
#[derive(Clone, Copy, Debug)]
pub struct Int {
    pub default: u64,
    pub min: u64,
    pub max: u64,
    /// Appended to the allowed range (a rule against another setting, a special value).
    pub note: &'static str,
}

impl Int {
    pub fn accepts(&self, n: u64) -> bool {
        (self.min..=self.max).contains(&n)
    }
}

impl Kind for Int {
    fn default_text(&self) -> String {
        self.default.to_string()
    }
    fn allowed(&self) -> String {
        format!("an integer from {} to {}{}", self.min, self.max, self.note)
    }
}

/// A finite number in `min..=max`.
#[derive(Clone, Copy, Debug)]
pub struct Number {
    pub default: f64,
    pub min: f64,
    pub max: f64,
}

impl Number {
    pub fn accepts(&self, x: f64) -> bool {
        x.is_finite() && (self.min..=self.max).contains(&x)
    }
}

impl Kind for Number {
    fn default_text(&self) -> String {
        self.default.to_string()
    }
    fn allowed(&self) -> String {
        format!("a number from {} to {}", self.min, self.max)
    }
}

/// `true` or `false`, in any case (as the original accepted).
#[derive(Clone, Copy, Debug)]
pub struct Bool {
    pub default: bool,
}

impl Kind for Bool {
    fn default_text(&self) -> String {
        self.default.to_string()
    }
    fn allowed(&self) -> String {
        "true or false".into()
    }
}

/// One of a few names, in any case, each standing for a value.
#[derive(Debug)]
pub struct Choice<T: 'static> {
    pub default: T,
    pub choices: &'static [(&'static str, T)],
}

impl<T: Copy + PartialEq> Choice<T> {
    pub fn find(&self, name: &str) -> Option<T> {
        self.choices
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    }

    /// The name a value is spelt with.
    pub fn name_of(&self, value: T) -> &'static str {
        self.choices
            .iter()
            .find(|(_, v)| *v == value)
            .map_or("", |(n, _)| n)
    }
}

impl<T: Copy + PartialEq + Sync> Kind for Choice<T> {
    fn default_text(&self) -> String {
        self.name_of(self.default).to_string()
    }
    fn allowed(&self) -> String {
        let names: Vec<&str> = self.choices.iter().map(|(n, _)| *n).collect();
        match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

/// Free text, checked by its own code in `resolve` (namespaces, URLs, paths,
/// secrets…), so what is allowed is said in words.
#[derive(Clone, Copy, Debug)]
pub struct Text {
    /// Empty: none.
    pub default: &'static str,
    pub allowed: &'static str,
}

impl Kind for Text {
    fn default_text(&self) -> String {
        self.default.to_string()
    }
    fn allowed(&self) -> String {
        self.allowed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_texts_are_derived_from_the_bounds() {
        let int = Int {
            default: 5,
            min: 0,
            max: 10_080,
            note: " (0 = never)",
        };
        assert_eq!(int.allowed(), "an integer from 0 to 10080 (0 = never)");
        assert_eq!(int.default_text(), "5");
        let n = Number {
            default: 2.0,
            min: 1.1,
            max: 10.0,
        };
        assert_eq!(
            (n.allowed().as_str(), n.default_text().as_str()),
            ("a number from 1.1 to 10", "2")
        );
        let two = Choice {
            default: 1,
            choices: &[("a", 0), ("b", 1)],
        };
        assert_eq!(
            (two.allowed(), two.default_text()),
            ("a or b".into(), "b".into())
        );
        let three = Choice {
            default: 0,
            choices: &[("a", 0), ("b", 1), ("c", 2)],
        };
        assert_eq!(three.allowed(), "a, b or c");
        assert_eq!(three.find("B"), Some(1));
        assert_eq!(three.find("d"), None);
    }
}
