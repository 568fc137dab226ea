//! Bounded file reads for kubeconfigs and the files they name.

use std::io;

use crate::util::file::read_regular;
use std::path::{Path, PathBuf};

/// Most bytes read from a kubeconfig or any file it names. Real ones are a
/// few KiB; a path to a device (`/dev/zero`) or to a huge log file must fail
/// with an error, not be read until memory runs out.
const MAX_FILE: u64 = 16 << 20;

/// Most bytes of a token file: bound service-account tokens are ~1 KiB, and
/// the file is re-read every minute, so a huge one is refused, not read.
pub const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// A FIFO or device there is refused (`util::file`), so start-up fails
/// with an error instead of hanging.
pub(super) fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    read_regular(path, MAX_FILE)
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
