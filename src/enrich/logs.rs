/*!
The failing container's log tail (`INCLUDE_LOGS`, on by default; needs `get`
on `pods/log`).

`previous=true` for a container that has restarted (the crashed run, not
the fresh one that has printed nothing yet), `tailLines=50`,
`limitBytes=16384`: the API server does the cutting, so a chatty container
costs at most 16 KiB. Every line is redacted before it is kept.
*/

use std::time::Duration;

use crate::kube::client::{Client, Error};

pub const TAIL_LINES: &str = "50";
pub const LIMIT_BYTES: u64 = 16 * 1024;
/// Longest line kept (a minified JSON log line can be the whole 16 KiB).
const MAX_LINE: usize = 500;

/// Splits a log body into kept lines: trailing `\r` and blank lines
/// dropped, long lines cut, each passed through `redact`.
pub fn lines(body: &[u8], redact: &dyn Fn(&str) -> String) -> Vec<String> {
    String::from_utf8_lossy(body)
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cut: String = l.chars().take(MAX_LINE).collect();
            let cut = if cut.len() < l.len() {
                format!("{cut}…")
            } else {
                cut
            };
            redact(&cut)
        })
        .collect()
}

/// Reads the log tail of `container` in `pod`.
pub fn fetch(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    previous: bool,
    timeout: Duration,
    redact: &dyn Fn(&str) -> String,
) -> Result<Vec<String>, Error> {
    let path = format!("/api/v1/namespaces/{namespace}/pods/{pod}/log");
    let limit = LIMIT_BYTES.to_string();
    let body = client.get_bounded(
        &path,
        &[
            ("container", container),
            ("previous", if previous { "true" } else { "false" }),
            ("tailLines", TAIL_LINES),
            ("limitBytes", &limit),
        ],
        timeout,
        // The server honours limitBytes; this only guards against one that does not.
        LIMIT_BYTES * 2,
    )?;
    Ok(lines(&body, redact))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_cut_and_redacted() {
        let long = "y".repeat(2000);
        let body = format!("first\r\n\n  \nsecret=abc\n{long}\n");
        let out = lines(body.as_bytes(), &|l: &str| l.replace("abc", "[REDACTED]"));
        assert_eq!(out[0], "first");
        assert_eq!(out[1], "secret=[REDACTED]");
        assert_eq!(out.len(), 3);
        assert!(out[2].ends_with('…') && out[2].chars().count() == MAX_LINE + 1);
    }

    #[test]
    fn invalid_utf8_is_not_an_error() {
        let out = lines(b"ok\n\xff\xfe bad\n", &|l: &str| l.to_string());
        assert_eq!(out.len(), 2);
    }
}
