//! A hand-written event source for the block YAML most files are written in, in place of
//! saphyr-parser's scanner and parser: the same `Event`s with the same lines, read line by line.
//!
//! saphyr-parser is a complete YAML 1.2 parser; it looks at every character through a general
//! scanner (simple-key bookkeeping, a token queue, character classes) and costs most of the fast
//! reader's time on a large inventory. This source takes only a narrow subset: ASCII text with
//! `\n` line ends; block mappings and sequences; keys that are plain words (letters, digits and
//! `_-./+~=`, inner spaces allowed); plain scalars of the same characters; single- and
//! double-quoted scalars on one line without escapes; flow mappings and sequences on one line
//! holding such scalars; comments. Anything else — and anything where it is not certain what a
//! YAML parser would read — makes it stop with [`Declined::Unsupported`], and the caller reads the
//! text again with saphyr-parser. So it must never produce an event stream different from
//! saphyr-parser's for a text it takes; the tests compare the two streams.
//!
//! It knows no file format and no serde: `fast` drives it exactly as it drives saphyr-parser.

use std::borrow::Cow;
use std::collections::VecDeque;

use saphyr_parser::{Event, Marker, ScalarStyle, Span};

use crate::declined::Declined;

/// libyaml refuses implicit keys longer than this; YAML 1.2 parsers may not.
pub(crate) const LONGEST_IMPLICIT_KEY_CHARS: usize = 1024;

/// The one reason this source gives for leaving a text: `fast` then reads it with
/// saphyr-parser (and only then, with serde_yaml_ng).
pub(crate) const OUTSIDE_SUBSET: Declined =
    Declined::Unsupported("YAML outside the block reader's subset");

fn outside<T>() -> Result<T, Declined> {
    Err(OUTSIDE_SUBSET)
}

/// A block collection still open, and the column of its entries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Mapping { indent: usize },
    Sequence { indent: usize },
}

impl Open {
    fn indent(self) -> usize {
        match self {
            Open::Mapping { indent } | Open::Sequence { indent } => indent,
        }
    }
}

/// Whether the text might be one this source takes: ASCII (so that saphyr-parser's character
/// indexes are byte offsets) and no carriage return.
pub(crate) fn may_take(text: &str) -> bool {
    text.is_ascii() && !text.as_bytes().contains(&b'\r')
}

pub(crate) struct BlockEvents<'de> {
    text: &'de str,
    /// Byte offset of the next line not read yet.
    next_line_start: usize,
    /// 1-based number of that line.
    next_line_number: usize,
    open: Vec<Open>,
    /// A key was read whose value is on the following lines (or is null): the indent of its
    /// mapping.
    pending_value_of: Option<usize>,
    /// Events made from lines read, not handed out yet. Reused: no allocation per event once
    /// it has grown to the most events one line makes.
    queue: VecDeque<(Event<'de>, Span)>,
    root_started: bool,
    /// The root collection was closed: any content after it is a second node.
    finished_root: bool,
    finished: bool,
}

impl<'de> BlockEvents<'de> {
    /// Call only when [`may_take`] said yes.
    pub(crate) fn new(text: &'de str) -> BlockEvents<'de> {
        let mut events = BlockEvents {
            text,
            next_line_start: 0,
            next_line_number: 1,
            open: Vec::new(),
            pending_value_of: None,
            queue: VecDeque::with_capacity(16),
            root_started: false,
            finished_root: false,
            finished: false,
        };
        let start = Span::empty(Marker::new(0, 1, 0));
        events.queue.push_back((Event::StreamStart, start));
        events
    }

    pub(crate) fn next_event(&mut self) -> Result<(Event<'de>, Span), Declined> {
        self.fill()?;
        self.queue
            .pop_front()
            .ok_or_else(|| Declined::Syntax("the text ended early".into()))
    }

    pub(crate) fn peek(&mut self) -> Result<&(Event<'de>, Span), Declined> {
        self.fill()?;
        self.queue
            .front()
            .ok_or_else(|| Declined::Syntax("the text ended early".into()))
    }

    fn fill(&mut self) -> Result<(), Declined> {
        while self.queue.is_empty() && !self.finished {
            self.read_line()?;
        }
        Ok(())
    }

    fn marker(&self, line_start: usize, line_number: usize, column: usize) -> Marker {
        Marker::new(line_start + column, line_number, column)
    }

    /// Reads the next line (or the end of the text) into events.
    fn read_line(&mut self) -> Result<(), Declined> {
        let bytes = self.text.as_bytes();
        if self.next_line_start >= bytes.len() {
            return self.finish();
        }
        let line_start = self.next_line_start;
        let line_end = bytes[line_start..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(bytes.len(), |offset| line_start + offset);
        let line_number = self.next_line_number;
        self.next_line_start = line_end + 1;
        self.next_line_number += 1;
        let line = &self.text[line_start..line_end];
        let indent = line.bytes().take_while(|&byte| byte == b' ').count();
        let content = &line[indent..];
        if content.is_empty() || content.starts_with('#') {
            return Ok(());
        }
        if line_number == 1 && !self.root_started {
            if line == "---" {
                let span = Span::new(self.marker(line_start, 1, 0), self.marker(line_start, 1, 3));
                self.queue.push_back((Event::DocumentStart(true), span));
                self.root_started = true;
                return Ok(());
            }
            if content.starts_with("---") {
                return outside();
            }
        }
        if !self.root_started {
            let start = self.marker(line_start, line_number, indent);
            self.queue
                .push_back((Event::DocumentStart(false), Span::empty(start)));
            self.root_started = true;
        }
        let line = Line {
            text: self.text,
            start: line_start,
            end: line_end,
            number: line_number,
        };
        let is_item = content == "-" || content.starts_with("- ");
        if let Some(parent_indent) = self.pending_value_of.take() {
            if indent > parent_indent {
                return self.open_block(line, indent, is_item);
            }
            if indent == parent_indent && is_item {
                // saphyr-parser starts a sequence at the same indent as its key (an
                // "indentless" one) at its first item's content, not at the dash.
                let content_column = skip_spaces(line.content().as_bytes(), indent + 1);
                let span = Span::empty(line.marker(content_column));
                self.open.push(Open::Sequence { indent });
                self.queue.push_back((Event::SequenceStart(0, None), span));
                return self.item(line, indent);
            }
            // `key:` with nothing under it: a null, as an empty plain scalar at the key's line end.
            let at = Marker::new(line_start, line_number, 0);
            self.queue.push_back((
                Event::Scalar(Cow::Borrowed(""), ScalarStyle::Plain, 0, None),
                Span::empty(at),
            ));
        }
        self.close_deeper_than(indent, is_item, line_start, line_number);
        match self.open.last().copied() {
            None if self.finished_root => outside(),
            None => self.open_block(line, indent, is_item),
            Some(Open::Sequence {
                indent: open_indent,
            }) if open_indent == indent && is_item => self.item(line, indent),
            Some(Open::Mapping {
                indent: open_indent,
            }) if open_indent == indent && !is_item => self.entry(line, indent),
            Some(_) => outside(),
        }
    }

    /// Closes the collections a line at `indent` leaves.
    fn close_deeper_than(
        &mut self,
        indent: usize,
        is_item: bool,
        line_start: usize,
        line_number: usize,
    ) {
        let at = Span::empty(Marker::new(line_start + indent, line_number, indent));
        while let Some(&open) = self.open.last() {
            let leaves = open.indent() > indent
                || (open.indent() == indent && matches!(open, Open::Sequence { .. }) && !is_item);
            if !leaves {
                break;
            }
            self.open.pop();
            self.queue.push_back((end_event(open), at));
            if self.open.is_empty() {
                self.finished_root = true;
            }
        }
    }

    /// Opens a block collection at `indent` whose first entry is this line.
    fn open_block(
        &mut self,
        line: Line<'de>,
        indent: usize,
        is_item: bool,
    ) -> Result<(), Declined> {
        let span = Span::empty(line.marker(indent));
        match is_item {
            true => {
                self.open.push(Open::Sequence { indent });
                self.queue.push_back((Event::SequenceStart(0, None), span));
                self.item(line, indent)
            }
            false => {
                self.open.push(Open::Mapping { indent });
                self.queue.push_back((Event::MappingStart(0, None), span));
                self.entry(line, indent)
            }
        }
    }

    /// A `- ` line of the sequence open at `indent`.
    fn item(&mut self, line: Line<'de>, indent: usize) -> Result<(), Declined> {
        let text = line.content();
        let after_dash = indent + 1;
        let column = after_dash
            + text.as_bytes()[after_dash..]
                .iter()
                .take_while(|&&byte| byte == b' ')
                .count();
        if column >= text.len() {
            // `-` alone: the item is on the next lines, or is null.
            return outside();
        }
        let rest = &text[column..];
        if rest.starts_with('#') || rest == "-" || rest.starts_with("- ") {
            return outside();
        }
        // `- key: value`: a mapping whose entries sit at the column of the key.
        if starts_with_block_key(rest) {
            return self.open_block(line, column, false);
        }
        let end = self.value(line, column)?;
        line.only_comment_after(end)
    }

    /// A `key: value` (or `key:`) line of the mapping open at `indent`.
    fn entry(&mut self, line: Line<'de>, indent: usize) -> Result<(), Declined> {
        let text = line.content();
        let key_end = match block_key_end(&text[indent..]) {
            Some(length) => indent + length,
            None => return outside(),
        };
        if key_end - indent > LONGEST_IMPLICIT_KEY_CHARS {
            return outside();
        }
        let key = &text[indent..key_end];
        self.queue.push_back((
            Event::Scalar(Cow::Borrowed(key), ScalarStyle::Plain, 0, None),
            Span::new(line.marker(indent), line.marker(key_end)),
        ));
        // Past the colon and the spaces after it.
        let after_colon = key_end + 1;
        let column = after_colon
            + text.as_bytes()[after_colon..]
                .iter()
                .take_while(|&&byte| byte == b' ')
                .count();
        if column >= text.len() || text.as_bytes()[column] == b'#' {
            if column < text.len() && column == after_colon {
                return outside();
            }
            self.pending_value_of = Some(indent);
            return Ok(());
        }
        if column == after_colon {
            // `key:value` is one plain scalar, not an entry.
            return outside();
        }
        let rest = &text[column..];
        if rest == "-" || rest.starts_with("- ") || rest.starts_with("? ") {
            return outside();
        }
        let end = self.value(line, column)?;
        line.only_comment_after(end)
    }

    /// A scalar or a one-line flow collection starting at `column`; the byte after it.
    fn value(&mut self, line: Line<'de>, column: usize) -> Result<usize, Declined> {
        let text = line.content();
        match text.as_bytes()[column] {
            b'{' | b'[' => self.flow(line, column),
            b'\'' | b'"' => self.quoted(line, column),
            _ => {
                let length = plain_length(&text[column..], false);
                if length == 0 {
                    return outside();
                }
                let end = column + length;
                self.push_plain(line, column, end);
                Ok(end)
            }
        }
    }

    fn push_plain(&mut self, line: Line<'de>, start: usize, end: usize) {
        let value = &line.content()[start..end];
        self.queue.push_back((
            Event::Scalar(Cow::Borrowed(value), ScalarStyle::Plain, 0, None),
            Span::new(line.marker(start), line.marker(end)),
        ));
    }

    /// A quoted scalar on one line, without escapes; the byte after the closing quote.
    fn quoted(&mut self, line: Line<'de>, column: usize) -> Result<usize, Declined> {
        let text = line.content();
        let bytes = text.as_bytes();
        let quote = bytes[column];
        let mut index = column + 1;
        let mut doubled = false;
        loop {
            match bytes.get(index) {
                None => return outside(),
                Some(b'\\') if quote == b'"' => return outside(),
                Some(&byte) if byte == quote => {
                    if quote == b'\'' && bytes.get(index + 1) == Some(&b'\'') {
                        doubled = true;
                        index += 2;
                        continue;
                    }
                    break;
                }
                Some(_) => index += 1,
            }
        }
        let inner = &text[column + 1..index];
        // Leading or trailing spaces inside quotes are kept by both readers, but keep the
        // subset plain.
        let value = match doubled {
            true => Cow::Owned(inner.replace("''", "'")),
            false => Cow::Borrowed(inner),
        };
        let style = match quote {
            b'\'' => ScalarStyle::SingleQuoted,
            _ => ScalarStyle::DoubleQuoted,
        };
        self.queue.push_back((
            Event::Scalar(value, style, 0, None),
            Span::new(line.marker(column), line.marker(index + 1)),
        ));
        Ok(index + 1)
    }

    /// A flow mapping or sequence closed on the same line; the byte after its closing bracket.
    fn flow(&mut self, line: Line<'de>, column: usize) -> Result<usize, Declined> {
        let text = line.content();
        let bytes = text.as_bytes();
        let mapping = bytes[column] == b'{';
        let closer = if mapping { b'}' } else { b']' };
        let start = line.marker(column);
        self.queue.push_back((
            match mapping {
                true => Event::MappingStart(0, None),
                false => Event::SequenceStart(0, None),
            },
            Span::new(start, line.marker(column + 1)),
        ));
        let mut index = skip_spaces(bytes, column + 1);
        if bytes.get(index) == Some(&closer) {
            return Ok(self.flow_end(line, mapping, index));
        }
        loop {
            // A key or an item.
            index = self.flow_node(line, index)?;
            index = skip_spaces(bytes, index);
            if mapping {
                // `key: value`, the colon right after the key and a space after it.
                if bytes.get(index) != Some(&b':') || bytes.get(index + 1) != Some(&b' ') {
                    return outside();
                }
                index = skip_spaces(bytes, index + 1);
                index = self.flow_node(line, index)?;
                index = skip_spaces(bytes, index);
            }
            match bytes.get(index) {
                Some(&byte) if byte == closer => return Ok(self.flow_end(line, mapping, index)),
                Some(b',') => {
                    // A trailing comma, or `,,`: leave such texts to the full parser.
                    index = skip_spaces(bytes, index + 1);
                    if !matches!(bytes.get(index), Some(byte) if *byte != closer && *byte != b',') {
                        return outside();
                    }
                }
                _ => return outside(),
            }
        }
    }

    fn flow_end(&mut self, line: Line<'de>, mapping: bool, index: usize) -> usize {
        self.queue.push_back((
            match mapping {
                true => Event::MappingEnd,
                false => Event::SequenceEnd,
            },
            Span::new(line.marker(index), line.marker(index + 1)),
        ));
        index + 1
    }

    /// A scalar inside a flow collection (no nested collections); the byte after it.
    fn flow_node(&mut self, line: Line<'de>, index: usize) -> Result<usize, Declined> {
        let text = line.content();
        match text.as_bytes().get(index) {
            Some(b'\'' | b'"') => self.quoted(line, index),
            Some(_) => {
                let length = plain_length(&text[index..], true);
                if length == 0 {
                    return outside();
                }
                self.push_plain(line, index, index + length);
                Ok(index + length)
            }
            None => outside(),
        }
    }

    /// The end of the text: every collection closed, then the document and the stream.
    fn finish(&mut self) -> Result<(), Declined> {
        if !self.root_started || (self.open.is_empty() && !self.finished_root) {
            // Empty, or only comments: `fast` declines an empty document itself, but the
            // events must still be saphyr-parser's; leave it to saphyr-parser.
            return outside();
        }
        let end_line = self.next_line_number;
        let at = Span::empty(Marker::new(self.text.len(), end_line, 0));
        if self.pending_value_of.take().is_some() {
            self.queue.push_back((
                Event::Scalar(Cow::Borrowed(""), ScalarStyle::Plain, 0, None),
                at,
            ));
        }
        while let Some(open) = self.open.pop() {
            self.queue.push_back((end_event(open), at));
        }
        self.queue.push_back((Event::DocumentEnd, at));
        self.queue.push_back((Event::StreamEnd, at));
        self.finished = true;
        Ok(())
    }
}

fn end_event(open: Open) -> Event<'static> {
    match open {
        Open::Mapping { .. } => Event::MappingEnd,
        Open::Sequence { .. } => Event::SequenceEnd,
    }
}

/// One line of the text being read.
#[derive(Clone, Copy)]
struct Line<'de> {
    text: &'de str,
    start: usize,
    /// Byte offset of the line feed (or the text's end).
    end: usize,
    number: usize,
}

impl<'de> Line<'de> {
    /// The line's text, from its first column to its end (without the line feed).
    fn content(self) -> &'de str {
        &self.text[self.start..self.end]
    }

    fn marker(self, column: usize) -> Marker {
        Marker::new(self.start + column, self.number, column)
    }

    /// Nothing but spaces and a comment after `end`.
    fn only_comment_after(self, end: usize) -> Result<(), Declined> {
        let bytes = self.content().as_bytes();
        let index = skip_spaces(bytes, end);
        match bytes.get(index) {
            None => Ok(()),
            Some(b'#') if index > end => Ok(()),
            Some(_) => outside(),
        }
    }
}

fn skip_spaces(bytes: &[u8], from: usize) -> usize {
    from + bytes
        .get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&byte| byte == b' ')
        .count()
}

/// The characters of a plain scalar or key this source takes: none of them is a YAML indicator
/// anywhere in a scalar, so such a run means the same to every YAML reader.
fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b'/' | b'+' | b'~' | b'=')
}

/// The length of the plain scalar at the start of `text`: word bytes with single inner spaces
/// allowed, trailing spaces not counted. 0 when it does not start with a word byte, or starts
/// with `-` not followed by a word byte (an indicator there).
fn plain_length(text: &str, in_flow: bool) -> usize {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(&first) if is_word_byte(first) => {}
        _ => return 0,
    }
    if bytes[0] == b'-' && !bytes.get(1).is_some_and(|&byte| is_word_byte(byte)) {
        return 0;
    }
    let mut end = 0;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if is_word_byte(byte) {
            index += 1;
            end = index;
        } else if byte == b' ' {
            index += 1;
        } else {
            break;
        }
    }
    // What stopped the scalar must be something this source reads next: the line end, a
    // comment after a space, or (in flow) a separator; a stray character means the scalar
    // goes on in a way this source does not follow.
    match bytes.get(index) {
        None => end,
        Some(b'#') if index > end => end,
        Some(b':') if bytes.get(index + 1).is_none_or(|&byte| byte == b' ') => {
            // `a b: c` in block context is a key; as a value it is an error; in flow
            // context a key. Only keys are read through `block_key_end`.
            match in_flow {
                true => end,
                false => 0,
            }
        }
        Some(b',' | b']' | b'}') if in_flow => end,
        Some(_) => 0,
    }
}

/// Whether `text` (after `- `) starts with `key:` followed by a space or the line end.
fn starts_with_block_key(text: &str) -> bool {
    block_key_end(text).is_some()
}

/// The length of the plain key at the start of `text` when a `:` follows it directly and a
/// space or the line end follows the colon.
fn block_key_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(&first) if is_word_byte(first) && first != b'-' => {}
        _ => return None,
    }
    let mut end = 0;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if is_word_byte(byte) {
            index += 1;
            end = index;
        } else if byte == b' ' {
            index += 1;
        } else {
            break;
        }
    }
    // The colon right after the key's last word byte: `a :` is left to the full parser.
    (index == end
        && bytes.get(index) == Some(&b':')
        && bytes.get(index + 1).is_none_or(|&byte| byte == b' '))
    .then_some(end)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use saphyr_parser::{Parser, StrInput};

    use super::*;

    /// What the fast reader looks at in an event: the event itself, and the line where it
    /// starts for scalars and collection starts (the witness and the flow checks use these).
    /// The positions of ends and of null scalars are not used.
    fn shown(event: &Event, span: Span) -> String {
        match event {
            Event::Scalar(value, ..) if value.is_empty() => format!("{event:?}"),
            Event::Scalar(..) | Event::MappingStart(..) | Event::SequenceStart(..) => {
                format!(
                    "{event:?} line {} index {}",
                    span.start.line(),
                    span.start.index()
                )
            }
            Event::MappingEnd | Event::SequenceEnd => format!("{event:?}"),
            _ => format!("{event:?}"),
        }
    }

    /// The block reader's events, or `None` where it leaves the text.
    fn block_events(text: &str) -> Option<Vec<String>> {
        if !may_take(text) {
            return None;
        }
        let mut events = BlockEvents::new(text);
        let mut shown_events = Vec::new();
        loop {
            match events.next_event() {
                Ok((event, span)) => {
                    let end = matches!(event, Event::StreamEnd);
                    shown_events.push(shown(&event, span));
                    if end {
                        return Some(shown_events);
                    }
                }
                Err(declined) => {
                    assert_eq!(declined, OUTSIDE_SUBSET, "{text:?}");
                    return None;
                }
            }
        }
    }

    /// saphyr-parser's events, or `None` where it refuses the text.
    fn saphyr_events(text: &str) -> Option<Vec<String>> {
        let mut parser: Parser<StrInput> = Parser::new_from_str(text);
        let mut shown_events = Vec::new();
        loop {
            match parser.next_event()? {
                Ok((event, span)) => {
                    let end = matches!(event, Event::StreamEnd);
                    shown_events.push(shown(&event, span));
                    if end {
                        return Some(shown_events);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// The block reader leaves the text, or gives saphyr-parser's events.
    fn agrees(text: &str) -> Result<bool, String> {
        let Some(block) = block_events(text) else {
            return Ok(false);
        };
        match saphyr_events(text) {
            Some(full) if full == block => Ok(true),
            full => Err(format!(
                "{text:?}:\nblock reader: {block:#?}\nsaphyr-parser: {full:#?}"
            )),
        }
    }

    #[test]
    fn an_inventory_as_serde_yaml_ng_writes_it_is_taken_with_saphyr_parsers_events() {
        let text = "cluster:\n  name: pool-a\n  target_version: 8.2.1\npolicy:\n  max_unavailable: 1\n\
                    hosts:\n- name: xs01\n  role: master\n  version: 8.0.0\n  memory_mib: 786432\n  cpus: 96\n\
                    \x20 labels:\n    rack: r1\n- name: xs02\n  version: 8.0.0\n  memory_mib: 1\n  cpus: 2\n\
                    vms:\n- name: web-01\n  host: xs01\n  memory_mib: 8192\n  allowed_hosts:\n  - xs01\n  - xs02\n\
                    - name: web-02\n  host: xs02\n  memory_mib: 512\n  anti_affinity: ''\n";
        assert_eq!(agrees(text), Ok(true));
    }

    #[test]
    fn the_forms_people_write_are_taken_with_saphyr_parsers_events() {
        for text in [
            "---\na: 1\n",
            "# head\na: 1 # one\n\nb:   two words  \nc: 'it''s'\nd: \"x # y\"\ne: ~\nf:\ng: {}\nh: []\n",
            "hosts:\n  - {name: h1, version: 8.0.0, memory_mib: 100, cpus: 2}\n  - {name: h2, version: '8.0.0'}\n",
            "- [a, b, 'c d']\n- -1\n- .inf\n- 0x1F\n- 1e3\n- yes\n- ---\n",
            "a:\n  b:\n    c: 1\n  d:\nx: 2\n",
            "a:\n- 1\n- 2\nb:\n  - 3\n",
            "-   name: a\n    host: b\n-  x\n",
            "  a: 1\n  b: 2\n",
            "a: 1\n# end\n",
        ] {
            assert_eq!(agrees(text), Ok(true), "{text:?}");
        }
    }

    #[test]
    fn constructs_outside_the_subset_are_left_to_saphyr_parser() {
        for text in [
            "a: &x 1\n",
            "a: *x\n",
            "a: !t 1\n",
            "a: |\n  x\n",
            "a: b\n  c\n",
            "\"a\": 1\n",
            "a: \"\\n\"\n",
            "a: b: c\n",
            "a:b\n",
            "a: {b: [c]}\n",
            "a: {b: c,}\n",
            "- - a\n",
            "-\n  a: 1\n",
            "? a\n: b\n",
            "a: 1\n---\nb: 2\n",
            "a: é\n",
            "a: 1\r\n",
            "a: [b,\n  c]\n",
            "a: x#y\n",
            "a: @x\n",
            "a: `x\n",
            "a: 'x' y\n",
            "a: 1\nb\n",
            "a: 1\n b: 2\n",
            "",
            "# only\n",
            "scalar\n",
        ] {
            assert_eq!(agrees(text), Ok(false), "{text:?}");
        }
    }

    /// Pieces of block YAML, usual and tricky, joined into texts.
    const PIECES: &[&str] = &[
        "a",
        "b",
        "name",
        "x y",
        "-1",
        "1e3",
        "0x1F",
        "yes",
        "~",
        "null",
        ".inf",
        "8.0.0",
        "'q'",
        "'it''s'",
        "\"d q\"",
        "\"quoted: x\"",
        "''",
        "{}",
        "[]",
        "{k: v}",
        "{k: v, l: 'w'}",
        "[a, b]",
        "[ a ]",
        "{a:b}",
        "[a,]",
        ": ",
        ":",
        "- ",
        "-",
        "#c",
        " #c",
        " ",
        "  ",
        "\n",
        "\n",
        "\n",
        "\n  ",
        "\n    ",
        "\n- ",
        "\n  - ",
        "---",
        "a: ",
        "b:",
        "'",
        "\"",
        "&a ",
        "*a",
        "!t ",
        "|",
        "? ",
        ",",
        "@",
        "%",
        "\\",
        "é",
    ];

    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(PIECES), 1..30)
            .prop_map(|pieces| pieces.concat())
    }

    /// Inventory-shaped texts: mostly what the block reader takes, so the comparison bites.
    fn inventory_text() -> impl Strategy<Value = String> {
        let value = proptest::sample::select(
            &[
                "x", "8.0.0", "12", "-3", "'7'", "\"q\"", "~", "", "{a: b}", "[h1, h2]", "yes",
                "a b",
            ][..],
        );
        let entry = (
            proptest::sample::select(&["name", "host", "memory_mib", "labels"][..]),
            value,
        );
        let item = proptest::collection::vec(entry, 1..5);
        (proptest::collection::vec(item, 0..6), 0usize..3).prop_map(|(items, indent)| {
            let pad = " ".repeat(indent);
            let mut text = String::from("cluster:\n  name: c\nhosts:\n");
            for item in items {
                for (index, (key, value)) in item.iter().enumerate() {
                    let lead = if index == 0 {
                        format!("{pad}- ")
                    } else {
                        format!("{pad}  ")
                    };
                    text.push_str(&format!("{lead}{key}: {value}\n"));
                }
            }
            text
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8192))]

        #[test]
        fn the_block_reader_gives_saphyr_parsers_events_or_leaves_the_text(text in text()) {
            prop_assert!(agrees(&text).is_ok(), "{}", agrees(&text).unwrap_err());
        }

        #[test]
        fn inventories_are_taken_with_saphyr_parsers_events(text in inventory_text()) {
            prop_assert!(agrees(&text).is_ok(), "{}", agrees(&text).unwrap_err());
        }
    }
}
