//! Bounded file reads for kubeconfigs and the files they name.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Most bytes read from a kubeconfig or any file it names. Real ones are a
/// few KiB; a path to a device (`/dev/zero`) or to a huge log file must fail
/// with an error, not be read until memory runs out.
const MAX_FILE: u64 = 16 << 20;

pub(super) fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE {
        return Err(io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE >> 20
        )));
    }
    Ok(buf)
}

pub(super) fn read_text(path: &Path) -> io::Result<String> {
    String::from_utf8(read_bounded(path)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

pub(super) fn join_paths(paths: &[PathBuf]) -> String {
    let parts: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    parts.join(":")
}
