//! Several kubeconfig files become one, the way kubectl combines `KUBECONFIG`.

use std::io;
use std::path::PathBuf;

use super::kubeconfig::{Kubeconfig, parse_kubeconfig};
use super::read::read_text;
use super::resolve::resolve;
use super::{ClusterConfig, Error};

/// Splits `KUBECONFIG` the way kubectl does: `:`-separated, empties and duplicates dropped.
pub(super) fn split_kubeconfig_list(list: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for part in list.split(':').filter(|p| !p.is_empty()) {
        let path = PathBuf::from(part);
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// Reads, parses and merges kubeconfig files. Missing files are skipped unless `required`.
pub(super) fn load_files(
    paths: &[PathBuf],
    required: bool,
    context: Option<&str>,
) -> Result<ClusterConfig, Error> {
    let mut files = Vec::new();
    let mut found = Vec::new();
    for path in paths {
        match read_text(path) {
            Ok(text) => {
                files.push(parse_kubeconfig(&text, path)?);
                found.push(path.clone());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !required => {
                log::debug!("kubeconfig {} does not exist, skipping", path.display());
            }
            Err(source) => {
                return Err(Error::Read {
                    path: path.clone(),
                    source,
                });
            }
        }
    }
    if files.is_empty() {
        return Err(Error::NoKubeconfigFiles {
            paths: paths.to_vec(),
        });
    }
    resolve(&merge(files), &found, context)
}

/// Merges kubeconfigs like kubectl: for each name the first file that defines it wins,
/// and `current-context` comes from the first file that sets it.
pub fn merge(files: Vec<Kubeconfig>) -> Kubeconfig {
    let mut merged = Kubeconfig::default();
    for file in files {
        if merged.current_context.is_none() {
            merged.current_context = file.current_context;
        }
        // Lookups take the first match, so appending keeps "first file wins".
        merged.clusters.extend(file.clusters);
        merged.users.extend(file.users);
        merged.contexts.extend(file.contexts);
    }
    merged
}
