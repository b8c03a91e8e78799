//! Why the fast reader left a text to serde_yaml_ng: the crate's one error type, shared by the
//! serde side (`fast`) and the block event source (`block`). Knows nothing of either.

use serde::de;

/// Why the fast reader left a text to serde_yaml_ng. Never shown to an operator: the plain
/// reader decides what the text means, and words any error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Declined {
    /// A construct the fast reader does not take (anchors, tags, block scalars, tabs, ...).
    #[error("left to the plain reader: {0}")]
    Unsupported(&'static str),
    /// saphyr-parser refused the text.
    #[error("syntax the fast reader refuses: {0}")]
    Syntax(String),
    /// The text is YAML, but the caller's types refuse a value.
    #[error("a value the types refuse: {0}")]
    Refused(String),
}

impl de::Error for Declined {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        Declined::Refused(message.to_string())
    }
}
