//! What can go wrong finding and checking the cluster configuration.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;

use yaml_rust2::ScanError;

use super::Origin;
use super::read::join_paths;

#[derive(Debug)]
pub enum Error {
    /// A kubeconfig file could not be read.
    Read {
        path: PathBuf,
        source: io::Error,
    },
    /// A kubeconfig file is not YAML (or JSON).
    Yaml {
        path: PathBuf,
        source: ScanError,
    },
    /// A kubeconfig entry has the wrong shape; `entry` is e.g. `user "admin"`.
    Malformed {
        path: PathBuf,
        entry: String,
        problem: String,
    },
    /// `KUBECONFIG` lists only files that do not exist.
    NoKubeconfigFiles {
        paths: Vec<PathBuf>,
    },
    /// No source applies at all.
    NothingFound {
        reason: String,
    },
    NoCurrentContext {
        paths: Vec<PathBuf>,
    },
    UnknownContext {
        paths: Vec<PathBuf>,
        context: String,
        available: Vec<String>,
    },
    /// The chosen configuration is incomplete or inconsistent.
    Invalid {
        origin: Origin,
        problem: String,
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read { path, source } => {
                write!(f, "cannot read kubeconfig {}: {source}", path.display())
            }
            Error::Yaml { path, source } => {
                write!(
                    f,
                    "kubeconfig {} is not valid YAML: {source}",
                    path.display()
                )
            }
            Error::Malformed {
                path,
                entry,
                problem,
            } => write!(f, "kubeconfig {}: {entry}: {problem}", path.display()),
            Error::NoKubeconfigFiles { paths } => write!(
                f,
                "none of the files in KUBECONFIG exist: {}",
                join_paths(paths)
            ),
            Error::NothingFound { reason } => {
                write!(f, "no cluster configuration found: {reason}")
            }
            Error::NoCurrentContext { paths } => write!(
                f,
                "kubeconfig {}: no current-context; pass --context",
                join_paths(paths)
            ),
            Error::UnknownContext {
                paths,
                context,
                available,
            } => {
                write!(
                    f,
                    "kubeconfig {}: context \"{context}\" not found",
                    join_paths(paths)
                )?;
                if available.is_empty() {
                    f.write_str(" (no contexts defined)")
                } else {
                    let names: Vec<String> = available.iter().map(|n| format!("\"{n}\"")).collect();
                    write!(f, " (available: {})", names.join(", "))
                }
            }
            Error::Invalid {
                origin,
                problem,
                source,
            } => {
                write!(f, "{origin}: {problem}")?;
                match source {
                    Some(source) => write!(f, ": {source}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Read { source, .. } => Some(source),
            Error::Yaml { source, .. } => Some(source),
            Error::Invalid {
                source: Some(source),
                ..
            } => Some(source.as_ref()),
            _ => None,
        }
    }
}
