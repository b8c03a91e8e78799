//! Finds where a node starts in a catalog text from its field path (`releases[3].version` →
//! line 14, column 7), and the scalar written there.
//!
//! serde reports positions only for its own errors; the checks made after deserialization
//! (duplicates, references, cycles) know a field path and ask this module for the place. The
//! text is walked with yaml-rust2's event parser only while an error is being reported, so a
//! valid catalog pays nothing here. Paths are plain strings in serde_yaml_ng's notation; this
//! module knows nothing of the catalog format.

use std::fmt::Write as _;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Position {
    fn from_marker(marker: Marker) -> Position {
        // yaml-rust2 counts lines from 1 but columns from 0.
        Position {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

/// A node found at a path: where it starts and, for a scalar, its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) position: Position,
    pub(crate) scalar: Option<String>,
}

/// The node at `path` in the first document of `text`, if there is one.
pub(crate) fn locate(text: &str, path: &str) -> Option<Found> {
    let mut walker = PathWalker::new(path);
    let mut parser = Parser::new_from_str(text);
    // Events before a syntax error are still delivered; the walk stops at the error.
    while let Ok((event, marker)) = parser.next_token() {
        if event == Event::StreamEnd {
            break;
        }
        walker.on_event(event, marker);
        if walker.is_done() {
            break;
        }
    }
    walker.found
}

/// Where the node at `path` starts or, if it is absent (a defaulted field), its nearest ancestor.
pub(crate) fn locate_nearest(text: &str, path: &str) -> Option<Position> {
    let mut current = path;
    loop {
        if let Some(found) = locate(text, current) {
            return Some(found.position);
        }
        current = parent_path(current)?;
    }
}

/// Where the nesting of mappings and sequences first goes deeper than `limit`, if it does.
/// Stops there, so an absurdly deep text costs no more than its first `limit` levels' worth.
pub(crate) fn nesting_deeper_than(text: &str, limit: usize) -> Option<Position> {
    let mut depth = 0usize;
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, marker) = match parser.next_token() {
            Ok(next) => next,
            // yaml-rust2 refuses flow nesting past its own limit before emitting the events.
            Err(error) if error.info().contains("recursion limit") => {
                return Some(Position::from_marker(*error.marker()));
            }
            // Any other syntax error: serde_yaml_ng reports it with a better message.
            Err(_) => return None,
        };
        match event {
            Event::StreamEnd => return None,
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                depth += 1;
                if depth > limit {
                    return Some(Position::from_marker(marker));
                }
            }
            Event::MappingEnd | Event::SequenceEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
}

/// `releases[1].version` → `releases[1]` → `releases` → none.
fn parent_path(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

/// One open mapping or sequence on the way down to the current node.
struct Frame {
    kind: FrameKind,
    /// Length of `PathWalker::path` before this node's own segment was appended.
    parent_path_length: usize,
    /// This frame is the node looked for, and its position may still move to its first key.
    awaiting_first_key: bool,
    start: Marker,
}

enum FrameKind {
    Sequence {
        next_item: usize,
    },
    /// `key` is set between a key and its value: the next node is that key's value.
    Mapping {
        key: Option<String>,
    },
}

/// Follows the event stream keeping the path of the current node, and records the node whose
/// path equals `target`.
struct PathWalker<'a> {
    target: &'a str,
    found: Option<Found>,
    path: String,
    frames: Vec<Frame>,
    documents: usize,
    /// Depth inside a mapping or sequence used as a mapping key, whose nodes have no path.
    complex_key_depth: usize,
    /// Whether the target is an open mapping whose position may still move to its first key.
    /// Kept here rather than searched for in `frames`, so deep nesting stays linear.
    target_awaits_first_key: bool,
}

impl<'a> PathWalker<'a> {
    fn new(target: &'a str) -> PathWalker<'a> {
        PathWalker {
            target,
            found: None,
            path: String::new(),
            frames: Vec::new(),
            documents: 0,
            complex_key_depth: 0,
            target_awaits_first_key: false,
        }
    }

    fn is_done(&self) -> bool {
        self.found.is_some() && !self.target_awaits_first_key
    }

    fn expects_key(&self) -> bool {
        matches!(
            self.frames.last(),
            Some(Frame {
                kind: FrameKind::Mapping { key: None },
                ..
            })
        )
    }

    fn scalar(&mut self, text: String, marker: Marker) {
        if self.expects_key() {
            self.take_key(text, marker);
            return;
        }
        let parent_path_length = self.path.len();
        if self.enter_node(marker) {
            if let Some(found) = &mut self.found {
                found.scalar = Some(text);
            }
        }
        self.path.truncate(parent_path_length);
        self.finish_value();
    }

    fn open(&mut self, kind: FrameKind, marker: Marker) {
        if self.expects_key() {
            self.take_key("?".to_string(), marker);
            self.complex_key_depth = 1;
            return;
        }
        let parent_path_length = self.path.len();
        let is_target = self.enter_node(marker);
        let awaiting_first_key = is_target && matches!(kind, FrameKind::Mapping { .. });
        self.target_awaits_first_key |= awaiting_first_key;
        self.frames.push(Frame {
            awaiting_first_key,
            kind,
            parent_path_length,
            start: marker,
        });
    }

    fn close(&mut self) {
        if let Some(frame) = self.frames.pop() {
            // An empty mapping has no first key to wait for.
            if frame.awaiting_first_key {
                self.target_awaits_first_key = false;
            }
            self.path.truncate(frame.parent_path_length);
            self.finish_value();
        }
    }

    /// Appends the new node's segment to the path; records its position if it is the target.
    fn enter_node(&mut self, marker: Marker) -> bool {
        match self.frames.last_mut().map(|frame| &mut frame.kind) {
            None => {}
            Some(FrameKind::Sequence { next_item }) => {
                let _ = write!(self.path, "[{next_item}]");
                *next_item += 1;
            }
            Some(FrameKind::Mapping { key }) => {
                if !self.path.is_empty() {
                    self.path.push('.');
                }
                self.path.push_str(key.as_deref().unwrap_or("?"));
            }
        }
        let is_target = self.found.is_none() && self.path == self.target;
        if is_target {
            self.found = Some(Found {
                position: Position::from_marker(marker),
                scalar: None,
            });
        }
        is_target
    }

    /// yaml-rust2 marks a block mapping after its first key, so a mapping starts at whichever
    /// comes first: its start event or its first key.
    fn take_key(&mut self, key_text: String, marker: Marker) {
        let Some(frame) = self.frames.last_mut() else {
            return;
        };
        if frame.awaiting_first_key {
            frame.awaiting_first_key = false;
            self.target_awaits_first_key = false;
            if marker.index() < frame.start.index() {
                if let Some(found) = &mut self.found {
                    found.position = Position::from_marker(marker);
                }
            }
        }
        if let FrameKind::Mapping { key } = &mut frame.kind {
            *key = Some(key_text);
        }
    }

    fn finish_value(&mut self) {
        if let Some(Frame {
            kind: FrameKind::Mapping { key },
            ..
        }) = self.frames.last_mut()
        {
            *key = None;
        }
    }

    fn complex_key_event(&mut self, event: &Event) {
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => self.complex_key_depth += 1,
            Event::MappingEnd | Event::SequenceEnd => self.complex_key_depth -= 1,
            _ => {}
        }
    }
}

impl MarkedEventReceiver for PathWalker<'_> {
    fn on_event(&mut self, event: Event, marker: Marker) {
        if event == Event::DocumentStart {
            self.documents += 1;
        }
        // Only the first document is a catalog; later ones are refused by serde.
        if self.documents != 1 {
            return;
        }
        if self.complex_key_depth > 0 {
            self.complex_key_event(&event);
            return;
        }
        match event {
            Event::Scalar(text, ..) => self.scalar(text, marker),
            Event::Alias(_) => self.scalar("*alias".to_string(), marker),
            Event::MappingStart(..) => self.open(FrameKind::Mapping { key: None }, marker),
            Event::SequenceStart(..) => self.open(FrameKind::Sequence { next_item: 0 }, marker),
            Event::MappingEnd | Event::SequenceEnd => self.close(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
catalog: 1
releases:
  - version: \"8.0\"
  - {version: \"8.1\", upgrade_from: [\"8.0\", \"8.0.*\"]}
  -
    version: 8.2
";

    fn at(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    #[test]
    fn finds_block_and_flow_nodes_with_their_text() {
        let found = locate(TEXT, "releases[1].upgrade_from[1]").unwrap();
        assert_eq!(found.position, at(4, 44));
        assert_eq!(found.scalar.as_deref(), Some("8.0.*"));
        assert_eq!(locate(TEXT, "releases[0]").unwrap().position, at(3, 5));
        assert_eq!(locate(TEXT, "releases[2]").unwrap().position, at(6, 5));
        let unquoted = locate(TEXT, "releases[2].version").unwrap();
        assert_eq!(unquoted.scalar.as_deref(), Some("8.2"));
        assert_eq!(locate(TEXT, "releases[3]"), None);
    }

    #[test]
    fn finds_where_nesting_goes_too_deep() {
        assert_eq!(nesting_deeper_than(TEXT, 4), None);
        assert_eq!(nesting_deeper_than(TEXT, 3), Some(at(4, 36)));
        assert_eq!(nesting_deeper_than("a: [[[1]]]\n", 2), Some(at(1, 5)));
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        assert_eq!(locate_nearest(TEXT, "releases[0].channels"), Some(at(3, 5)));
        assert_eq!(locate_nearest(TEXT, "hotfixes[0]"), None);
    }
}
