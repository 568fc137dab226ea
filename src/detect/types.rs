//! Moved to `crate::model::finding`; this re-export keeps old paths building.
pub use crate::model::finding::*;
