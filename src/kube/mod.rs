/*!
Everything that talks to the Kubernetes API: where the cluster is and how to
authenticate (`config`, `auth`, `tls`), the HTTP client (`client`), and the
list+watch engine (`watch`, `backoff`, `store`, `types`).
*/

pub mod auth;
pub mod client;
pub mod config;
pub mod node_store;
pub mod node_types;
pub mod store;
pub mod tls;
pub mod types;
pub mod watch;
