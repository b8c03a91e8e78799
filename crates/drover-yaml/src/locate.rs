//! Finds where a node starts in a YAML text from its field path (`hosts[3].name` → line 14,
//! column 7), and the scalar written there; also where a second document starts, whether the text
//! is YAML at all, and where nesting goes too deep.
//!
//! Paths are plain strings in serde_yaml_ng's notation (`hosts[2].labels.rack`): a key after a
//! dot, a sequence index in brackets, `?` for a key that is itself a mapping or sequence. The text
//! is walked with yaml-rust2's event parser, which gives the position of every event. This module
//! knows nothing of any file format and nothing of errors: it answers with positions.

use std::fmt::Write as _;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column in the text, as serde_yaml_ng prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
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

/// A node found at a path: where it starts and, for a scalar, its text as written (unquoted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocatedNode {
    pub position: Position,
    /// `None` for a mapping or a sequence.
    pub scalar: Option<String>,
}

/// The node at `path` in the first document of `text`, if there is one. Events before a syntax
/// error are still searched, so a node above the error is found.
pub fn locate(text: &str, path: &str) -> Option<LocatedNode> {
    let mut walker = PathWalker::new(path);
    walk(text, &mut walker, |walker| walker.is_done());
    walker.found
}

/// Where the node at `path` starts or, if it is absent (a defaulted field), its nearest ancestor.
pub fn locate_nearest(text: &str, path: &str) -> Option<Position> {
    let mut current = path;
    loop {
        if let Some(node) = locate(text, current) {
            return Some(node.position);
        }
        current = parent_path(current)?;
    }
}

/// Where a second YAML document (`---`) starts, for files that hold more than one: serde_yaml_ng
/// refuses such a stream without a position.
pub fn second_document_start(text: &str) -> Option<Position> {
    let mut counter = DocumentCounter::default();
    walk(text, &mut counter, |counter| counter.second_start.is_some());
    counter.second_start
}

/// Whether yaml-rust2 refuses the text as YAML, to tell syntax errors from schema errors.
pub fn is_malformed(text: &str) -> bool {
    let mut counter = DocumentCounter::default();
    !walk(text, &mut counter, |_| false)
}

/// Where the nesting of mappings and sequences first goes deeper than `limit`, if it does.
/// Stops there, so an absurdly deep text costs no more than its first `limit` levels' worth;
/// meant to run before serde_yaml_ng, whose parser slows down badly on deep nesting.
pub fn nesting_deeper_than(text: &str, limit: usize) -> Option<Position> {
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

/// `hosts[3].name` → `hosts[3]` → `hosts` → none.
fn parent_path(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

/// Feeds events to `receiver` until the stream ends, `stop` says so, or the text turns out not
/// to be YAML (events before the error are still delivered). Returns false on a syntax error.
fn walk<R: MarkedEventReceiver>(text: &str, receiver: &mut R, stop: impl Fn(&R) -> bool) -> bool {
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Err(_) => return false,
            Ok((Event::StreamEnd, _)) => return true,
            Ok((event, marker)) => receiver.on_event(event, marker),
        }
        if stop(receiver) {
            return true;
        }
    }
}

#[derive(Default)]
struct DocumentCounter {
    documents: usize,
    second_start: Option<Position>,
}

impl MarkedEventReceiver for DocumentCounter {
    fn on_event(&mut self, event: Event, marker: Marker) {
        if event == Event::DocumentStart {
            self.documents += 1;
            if self.documents == 2 {
                self.second_start = Some(Position::from_marker(marker));
            }
        }
    }
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
    found: Option<LocatedNode>,
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
            self.found = Some(LocatedNode {
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
        // Only the first document is searched: the formats read here hold one, and refuse a
        // second one elsewhere.
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

    const INVENTORY_LIKE: &str = "\
cluster: {name: a, target_version: \"1\"}
hosts:
  - name: xs01
    memory_mib: 5
  - {name: xs02, memory_mib: 6}
vms:
  -
    name: web
    host: xs09
";

    const CATALOG_LIKE: &str = "\
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

    fn position_of(text: &str, path: &str) -> Option<Position> {
        locate(text, path).map(|node| node.position)
    }

    #[test]
    fn finds_scalars_mappings_and_sequences() {
        let text = INVENTORY_LIKE;
        assert_eq!(position_of(text, "cluster"), Some(at(1, 10)));
        assert_eq!(position_of(text, "cluster.target_version"), Some(at(1, 36)));
        assert_eq!(position_of(text, "hosts"), Some(at(3, 3)));
        assert_eq!(position_of(text, "hosts[0]"), Some(at(3, 5)));
        assert_eq!(position_of(text, "hosts[0].memory_mib"), Some(at(4, 17)));
        assert_eq!(position_of(text, "hosts[1]"), Some(at(5, 5)));
        assert_eq!(position_of(text, "hosts[1].name"), Some(at(5, 12)));
        assert_eq!(position_of(text, "vms[0]"), Some(at(8, 5)));
        assert_eq!(position_of(text, "vms[0].host"), Some(at(9, 11)));
        assert_eq!(position_of(text, "vms[1]"), None);
    }

    #[test]
    fn finds_block_and_flow_nodes_with_their_text() {
        let text = CATALOG_LIKE;
        let found = locate(text, "releases[1].upgrade_from[1]").unwrap();
        assert_eq!(found.position, at(4, 44));
        assert_eq!(found.scalar.as_deref(), Some("8.0.*"));
        assert_eq!(locate(text, "releases[0]").unwrap().position, at(3, 5));
        assert_eq!(locate(text, "releases[0]").unwrap().scalar, None);
        assert_eq!(locate(text, "releases[2]").unwrap().position, at(6, 5));
        let unquoted = locate(text, "releases[2].version").unwrap();
        assert_eq!(unquoted.scalar.as_deref(), Some("8.2"));
        assert_eq!(locate(text, "releases[3]"), None);
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        assert_eq!(
            locate_nearest(INVENTORY_LIKE, "hosts[1].cpus"),
            Some(at(5, 5))
        );
        assert_eq!(
            locate_nearest(CATALOG_LIKE, "releases[0].channels"),
            Some(at(3, 5))
        );
        assert_eq!(locate_nearest(CATALOG_LIKE, "hotfixes[0]"), None);
    }

    #[test]
    fn skips_mappings_used_as_keys() {
        let text = "a:\n  ? {name: x}\n  : 1\n  name: 2\n";
        assert_eq!(position_of(text, "a.name"), Some(at(4, 9)));
    }

    #[test]
    fn searches_only_the_first_document() {
        let text = "a: 1\n---\nb: 2\n";
        assert_eq!(position_of(text, "a"), Some(at(1, 4)));
        assert_eq!(position_of(text, "b"), None);
    }

    #[test]
    fn finds_the_second_document() {
        assert_eq!(second_document_start("a: 1\n---\nb: 2\n"), Some(at(2, 1)));
        assert_eq!(second_document_start("a: 1\n"), None);
    }

    #[test]
    fn tells_malformed_yaml() {
        assert!(is_malformed("a: {b: 1\n"));
        assert!(!is_malformed("a: {b: 1}\n"));
    }

    #[test]
    fn finds_where_nesting_goes_too_deep() {
        assert_eq!(nesting_deeper_than(CATALOG_LIKE, 4), None);
        assert_eq!(nesting_deeper_than(CATALOG_LIKE, 3), Some(at(4, 36)));
        assert_eq!(nesting_deeper_than("a: [[[1]]]\n", 2), Some(at(1, 5)));
    }
}
