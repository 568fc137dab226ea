//! Reading a small file that must be a regular file: kubeconfigs, CAs,
//! token files, `*_FILE` secrets. A FIFO would block the reader until
//! someone writes to it (start-up hangs silently, or the token re-read
//! holds the auth lock forever), and a device such as `/dev/zero` never
//! ends: both are refused with an error naming what the path is.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// Opening a FIFO for reading blocks until a writer appears, unless
/// non-blocking; on a regular file the flag changes nothing.
#[cfg(target_os = "linux")]
const O_NONBLOCK: i32 = 0o4000;
#[cfg(not(target_os = "linux"))]
const O_NONBLOCK: i32 = 0;

/// What a path that is not a regular file is, for the error.
fn kind(ft: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn not_regular(ft: fs::FileType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("is {}, not a regular file", kind(ft)),
    )
}

/// The whole of `path`, which must be a regular file of at most `max` bytes
/// (symbolic links are followed, as Kubernetes' Secret mounts need).
pub fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    // Checked before opening too, so a FIFO is refused on systems where
    // the non-blocking open is not available.
    let ft = fs::metadata(path)?.file_type();
    if !ft.is_file() {
        return Err(not_regular(ft));
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)?;
    // And after: the path may have been swapped in between.
    let ft = file.metadata()?.file_type();
    if !ft.is_file() {
        return Err(not_regular(ft));
    }
    let mut buf = Vec::new();
    file.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(io::Error::other(if max >= 1 << 20 {
            format!("larger than {} MiB", max >> 20)
        } else {
            format!("larger than {max} bytes")
        }));
    }
    Ok(buf)
}

/// `read_regular` as UTF-8 text.
pub fn read_regular_text(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, max)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("opsctrl-file-{}-{name}", std::process::id()));
        let _ = fs::remove_file(&d);
        d
    }

    #[test]
    fn a_regular_file_within_the_bound_is_read() {
        let p = tmp("ok");
        fs::write(&p, "token\n").unwrap();
        assert_eq!(read_regular(&p, 6).unwrap(), b"token\n");
        let e = read_regular(&p, 5).unwrap_err();
        assert!(e.to_string().contains("larger than 5 bytes"), "{e}");
        fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_fifo_is_refused_at_once_instead_of_blocking() {
        let p = tmp("fifo");
        let made = Command::new("mkfifo").arg(&p).status();
        if !made.is_ok_and(|s| s.success()) {
            return; // no mkfifo here: nothing to test against
        }
        let e = read_regular(&p, 1024).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        fs::remove_file(&p).unwrap();
    }

    #[test]
    fn devices_and_directories_are_refused() {
        let e = read_regular(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        let e = read_regular(&std::env::temp_dir(), 1024).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
    }
}
