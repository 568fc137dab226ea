//! Reads `ROUTES_FILE` or `SILENCES_FILE`: JSON, or YAML (a file whose first
//! non-blank character is not `{` or `[`), into a `serde_json::Value` for
//! the checks that follow. Read once at start-up.

use std::path::Path;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;
use yaml_rust2::{Yaml, YamlLoader};

/// Most bytes such a file may have (a typo'd path to a huge file).
const MAX_FILE: u64 = 1024 * 1024;

/// The file's content as a JSON value; the error names the file.
pub fn read(path: &Path) -> Result<Value, String> {
    let at = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{at}: cannot read: {e}"))?;
    if meta.len() > MAX_FILE {
        return Err(format!("{at}: larger than {MAX_FILE} bytes"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{at}: cannot read: {e}"))?;
    parse(&text).map_err(|e| format!("{at}: {e}"))
}

/// JSON when it looks like JSON, else YAML.
pub fn parse(text: &str) -> Result<Value, String> {
    if text.trim_start().starts_with(['{', '[']) {
        return serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"));
    }
    if has_alias(text)? {
        // The loader copies an anchored node for every alias: a few lines of
        // nested aliases would take every byte of memory.
        return Err("YAML aliases (*name) are not accepted here".into());
    }
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    match docs.len() {
        0 => Ok(Value::Null),
        1 => to_json(&docs[0]),
        _ => Err("more than one YAML document".into()),
    }
}

fn has_alias(text: &str) -> Result<bool, String> {
    struct Aliases(bool);
    impl MarkedEventReceiver for Aliases {
        fn on_event(&mut self, ev: Event, _: Marker) {
            self.0 |= matches!(ev, Event::Alias(_));
        }
    }
    let mut seen = Aliases(false);
    Parser::new_from_str(text)
        .load(&mut seen, true)
        .map_err(|e| format!("not valid YAML: {e}"))?;
    Ok(seen.0)
}

fn to_json(y: &Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::Number((*i).into()),
        Yaml::Real(r) => match r.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => Value::String(r.clone()),
        },
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Real(r) => r.clone(),
                    _ => return Err("a mapping key that is not a plain scalar".into()),
                };
                m.insert(key, to_json(v)?);
            }
            Value::Object(m)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err("a YAML value that cannot be read".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::parse;
    use serde_json::json;

    #[test]
    fn json_and_yaml_read_the_same() {
        let yaml = "routes:\n  - name: shop\n    match: {namespace: shop, severity: [high]}\n    sinks: [webhook]\n    continue: true\n";
        let json = r#"{"routes":[{"name":"shop","match":{"namespace":"shop","severity":["high"]},"sinks":["webhook"],"continue":true}]}"#;
        assert_eq!(parse(yaml).unwrap(), parse(json).unwrap());
        assert_eq!(parse("").unwrap(), serde_json::Value::Null);
        assert_eq!(parse("- 1\n- 2.5\n").unwrap(), json!([1, 2.5]));
    }

    #[test]
    fn bad_files_say_why() {
        assert!(parse("{\"routes\": [").unwrap_err().contains("JSON"));
        assert!(parse("a: [1\n").unwrap_err().contains("YAML"));
        assert!(parse("a: &x [1]\nb: *x\n").unwrap_err().contains("aliases"));
        assert!(parse("a: 1\n---\nb: 2\n").unwrap_err().contains("document"));
    }
}
