//! Where things are in a YAML text, for error messages that name `file:line:col: field.path`.
//!
//! serde_yaml_ng reports a position only for its own errors, and names fields in its own path
//! notation (`hosts[2].labels.rack`). The checks a format crate makes after deserialization know
//! such a path but no position; [`locate()`] finds it by walking the text with yaml-rust2's event
//! parser, and [`YamlSource`] turns serde errors and field paths into [`Problem`]s: plain data
//! (file name, position, field path, message) that each format crate maps into its own error.
//!
//! Invariants: positions are 1-based lines and columns, the same numbers serde_yaml_ng prints;
//! only the first document of a text is searched; the text is walked only while a problem is
//! being reported, so valid input pays nothing here; deep nesting costs linear time. This crate
//! knows no file format (the inventory, the release catalog): a format passes its top-level keys
//! in, and it has no error type of its own, so every refusal stays in its format crate's enum.

mod depth;
mod locate;
mod source;

pub use depth::nesting_deeper_than_bounded;
pub use locate::{
    is_malformed, locate, locate_nearest, nesting_deeper_than, second_document_start, LocatedNode,
    Position,
};
pub use source::{Problem, SerdeErrorParts, YamlSource};
