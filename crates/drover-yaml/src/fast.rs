//! A fast serde `Deserializer` for plain YAML: saphyr-parser's events streamed straight into the
//! caller's own `Deserialize` types, with no event buffer and no `Value` tree in between.
//!
//! serde_yaml_ng (libyaml translated to Rust) first buffers every event of the document, then
//! deserializes; on a 24 MiB inventory that takes seconds. This reader takes the same types
//! through the same serde calls but only for the YAML most files are written in: block and
//! one-line flow collections, plain and quoted one-line scalars, comments. Anything else (anchors,
//! aliases, tags, block scalars, scalars or flow collections over several lines, escapes, tabs,
//! directives, characters libyaml refuses or treats differently) is *declined*, and so is every
//! value the types refuse: the caller then reads the text with serde_yaml_ng, which gives the
//! result or the positioned error. So the fast reader never needs its own error messages, and it
//! must never accept a text serde_yaml_ng refuses nor read one differently: scalars are resolved
//! by `scalar`, a port of serde_yaml_ng's rules, and each `deserialize_*` below makes the visitor
//! calls serde_yaml_ng's makes.
//!
//! It also reports the line of every entry of the root collection (a [`Witness`]), which lets a
//! caller that cut a text into parts prove the cuts fell where the parser saw entries start. It
//! knows no file format.

use std::borrow::Cow;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, StrInput};
use serde::de::{self, DeserializeSeed, Visitor};
use serde::Deserialize;

use crate::block::{BlockEvents, LONGEST_IMPLICIT_KEY_CHARS, OUTSIDE_SUBSET};
use crate::declined::Declined;
use crate::scalar::{
    parse_bool, parse_f64, parse_null, parse_signed_int, parse_unsigned_int, visit_untagged_scalar,
};

/// Where the entries of the root collection start: 1-based lines of the keys of a root mapping
/// or of the items of a root sequence, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Witness {
    pub root_entry_lines: Vec<usize>,
}

/// Reads `text` as a `T` when it is YAML the fast reader takes and `T` accepts it; otherwise
/// says why not, and the caller reads it with serde_yaml_ng instead. Mappings and sequences
/// nested deeper than `max_nesting_depth` are declined too, so that the caller's own depth check
/// (which guards serde_yaml_ng) can word that refusal without running on every text first.
pub fn from_str_fast<'de, T: Deserialize<'de>>(
    text: &'de str,
    max_nesting_depth: usize,
) -> Result<T, Declined> {
    from_str_fast_witnessed(text, max_nesting_depth).map(|(value, _)| value)
}

/// [`from_str_fast`], with the lines where the root collection's entries start.
pub fn from_str_fast_witnessed<'de, T: Deserialize<'de>>(
    text: &'de str,
    max_nesting_depth: usize,
) -> Result<(T, Witness), Declined> {
    check_characters(text)?;
    // The block reader first: several times faster where it takes the text; where it does not,
    // saphyr-parser reads it (the events are the same wherever both read a text).
    if crate::block::may_take(text) {
        match read_events(
            text,
            Events::Block(BlockEvents::new(text)),
            max_nesting_depth,
        ) {
            Err(declined) if declined == OUTSIDE_SUBSET => {}
            result => return result,
        }
    }
    read_events(
        text,
        Events::Full(Box::new(Parser::new_from_str(text))),
        max_nesting_depth,
    )
}

fn read_events<'de, T: Deserialize<'de>>(
    text: &'de str,
    events: Events<'de>,
    max_nesting_depth: usize,
) -> Result<(T, Witness), Declined> {
    let mut reader = EventReader {
        events,
        source: SourceIndex::new(text),
        max_nesting_depth,
        remaining_depth: RECURSION_LIMIT,
        open_collections: Vec::new(),
        witness: Witness::default(),
    };
    match reader.next()?.0 {
        Event::StreamStart => {}
        _ => return Err(Declined::Unsupported("a stream that does not start as one")),
    }
    match reader.next()?.0 {
        Event::DocumentStart(_) => {}
        _ => return Err(Declined::Unsupported("a text without a document")),
    }
    if matches!(reader.peek()?.0, Event::DocumentEnd) {
        return Err(Declined::Unsupported("an empty document"));
    }
    let value = T::deserialize(&mut reader)?;
    // serde_yaml_ng reads the whole stream before deserializing: a syntax error or a second
    // document after the value is an error there, so it must be one here too.
    match reader.next()?.0 {
        Event::DocumentEnd => {}
        _ => return Err(Declined::Unsupported("more after the document's value")),
    }
    match reader.next()?.0 {
        Event::StreamEnd => Ok((value, reader.witness)),
        _ => Err(Declined::Unsupported("a second document")),
    }
}

/// serde_yaml_ng's limit on nested collections.
const RECURSION_LIMIT: usize = 128;

/// Refuses, before parsing, the characters libyaml and saphyr-parser treat differently or that
/// libyaml refuses: control characters (libyaml's "control characters are not allowed"), tabs
/// (indentation rules differ), a byte order mark, the YAML 1.1 line breaks NEL, LS and PS (line
/// breaks to libyaml, ordinary characters to a YAML 1.2 parser), a carriage return not followed
/// by a line feed, and directives (`%` at the start of a line).
fn check_characters(text: &str) -> Result<(), Declined> {
    let bytes = text.as_bytes();
    let mut at_line_start = true;
    for (index, &byte) in bytes.iter().enumerate() {
        match byte {
            b'\n' => {
                at_line_start = true;
                continue;
            }
            b'\r' if bytes.get(index + 1) == Some(&b'\n') => continue,
            b'%' if at_line_start => return Err(Declined::Unsupported("a directive")),
            // Document markers, but for a `---` line opening the text: where a document starts
            // or ends again, libyaml and saphyr-parser part ways.
            b'-' | b'.'
                if at_line_start
                    && is_document_marker(&bytes[index..])
                    && !(index == 0 && byte == b'-') =>
            {
                return Err(Declined::Unsupported("a document marker"))
            }
            0x20..=0x7e => {}
            0x80.. => check_multibyte(bytes, index)?,
            b'\t' => return Err(Declined::Unsupported("a tab")),
            _ => return Err(Declined::Unsupported("a control character")),
        }
        at_line_start = false;
    }
    Ok(())
}

/// A plain scalar in a flow collection that no YAML reader could read another way: no indicator
/// character, and no `-` or `.` at its start.
fn is_quiet_flow_scalar(value: &str) -> bool {
    !value.starts_with(['-', '.'])
        && !value.contains([
            '?', ':', '#', ',', '[', ']', '{', '}', '&', '*', '!', '|', '>', '%', '@', '`', '\'',
            '"',
        ])
}

/// `---` or `...` followed by a space, a line break or the end of the text.
fn is_document_marker(rest: &[u8]) -> bool {
    (rest.starts_with(b"---") || rest.starts_with(b"..."))
        && matches!(rest.get(3), None | Some(b' ' | b'\n' | b'\r' | b'\t'))
}

/// Looks at the start of a multi-byte character only (continuation bytes pass).
fn check_multibyte(bytes: &[u8], index: usize) -> Result<(), Declined> {
    let next = |offset: usize| bytes.get(index + offset).copied().unwrap_or(0);
    let refused = match bytes[index] {
        // U+0080..U+009F: C1 controls, NEL among them.
        0xc2 => next(1) < 0xa0,
        // U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR.
        0xe2 => next(1) == 0x80 && matches!(next(2), 0xa8 | 0xa9),
        // U+FEFF byte order mark, U+FFFE and U+FFFF non-characters.
        0xef => (next(1) == 0xbb && next(2) == 0xbf) || (next(1) == 0xbf && next(2) >= 0xbe),
        _ => false,
    };
    match refused {
        true => Err(Declined::Unsupported(
            "a character libyaml refuses or reads as a line break",
        )),
        false => Ok(()),
    }
}

/// Character positions (what saphyr-parser's markers count) to byte offsets. Inventories are
/// ASCII almost always, where the two are the same; otherwise a cursor moves forward only, as
/// the events do, so the whole text is walked once at most.
struct SourceIndex<'de> {
    text: &'de str,
    ascii: bool,
    cursor_chars: usize,
    cursor_bytes: usize,
}

impl<'de> SourceIndex<'de> {
    fn new(text: &'de str) -> SourceIndex<'de> {
        SourceIndex {
            text,
            ascii: text.is_ascii(),
            cursor_chars: 0,
            cursor_bytes: 0,
        }
    }

    fn byte_offset(&mut self, char_index: usize) -> usize {
        if self.ascii {
            return char_index;
        }
        if char_index < self.cursor_chars {
            self.cursor_chars = 0;
            self.cursor_bytes = 0;
        }
        let rest = &self.text[self.cursor_bytes..];
        let skipped: usize = rest
            .chars()
            .take(char_index - self.cursor_chars)
            .map(char::len_utf8)
            .sum();
        self.cursor_chars = char_index;
        self.cursor_bytes += skipped;
        self.cursor_bytes
    }

    fn slice(&mut self, span: Span) -> &'de str {
        let start = self.byte_offset(span.start.index());
        let end = self.byte_offset(span.end.index());
        &self.text[start..end.max(start)]
    }

    fn byte_at(&mut self, char_index: usize) -> Option<u8> {
        let offset = self.byte_offset(char_index);
        self.text.as_bytes().get(offset).copied()
    }
}

/// An open collection: flow (`[`, `{`) or block, and the line it started on.
#[derive(Clone, Copy)]
struct OpenCollection {
    flow: bool,
    start_line: usize,
}

/// Where the events come from: the block reader for the plain subset, or saphyr-parser.
enum Events<'de> {
    Block(BlockEvents<'de>),
    /// Boxed: the parser is large and the block reader is the usual case.
    Full(Box<Parser<'de, StrInput<'de>>>),
}

impl<'de> Events<'de> {
    fn next(&mut self) -> Result<(Event<'de>, Span), Declined> {
        match self {
            Events::Block(block) => block.next_event(),
            Events::Full(parser) => match parser.next_event() {
                Some(Ok(event)) => Ok(event),
                Some(Err(error)) => Err(Declined::Syntax(error.to_string())),
                None => Err(Declined::Syntax("the text ended early".into())),
            },
        }
    }

    fn peek(&mut self) -> Result<&(Event<'de>, Span), Declined> {
        match self {
            Events::Block(block) => block.peek(),
            Events::Full(parser) => match parser.peek() {
                Some(Ok(event)) => Ok(event),
                Some(Err(error)) => Err(Declined::Syntax(error.to_string())),
                None => Err(Declined::Syntax("the text ended early".into())),
            },
        }
    }
}

struct EventReader<'de> {
    events: Events<'de>,
    source: SourceIndex<'de>,
    max_nesting_depth: usize,
    remaining_depth: usize,
    open_collections: Vec<OpenCollection>,
    witness: Witness,
}

/// A scalar as the reader hands it to serde: its text and whether it was written plain.
struct Scalar<'de> {
    value: Cow<'de, str>,
    plain: bool,
}

impl<'de> Scalar<'de> {
    fn borrowed(&self) -> Option<&'de str> {
        match self.value {
            Cow::Borrowed(borrowed) => Some(borrowed),
            Cow::Owned(_) => None,
        }
    }

    fn visit_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.value {
            Cow::Borrowed(borrowed) => visitor.visit_borrowed_str(borrowed),
            Cow::Owned(owned) => visitor.visit_string(owned),
        }
    }

    /// serde_yaml_ng's `visit_scalar` for an untagged scalar.
    fn visit_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.plain {
            true => visit_untagged_scalar(visitor, &self.value, self.borrowed()),
            false => self.visit_str(visitor),
        }
    }

    /// A plain empty or null scalar: what `Option` reads as `None`.
    fn is_null(&self) -> bool {
        self.plain && (self.value.is_empty() || parse_null(&self.value))
    }
}

/// The next node's first event, with the checks every node passes.
enum Node<'de> {
    Scalar(Scalar<'de>),
    SequenceStart,
    MappingStart,
}

fn refused(what: &str) -> Declined {
    Declined::Refused(format!("the fast reader's types refuse {what}"))
}

impl<'de> EventReader<'de> {
    fn next(&mut self) -> Result<(Event<'de>, Span), Declined> {
        self.events.next()
    }

    fn peek(&mut self) -> Result<&(Event<'de>, Span), Declined> {
        self.events.peek()
    }

    fn in_flow(&self) -> bool {
        self.open_collections.last().is_some_and(|open| open.flow)
    }

    /// Consumes the next node's first event, declining what the fast reader does not take.
    fn next_node(&mut self) -> Result<Node<'de>, Declined> {
        let (event, span) = self.next()?;
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return Err(Declined::Unsupported("an anchor or a tag"));
                }
                let plain = match style {
                    ScalarStyle::Plain => true,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => false,
                    ScalarStyle::Literal | ScalarStyle::Folded => {
                        return Err(Declined::Unsupported("a block scalar"))
                    }
                };
                // Folding lines and escapes are where YAML 1.1 and 1.2 readers part ways.
                if span.start.line() != span.end.line() {
                    return Err(Declined::Unsupported("a scalar over several lines"));
                }
                if style == ScalarStyle::DoubleQuoted && self.source.slice(span).contains('\\') {
                    return Err(Declined::Unsupported("an escape in a double-quoted scalar"));
                }
                // libyaml (YAML 1.1) and YAML 1.2 split `a:b` differently inside `[...]`, and
                // read `?` or `-` alone there differently: inside flow collections only plain
                // scalars without indicators are taken.
                // An empty one there may stand for `{a:}`, which libyaml refuses.
                if plain && self.in_flow() && (value.is_empty() || !is_quiet_flow_scalar(&value)) {
                    return Err(Declined::Unsupported("an indicator in a flow scalar"));
                }
                Ok(Node::Scalar(Scalar { value, plain }))
            }
            Event::SequenceStart(anchor, tag) => {
                self.open(anchor, tag.is_some(), span, b'[')?;
                Ok(Node::SequenceStart)
            }
            Event::MappingStart(anchor, tag) => {
                self.open(anchor, tag.is_some(), span, b'{')?;
                Ok(Node::MappingStart)
            }
            Event::Alias(_) => Err(Declined::Unsupported("an alias")),
            _ => Err(Declined::Syntax("an event where a value belongs".into())),
        }
    }

    fn open(
        &mut self,
        anchor: usize,
        tagged: bool,
        span: Span,
        flow_opener: u8,
    ) -> Result<(), Declined> {
        if anchor != 0 || tagged {
            return Err(Declined::Unsupported("an anchor or a tag"));
        }
        if self.open_collections.len() >= self.max_nesting_depth {
            return Err(Declined::Unsupported(
                "nesting deeper than the caller allows",
            ));
        }
        let flow = self.source.byte_at(span.start.index()) == Some(flow_opener);
        // `[a: b]`: a mapping implied inside a flow sequence.
        if self.in_flow() && !flow {
            return Err(Declined::Unsupported(
                "an implicit mapping in a flow sequence",
            ));
        }
        self.open_collections.push(OpenCollection {
            flow,
            start_line: span.start.line(),
        });
        Ok(())
    }

    /// Consumes a collection's end event.
    fn close(&mut self) -> Result<(), Declined> {
        let (event, span) = self.next()?;
        if !matches!(event, Event::SequenceEnd | Event::MappingEnd) {
            return Err(Declined::Syntax("a collection that does not end".into()));
        }
        let open = self
            .open_collections
            .pop()
            .ok_or_else(|| Declined::Syntax("an end without a start".into()))?;
        if open.flow && span.end.line() != open.start_line {
            return Err(Declined::Unsupported(
                "a flow collection over several lines",
            ));
        }
        Ok(())
    }

    /// Whether the next event ends the open collection.
    fn at_collection_end(&mut self) -> Result<bool, Declined> {
        Ok(matches!(
            self.peek()?.0,
            Event::SequenceEnd | Event::MappingEnd
        ))
    }

    /// Records where a root entry starts, for the [`Witness`].
    fn witness_entry(&mut self) -> Result<(), Declined> {
        if self.open_collections.len() == 1 {
            let line = self.peek()?.1.start.line();
            self.witness.root_entry_lines.push(line);
        }
        Ok(())
    }

    fn nested<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, Declined>,
    ) -> Result<T, Declined> {
        self.remaining_depth = self
            .remaining_depth
            .checked_sub(1)
            .ok_or(Declined::Unsupported(
                "nesting deeper than serde_yaml_ng allows",
            ))?;
        let result = read(self);
        self.remaining_depth += 1;
        result
    }

    /// serde_yaml_ng's `visit_sequence`: the visitor, then any items it left must not exist.
    fn visit_sequence<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Declined> {
        let value = self.nested(|reader| visitor.visit_seq(SeqAccess { reader }))?;
        if !self.at_collection_end()? {
            return Err(refused("a sequence longer than the type reads"));
        }
        self.close()?;
        Ok(value)
    }

    fn visit_mapping<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Declined> {
        let value = self.nested(|reader| visitor.visit_map(MapAccess { reader }))?;
        if !self.at_collection_end()? {
            return Err(refused("a mapping with entries the type did not read"));
        }
        self.close()?;
        Ok(value)
    }

    fn skip_node(&mut self) -> Result<(), Declined> {
        match self.next_node()? {
            Node::Scalar(_) => Ok(()),
            Node::SequenceStart | Node::MappingStart => {
                while !self.at_collection_end()? {
                    self.skip_node()?;
                }
                self.close()
            }
        }
    }

    /// The next node as a plain scalar's text, for the number and boolean readers.
    fn next_plain_scalar(&mut self, wanted: &str) -> Result<Cow<'de, str>, Declined> {
        match self.next_node()? {
            Node::Scalar(Scalar { value, plain: true }) => Ok(value),
            _ => Err(refused(wanted)),
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut EventReader<'de> {
    type Error = Declined;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.next_node()? {
            Node::Scalar(scalar) => scalar.visit_any(visitor),
            Node::SequenceStart => self.visit_sequence(visitor),
            Node::MappingStart => self.visit_mapping(visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        let text = self.next_plain_scalar("a boolean")?;
        match parse_bool(&text) {
            Some(boolean) => visitor.visit_bool(boolean),
            None => Err(refused("a boolean")),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        let text = self.next_plain_scalar("an integer")?;
        match parse_signed_int(&text, i64::from_str_radix) {
            Some(int) => visitor.visit_i64(int),
            None => Err(refused("an integer")),
        }
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        let text = self.next_plain_scalar("an integer")?;
        match parse_signed_int(&text, i128::from_str_radix) {
            Some(int) => visitor.visit_i128(int),
            None => Err(refused("an integer")),
        }
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        let text = self.next_plain_scalar("an integer")?;
        match parse_unsigned_int(&text, u64::from_str_radix) {
            Some(int) => visitor.visit_u64(int),
            None => Err(refused("an integer")),
        }
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        let text = self.next_plain_scalar("an integer")?;
        match parse_unsigned_int(&text, u128::from_str_radix) {
            Some(int) => visitor.visit_u128(int),
            None => Err(refused("an integer")),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        let text = self.next_plain_scalar("a float")?;
        match parse_f64(&text) {
            Some(float) => visitor.visit_f64(float),
            None => Err(refused("a float")),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_str(visitor)
    }

    /// Any scalar as written: serde_yaml_ng hands `version: 8.10` to a text field as "8.10".
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.next_node()? {
            Node::Scalar(scalar) => scalar.visit_str(visitor),
            _ => Err(refused("a collection where text belongs")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Declined> {
        Err(refused("bytes"))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Declined> {
        Err(refused("bytes"))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        let is_null = match &self.peek()?.0 {
            Event::Scalar(value, ScalarStyle::Plain, _, None) => {
                value.is_empty() || parse_null(value)
            }
            _ => false,
        };
        match is_null {
            true => {
                self.next_node()?;
                visitor.visit_none()
            }
            false => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.next_node()? {
            Node::Scalar(scalar) if scalar.is_null() => visitor.visit_unit(),
            _ => Err(refused("a value where null belongs")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        self.nested(|reader| visitor.visit_newtype_struct(reader))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.next_node()? {
            Node::SequenceStart => self.visit_sequence(visitor),
            // `hosts:` with nothing after it is an empty list to serde_yaml_ng.
            Node::Scalar(Scalar { value, plain: true }) if value.is_empty() => {
                visitor.visit_seq(de::value::SeqDeserializer::new(std::iter::empty::<()>()))
            }
            _ => Err(refused("a value where a sequence belongs")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self.next_node()? {
            Node::MappingStart => self.visit_mapping(visitor),
            Node::Scalar(Scalar { value, plain: true }) if value.is_empty() => visitor.visit_map(
                de::value::MapDeserializer::new(std::iter::empty::<((), ())>()),
            ),
            _ => Err(refused("a value where a mapping belongs")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Declined> {
        self.deserialize_map(visitor)
    }

    /// Without tags, serde_yaml_ng reads only unit variants, from a scalar.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Declined> {
        match self.peek()?.0 {
            Event::Scalar(..) => visitor.visit_enum(UnitVariantAccess { reader: self }),
            _ => Err(refused("a collection where a name belongs")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.skip_node()?;
        visitor.visit_unit()
    }
}

struct SeqAccess<'a, 'de> {
    reader: &'a mut EventReader<'de>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, 'de> {
    type Error = Declined;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Declined> {
        if self.reader.at_collection_end()? {
            return Ok(None);
        }
        self.reader.witness_entry()?;
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

struct MapAccess<'a, 'de> {
    reader: &'a mut EventReader<'de>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_, 'de> {
    type Error = Declined;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Declined> {
        if self.reader.at_collection_end()? {
            return Ok(None);
        }
        if let Event::Scalar(key, ..) = &self.reader.peek()?.0 {
            if key.chars().count() > LONGEST_IMPLICIT_KEY_CHARS {
                return Err(Declined::Unsupported("a key longer than libyaml allows"));
            }
            // `: value`: YAML 1.2 reads a null key there, libyaml refuses the line.
            if key.is_empty() {
                return Err(Declined::Unsupported("an empty key"));
            }
        }
        self.reader.witness_entry()?;
        seed.deserialize(&mut *self.reader).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Declined> {
        seed.deserialize(&mut *self.reader)
    }
}

/// A unit variant named by a scalar.
struct UnitVariantAccess<'a, 'de> {
    reader: &'a mut EventReader<'de>,
}

impl<'de> de::EnumAccess<'de> for UnitVariantAccess<'_, 'de> {
    type Error = Declined;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Declined> {
        let variant = seed.deserialize(&mut *self.reader)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariantAccess<'_, 'de> {
    type Error = Declined;

    fn unit_variant(self) -> Result<(), Declined> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, Declined> {
        Err(refused("a unit variant where a newtype variant belongs"))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, Declined> {
        Err(refused("a unit variant where a tuple variant belongs"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Declined> {
        Err(refused("a unit variant where a struct variant belongs"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Entry {
        name: String,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        size: Option<u64>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
    }

    fn fast<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Declined> {
        from_str_fast(text, 64)
    }

    /// The fast reader gives a value, and the same one serde_yaml_ng gives.
    fn same_as_serde_yaml_ng<T>(text: &str) -> T
    where
        T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let plain: T = serde_yaml_ng::from_str(text).expect("serde_yaml_ng reads it");
        let fast: T = fast(text).expect("the fast reader reads it");
        assert_eq!(fast, plain, "{text:?}");
        fast
    }

    #[test]
    fn scalars_mean_what_they_mean_to_serde_yaml_ng() {
        let entries: Vec<Entry> = same_as_serde_yaml_ng(
            "- name: 8.10\n  note: ~\n  size: 0x10\n- name: ''\n  note:\n- name: '~'\n  note: \"x # y\" # z\n  labels: {rack: r1, row: '2'}\n",
        );
        assert_eq!(entries[0].name, "8.10");
        assert_eq!(entries[0].note, None);
        assert_eq!(entries[0].size, Some(16));
        assert_eq!(entries[1].name, "");
        assert_eq!(entries[2].note.as_deref(), Some("x # y"));
        let any: serde_yaml_ng::Value =
            same_as_serde_yaml_ng("[1, 3.5, true, ~, '7', 0o17, 012, \"-2\"]\n");
        assert_eq!(any[5], serde_yaml_ng::Value::from(15));
        let block: serde_yaml_ng::Value = same_as_serde_yaml_ng("- -2\n- .inf\n- -.5\n- +3\n");
        assert_eq!(block[0], serde_yaml_ng::Value::from(-2));
    }

    #[test]
    fn values_the_types_refuse_are_declined() {
        assert!(matches!(
            fast::<Entry>("name: [a]\n"),
            Err(Declined::Refused(_))
        ));
        assert!(matches!(
            fast::<Vec<u32>>("[4294967296]\n"),
            Err(Declined::Refused(_))
        ));
        assert!(matches!(
            fast::<Entry>("name: a\nname: b\n"),
            Err(Declined::Refused(_))
        ));
    }

    #[test]
    fn constructs_where_parsers_differ_are_declined() {
        for text in [
            "name: &a x\n",
            "name: !t x\n",
            "name: |\n  x\n",
            "name: \"a\n  b\"\n",
            "name: a\n  b\n",
            "name: \"\\u00e9\"\n",
            "name:\tx\n",
            "\u{feff}name: x\n",
            "name: a\u{85}b\n",
            "name: a\u{2028}b\n",
            "name: a\u{7}b\n",
            "%YAML 1.2\n---\nname: x\n",
            "name: x\n---\nname: y\n",
            "name: x\nlabels: {a:b}\n",
            "name: x\nlabels: {a: b,\n  c: d}\n",
            "name: x\rlabels: {}\n",
            // Found by the differential test below: accepted by saphyr-parser, not by libyaml,
            // or read another way.
            ": x\n",
            "...\nname: x\n",
            "name: x\nlabels: {a:}\n",
            "name: x\nlabels: {a, ?}\n",
        ] {
            let read = fast::<Entry>(text);
            assert!(
                matches!(read, Err(Declined::Unsupported(_) | Declined::Syntax(_))),
                "{text:?}: {read:?}"
            );
        }
    }

    #[test]
    fn a_mapping_implied_in_a_flow_sequence_is_declined() {
        let read = fast::<serde_yaml_ng::Value>("[a: b]\n");
        assert!(matches!(read, Err(Declined::Unsupported(_))), "{read:?}");
    }

    #[test]
    fn nesting_deeper_than_asked_is_declined() {
        let text = "a: [[[1]]]\n";
        assert!(from_str_fast::<serde_yaml_ng::Value>(text, 4).is_ok());
        assert!(from_str_fast::<serde_yaml_ng::Value>(text, 3).is_err());
    }

    #[test]
    fn the_witness_names_the_lines_of_root_entries() {
        let text = "# head\n- name: a\n  note: b\n\n- name: c\n";
        let (entries, witness) = from_str_fast_witnessed::<Vec<Entry>>(text, 64).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(witness.root_entry_lines, vec![2, 5]);
        let (_, witness) =
            from_str_fast_witnessed::<Entry>("name: a\nlabels:\n  x: y\nnote: n\n", 64).unwrap();
        assert_eq!(witness.root_entry_lines, vec![1, 2, 4]);
    }
}

/// Random short texts from YAML's significant characters: whatever the fast reader makes of one,
/// serde_yaml_ng must make the same of it. This is where the two parsers' edge cases meet.
#[cfg(test)]
mod differential {
    use proptest::prelude::*;

    use super::*;

    /// Pieces of plain YAML, drawn most of the time.
    const COMMON: &[&str] = &[
        "a", "b", "1", "0x1", "-1", "1.5", ".nan", "~", "true", "'q'", "\"d\"", " ", " ", "  ",
        "\n", "\n", "\n  ", "\n    ", "\n- ", "\n  - ", ": ", ":", "-", "- ", " #c", "[", "]", "{",
        "}", ", ", ",", "é",
    ];

    /// Pieces where readers differ or that the fast reader declines.
    const RARE: &[&str] = &[
        "#", "'", "\"", "?", "? ", "&x ", "*x", "!t ", "|", ">", "%", "@", "`", ".", "...", "---",
        "\\", "\t", "\r\n", "\r", "\u{85}", "\u{feff}", "\u{2028}", "\u{7}",
    ];

    fn text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            40 => proptest::sample::select(COMMON),
            1 => proptest::sample::select(RARE),
        ];
        proptest::collection::vec(piece, 1..24).prop_map(|pieces| pieces.concat())
    }

    /// Values compared by their debug text, so that two NaNs are equal.
    fn shown(value: &serde_yaml_ng::Value) -> String {
        format!("{value:?}")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8192))]

        #[test]
        fn whatever_the_fast_reader_reads_serde_yaml_ng_reads_the_same(text in text()) {
            if let Ok(fast) = from_str_fast::<serde_yaml_ng::Value>(&text, 64) {
                let plain = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text);
                prop_assert!(plain.is_ok(), "fast read {:?} as {:?}, serde_yaml_ng refused it: {:?}", text, fast, plain);
                prop_assert_eq!(shown(&fast), shown(&plain.unwrap()), "{:?}", text);
            }
        }
    }
}
