//! Finds where a node starts in a YAML text from its field path (`vms[3].host` → line 14, col 7).
//!
//! serde reports positions only for its own errors; the checks made after deserialization
//! (duplicate names, unknown hosts, capacity) know a field path and ask this module for the line.
//! The text is walked with yaml-rust2's event parser only while an error is being reported, so a
//! valid inventory of any size pays nothing here. This module knows nothing of the inventory
//! schema: paths are plain strings in serde_yaml_ng's notation (`hosts[2].labels.rack`).

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

/// Where the node at `path` starts, if the first document of `text` has such a node.
pub(crate) fn locate(text: &str, path: &str) -> Option<Position> {
    let mut walker = PathWalker::new(path);
    walk(text, &mut walker, |walker| walker.is_done());
    walker.found
}

/// Where the node at `path` starts or, if it is absent (a defaulted field), its nearest ancestor.
pub(crate) fn locate_nearest(text: &str, path: &str) -> Option<Position> {
    let mut current = path;
    loop {
        if let Some(position) = locate(text, current) {
            return Some(position);
        }
        current = parent_path(current)?;
    }
}

/// Where a second YAML document (`---`) starts, for files that hold more than one.
pub(crate) fn second_document_start(text: &str) -> Option<Position> {
    let mut counter = DocumentCounter::default();
    walk(text, &mut counter, |counter| counter.second_start.is_some());
    counter.second_start
}

/// Whether yaml-rust2 refuses the text as YAML, to tell syntax errors from schema errors.
pub(crate) fn is_malformed(text: &str) -> bool {
    let mut counter = DocumentCounter::default();
    !walk(text, &mut counter, |_| false)
}

/// `vms[3].host` → `vms[3]` → `vms` → none.
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

/// Follows the event stream keeping the path of the current node, and records where the node
/// whose path equals `target` starts.
struct PathWalker<'a> {
    target: &'a str,
    found: Option<Position>,
    path: String,
    frames: Vec<Frame>,
    documents: usize,
    /// Depth inside a mapping or sequence used as a mapping key, whose nodes have no path.
    complex_key_depth: usize,
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
        }
    }

    fn is_done(&self) -> bool {
        self.found.is_some() && !self.frames.iter().any(|frame| frame.awaiting_first_key)
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
        self.enter_node(marker);
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
        self.frames.push(Frame {
            awaiting_first_key: is_target && matches!(kind, FrameKind::Mapping { .. }),
            kind,
            parent_path_length,
            start: marker,
        });
    }

    fn close(&mut self) {
        if let Some(frame) = self.frames.pop() {
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
            self.found = Some(Position::from_marker(marker));
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
            if marker.index() < frame.start.index() {
                self.found = Some(Position::from_marker(marker));
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
        // Only the first document is an inventory; later ones are reported as an error elsewhere.
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

    const BLOCK_AND_FLOW: &str = "\
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

    fn at(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    #[test]
    fn finds_scalars_mappings_and_sequences() {
        assert_eq!(locate(BLOCK_AND_FLOW, "cluster"), at(1, 10));
        assert_eq!(locate(BLOCK_AND_FLOW, "cluster.target_version"), at(1, 36));
        assert_eq!(locate(BLOCK_AND_FLOW, "hosts"), at(3, 3));
        assert_eq!(locate(BLOCK_AND_FLOW, "hosts[0]"), at(3, 5));
        assert_eq!(locate(BLOCK_AND_FLOW, "hosts[0].memory_mib"), at(4, 17));
        assert_eq!(locate(BLOCK_AND_FLOW, "hosts[1]"), at(5, 5));
        assert_eq!(locate(BLOCK_AND_FLOW, "hosts[1].name"), at(5, 12));
        assert_eq!(locate(BLOCK_AND_FLOW, "vms[0]"), at(8, 5));
        assert_eq!(locate(BLOCK_AND_FLOW, "vms[0].host"), at(9, 11));
        assert_eq!(locate(BLOCK_AND_FLOW, "vms[1]"), None);
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        assert_eq!(locate_nearest(BLOCK_AND_FLOW, "hosts[1].cpus"), at(5, 5));
    }

    #[test]
    fn skips_mappings_used_as_keys() {
        let text = "a:\n  ? {name: x}\n  : 1\n  name: 2\n";
        assert_eq!(locate(text, "a.name"), at(4, 9));
    }

    #[test]
    fn finds_the_second_document() {
        assert_eq!(second_document_start("a: 1\n---\nb: 2\n"), at(2, 1));
        assert_eq!(second_document_start("a: 1\n"), None);
    }

    #[test]
    fn tells_malformed_yaml() {
        assert!(is_malformed("a: {b: 1\n"));
        assert!(!is_malformed("a: {b: 1}\n"));
    }
}
