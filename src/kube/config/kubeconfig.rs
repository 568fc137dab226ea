//! Kubeconfig text to typed entries, as written: no file is read and nothing is resolved here.

use std::path::{Path, PathBuf};

use yaml_rust2::yaml::Hash;
use yaml_rust2::{ScanError, Yaml, YamlLoader};

use super::Error;
use crate::secret::Secret;

/// A parsed kubeconfig, or several merged. Entries remember the file that
/// defined them, because relative paths resolve against that file's directory.
#[derive(Clone, Default)]
pub struct Kubeconfig {
    pub current_context: Option<String>,
    pub clusters: Vec<Named<KubeCluster>>,
    pub users: Vec<Named<KubeUser>>,
    pub contexts: Vec<Named<KubeContext>>,
}

#[derive(Clone, Debug)]
pub struct Named<T> {
    pub name: String,
    pub file: PathBuf,
    pub value: T,
}

/// `clusters[].cluster`, as written.
#[derive(Clone, Debug, Default)]
pub struct KubeCluster {
    pub server: Option<String>,
    pub certificate_authority: Option<String>,
    pub certificate_authority_data: Option<String>,
    pub insecure_skip_tls_verify: bool,
    pub tls_server_name: Option<String>,
}

/// `users[].user`, as written. No `Debug`: user blocks hold credentials.
#[derive(Clone, Default)]
pub struct KubeUser {
    pub client_certificate: Option<String>,
    pub client_certificate_data: Option<String>,
    pub client_key: Option<String>,
    pub client_key_data: Option<Secret>,
    pub token: Option<Secret>,
    pub token_file: Option<String>,
    pub exec: Option<KubeExec>,
    /// The `auth-provider` name (e.g. `gcp`, `oidc`); its config is never read.
    pub auth_provider: Option<String>,
    /// `username`/`password` were set.
    pub basic_auth: bool,
}

/// `users[].user.exec`, as written.
#[derive(Clone, Default)]
pub struct KubeExec {
    pub api_version: Option<String>,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub install_hint: Option<String>,
    pub provide_cluster_info: bool,
}

/// `contexts[].context`, as written.
#[derive(Clone, Debug, Default)]
pub struct KubeContext {
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub namespace: Option<String>,
}

/// Parses one kubeconfig file's text. `path` is recorded on every entry and used in errors.
pub fn parse_kubeconfig(text: &str, path: &Path) -> Result<Kubeconfig, Error> {
    let yaml_error = |source| Error::Yaml {
        path: path.to_path_buf(),
        source,
    };
    if expanded_nodes(text).map_err(yaml_error)? > MAX_YAML_NODES {
        return Err(Error::Malformed {
            path: path.to_path_buf(),
            entry: "top level".to_owned(),
            problem: format!(
                "its YAML aliases expand to more than {MAX_YAML_NODES} nodes; a kubeconfig needs a few hundred"
            ),
        });
    }
    let docs = YamlLoader::load_from_str(text).map_err(yaml_error)?;
    let root = match docs.first() {
        // An empty file is an empty config, as with kubectl.
        None | Some(Yaml::Null) => return Ok(Kubeconfig::default()),
        Some(Yaml::Hash(hash)) => Fields {
            hash,
            path,
            entry: "top level".to_owned(),
        },
        Some(_) => {
            return Err(Error::Malformed {
                path: path.to_path_buf(),
                entry: "top level".to_owned(),
                problem: "must be a mapping".to_owned(),
            });
        }
    };
    Ok(Kubeconfig {
        current_context: root.string("current-context")?,
        clusters: named_list(&root, "clusters", "cluster", parse_cluster)?,
        users: named_list(&root, "users", "user", parse_user)?,
        contexts: named_list(&root, "contexts", "context", parse_context)?,
    })
}

/// Most YAML nodes a kubeconfig may expand to. The loader copies an anchored
/// node for every alias, so a few hundred bytes of nested aliases (a "billion
/// laughs") would otherwise take every byte of memory.
const MAX_YAML_NODES: u64 = 1_000_000;

/// How many nodes `text` holds once its aliases are expanded, counted from the
/// parser's events (linear in the text) before the loader expands anything.
fn expanded_nodes(text: &str) -> Result<u64, ScanError> {
    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
    use yaml_rust2::scanner::Marker;

    #[derive(Default)]
    struct Count {
        /// Node counts of the open sequences and mappings.
        open: Vec<(usize, u64)>,
        /// Expanded size of each anchor, by anchor id.
        anchors: std::collections::HashMap<usize, u64>,
        total: u64,
    }
    impl Count {
        fn node(&mut self, anchor: usize, size: u64) {
            if anchor > 0 {
                self.anchors.insert(anchor, size);
            }
            match self.open.last_mut() {
                Some((_, n)) => *n = n.saturating_add(size),
                None => self.total = self.total.saturating_add(size),
            }
        }
    }
    impl MarkedEventReceiver for Count {
        fn on_event(&mut self, ev: Event, _: Marker) {
            match ev {
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    self.open.push((anchor, 1));
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    if let Some((anchor, size)) = self.open.pop() {
                        self.node(anchor, size);
                    }
                }
                Event::Scalar(_, _, anchor, _) => self.node(anchor, 1),
                Event::Alias(id) => {
                    let size = self.anchors.get(&id).copied().unwrap_or(1);
                    self.node(0, size);
                }
                _ => {}
            }
        }
    }
    let mut count = Count::default();
    Parser::new_from_str(text).load(&mut count, true)?;
    Ok(count.total)
}

fn parse_cluster(m: &Fields) -> Result<KubeCluster, Error> {
    Ok(KubeCluster {
        server: m.string("server")?,
        certificate_authority: m.string("certificate-authority")?,
        certificate_authority_data: m.string("certificate-authority-data")?,
        insecure_skip_tls_verify: m.boolean("insecure-skip-tls-verify")?,
        tls_server_name: m.string("tls-server-name")?,
    })
}

fn parse_user(m: &Fields) -> Result<KubeUser, Error> {
    let exec = match m.mapping("exec")? {
        Some(e) => Some(parse_exec(&e)?),
        None => None,
    };
    // Only the provider's name is read: its config block holds tokens.
    let auth_provider = match m.mapping("auth-provider")? {
        Some(p) => Some(p.string("name")?.unwrap_or_else(|| "unnamed".to_owned())),
        None => None,
    };
    Ok(KubeUser {
        client_certificate: m.string("client-certificate")?,
        client_certificate_data: m.string("client-certificate-data")?,
        client_key: m.string("client-key")?,
        client_key_data: m.string("client-key-data")?.map(Secret::new),
        token: m.string("token")?.map(Secret::new),
        token_file: m.string("tokenFile")?,
        exec,
        auth_provider,
        basic_auth: m.get("username").is_some() || m.get("password").is_some(),
    })
}

fn parse_exec(m: &Fields) -> Result<KubeExec, Error> {
    let mut args = Vec::new();
    for (i, arg) in m.list("args")?.iter().enumerate() {
        match arg {
            Yaml::String(s) => args.push(s.clone()),
            _ => return Err(m.wrong(&format!("args[{i}]"), "a string")),
        }
    }
    let mut env = Vec::new();
    for (i, item) in m.list("env")?.iter().enumerate() {
        let Yaml::Hash(hash) = item else {
            return Err(m.wrong(&format!("env[{i}]"), "a mapping with name and value"));
        };
        let entry = Fields {
            hash,
            path: m.path,
            entry: format!("{}: exec env[{i}]", m.entry),
        };
        let Some(name) = entry.string("name")? else {
            return Err(entry.wrong("name", "set"));
        };
        env.push((name, entry.string("value")?.unwrap_or_default()));
    }
    Ok(KubeExec {
        api_version: m.string("apiVersion")?,
        command: m.string("command")?,
        args,
        env,
        install_hint: m.string("installHint")?,
        provide_cluster_info: m.boolean("provideClusterInfo")?,
    })
}

fn parse_context(m: &Fields) -> Result<KubeContext, Error> {
    Ok(KubeContext {
        cluster: m.string("cluster")?,
        user: m.string("user")?,
        namespace: m.string("namespace")?,
    })
}

/// Parses `clusters`/`users`/`contexts`: a list of `{name, <item_key>: {...}}`.
fn named_list<T: Default>(
    root: &Fields,
    list_key: &str,
    item_key: &str,
    parse: fn(&Fields) -> Result<T, Error>,
) -> Result<Vec<Named<T>>, Error> {
    let mut out = Vec::new();
    for (i, item) in root.list(list_key)?.iter().enumerate() {
        let label = format!("{list_key}[{i}]");
        let Yaml::Hash(hash) = item else {
            return Err(Error::Malformed {
                path: root.path.to_path_buf(),
                entry: label,
                problem: "must be a mapping".to_owned(),
            });
        };
        let item_fields = Fields {
            hash,
            path: root.path,
            entry: label,
        };
        let Some(name) = item_fields.string("name")? else {
            return Err(item_fields.wrong("name", "set"));
        };
        let mut inner = item_fields.mapping(item_key)?;
        let value = match inner.as_mut() {
            Some(fields) => {
                fields.entry = format!("{item_key} \"{name}\"");
                parse(fields)?
            }
            None => T::default(),
        };
        out.push(Named {
            name,
            file: root.path.to_path_buf(),
            value,
        });
    }
    Ok(out)
}

/// Typed access to one YAML mapping; errors name the file, the entry and the field,
/// never the value (it may be a credential).
struct Fields<'a> {
    hash: &'a Hash,
    path: &'a Path,
    entry: String,
}

impl<'a> Fields<'a> {
    /// The value of `key`, treating `null` like a missing key (as kubectl does).
    fn get(&self, key: &str) -> Option<&'a Yaml> {
        match self.hash.get(&Yaml::String(key.to_owned())) {
            None | Some(Yaml::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn wrong(&self, key: &str, expected: &str) -> Error {
        Error::Malformed {
            path: self.path.to_path_buf(),
            entry: self.entry.clone(),
            problem: format!("{key} must be {expected}"),
        }
    }

    /// A string field; empty strings count as unset, like Go's zero values.
    fn string(&self, key: &str) -> Result<Option<String>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Yaml::String(s)) if s.is_empty() => Ok(None),
            Some(Yaml::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    fn boolean(&self, key: &str) -> Result<bool, Error> {
        match self.get(key) {
            None => Ok(false),
            Some(Yaml::Boolean(b)) => Ok(*b),
            Some(_) => Err(self.wrong(key, "true or false")),
        }
    }

    fn list(&self, key: &str) -> Result<&'a [Yaml], Error> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Yaml::Array(items)) => Ok(items),
            Some(_) => Err(self.wrong(key, "a list")),
        }
    }

    fn mapping(&self, key: &str) -> Result<Option<Fields<'a>>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Yaml::Hash(hash)) => Ok(Some(Fields {
                hash,
                path: self.path,
                entry: format!("{}: {key}", self.entry),
            })),
            Some(_) => Err(self.wrong(key, "a mapping")),
        }
    }
}
