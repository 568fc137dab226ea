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
    let text = read_text(path, MAX_FILE).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A regular file of at most `max` bytes, as UTF-8. Never more than `max`
/// is read, and a FIFO or device (which may never end) is refused unread.
pub fn read_text(path: &Path, max: u64) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".into())
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
    fn only_small_regular_files_are_read() {
        use super::read_text;
        let dir = std::env::temp_dir().join(format!("opsctrl-routing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("big");
        std::fs::write(&f, "x".repeat(100)).unwrap();
        assert_eq!(read_text(&f, 100).unwrap().len(), 100);
        assert!(
            read_text(&f, 99)
                .unwrap_err()
                .contains("larger than 99 bytes")
        );
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert!(read_text(&f, 99).unwrap_err().contains("UTF-8"));
        assert!(
            read_text(&dir, 99)
                .unwrap_err()
                .contains("not a regular file")
        );
        assert!(
            read_text(std::path::Path::new("/dev/zero"), 99)
                .unwrap_err()
                .contains("not a regular file")
        );
        assert!(
            read_text(&dir.join("nope"), 99)
                .unwrap_err()
                .contains("cannot read")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_files_say_why() {
        assert!(parse("{\"routes\": [").unwrap_err().contains("JSON"));
        assert!(parse("a: [1\n").unwrap_err().contains("YAML"));
        assert!(parse("a: &x [1]\nb: *x\n").unwrap_err().contains("aliases"));
        assert!(parse("a: 1\n---\nb: 2\n").unwrap_err().contains("document"));
    }
}
