//! Where things are in a YAML text, for error messages that name `file:line:col: field.path`;
//! and a fast reader that takes plain YAML straight into serde types, declining the rest.
//!
//! serde_yaml_ng reports a position only for its own errors, and names fields in its own path
//! notation (`hosts[2].labels.rack`). The checks a format crate makes after deserialization know
//! such a path but no position; [`locate()`] finds it by walking the text with yaml-rust2's event
//! parser, and [`YamlSource`] turns serde errors and field paths into [`Problem`]s: plain data
//! (file name, position, field path, message) that each format crate maps into its own error.
//!
//! serde_yaml_ng is also slow on large texts (seconds for 24 MiB). [`from_str_fast`] reads the
//! YAML most files are written in several times faster, through the same serde calls, and
//! [`split_top_level_sequences`] cuts a large text at the items of its big lists so that the
//! parts can be read on several cores; whatever either declines, the caller reads with
//! serde_yaml_ng, which stays the reference for what a text means and for every message.
//!
//! Invariants: positions are 1-based lines and columns, the same numbers serde_yaml_ng prints;
//! only the first document of a text is searched; the locating walk runs only while a problem is
//! being reported; deep nesting costs linear time; the fast reader gives a value only where
//! serde_yaml_ng gives the same one. This crate knows no file format (the inventory, the release
//! catalog): a format passes its top-level keys in. Its one error type, [`Declined`], never
//! reaches an operator: it only sends the caller to serde_yaml_ng, so every refusal stays in its
//! format crate's enum.
mod block;
mod declined;
mod depth;
mod fast;
mod locate;
mod scalar;
mod source;
mod split;

pub use declined::Declined;
pub use depth::nesting_deeper_than_bounded;
pub use fast::{from_str_fast, from_str_fast_witnessed, Witness};
pub use locate::{
    is_malformed, locate, locate_nearest, nesting_deeper_than, second_document_start, LocatedNode,
    Position,
};
pub use source::{Problem, SerdeErrorParts, YamlSource};
pub use split::{split_top_level_sequences, SequencePart, SplitDocument};
