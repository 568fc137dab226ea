use serde_json::{Value, json};

/// Fields of one protobuf message: (field number, wire type, varint or bytes).
fn fields(mut b: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        match key & 7 {
            0 => {
                varint(&mut b)?;
            }
            2 => {
                let len = usize::try_from(varint(&mut b)?).ok()?;
                if len > b.len() {
                    return None;
                }
                out.push((key >> 3, &b[..len]));
                b = &b[len..];
            }
            1 => b = b.get(8..)?,
            5 => b = b.get(4..)?,
            _ => return None,
        }
    }
    Some(out)
}

fn varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn strings(b: &[u8], names: &[(u64, &str)]) -> Option<Value> {
    let mut m = serde_json::Map::new();
    for (n, v) in fields(b)? {
        if let Some((_, name)) = names.iter().find(|(f, _)| *f == n) {
            m.insert(name.to_string(), json!(String::from_utf8_lossy(v)));
        }
    }
    Some(Value::Object(m))
}

/// The k8s protobuf envelope ("k8s\0" + runtime.Unknown{typeMeta=1, raw=2}) around a
/// SelfSubjectAccessReview{spec=2{resourceAttributes=1, nonResourceAttributes=2}}, as JSON.
pub(super) fn decode_ssar(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(b"k8s\0")?;
    let raw = fields(unknown)?.into_iter().find(|(n, _)| *n == 2)?.1;
    let spec = fields(raw)?.into_iter().find(|(n, _)| *n == 2)?.1;
    let mut out = serde_json::Map::new();
    for (n, v) in fields(spec)? {
        match n {
            1 => {
                let names = [
                    (1, "namespace"),
                    (2, "verb"),
                    (3, "group"),
                    (4, "version"),
                    (5, "resource"),
                    (6, "subresource"),
                    (7, "name"),
                ];
                out.insert("resourceAttributes".into(), strings(v, &names)?);
            }
            2 => {
                out.insert(
                    "nonResourceAttributes".into(),
                    strings(v, &[(1, "path"), (2, "verb")])?,
                );
            }
            _ => {}
        }
    }
    Some(
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": out}),
    )
}
