//! Cuts a large block-style YAML mapping into parts that can be read on several cores: the
//! sequences under some top-level keys (`hosts:`, `vms:`), cut between their items, and the rest
//! of the text (the head) with those keys left empty.
//!
//! The cut is made by looking at lines only, so it is a guess that the reader must confirm: it
//! reads the head and every part with [`crate::from_str_fast_witnessed`] and keeps the result
//! only when [`SplitDocument::head_confirmed`] and [`SequencePart::confirmed`] say the parser saw
//! a root key start on every line the cut took for a key, and an item start on every line it took
//! for an item. Then no quoted scalar, flow collection or other construct spans a cut, and
//! reading the parts one after the other is reading the whole text. Anything unusual at the
//! start of a line (document markers, directives, quoted or complex keys, flow or indented
//! top-level sequences) makes the cut give up, and the caller reads the text whole. This module
//! knows no file format: the caller names the keys.

/// A text cut into a head and the parts of the sequences under the keys asked for.
#[derive(Debug)]
pub struct SplitDocument<'a> {
    /// The text without the cut items; each cut key is left with an empty (null) value.
    pub head: String,
    /// 1-based lines of the head where the cut saw a top-level key start.
    pub head_key_lines: Vec<usize>,
    /// One entry per key asked for, in the same order; no parts when the key is absent or its
    /// value is not a block sequence at column 0.
    pub sequences: Vec<Vec<SequencePart<'a>>>,
}

/// A run of whole items of one top-level sequence, as a text of its own.
#[derive(Debug)]
pub struct SequencePart<'a> {
    pub text: &'a str,
    /// 1-based lines of `text` where the cut saw an item (`- `) start.
    pub item_lines: Vec<usize>,
}

impl SplitDocument<'_> {
    /// Whether the parser, reading the head, saw the root keys start where the cut did.
    pub fn head_confirmed(&self, witness: &crate::Witness) -> bool {
        witness.root_entry_lines == self.head_key_lines
    }
}

impl SequencePart<'_> {
    /// Whether the parser, reading this part, saw the items start where the cut did.
    pub fn confirmed(&self, witness: &crate::Witness) -> bool {
        witness.root_entry_lines == self.item_lines
    }
}

/// A line of the text, as the cut sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// Blank, a comment, or indented: belongs to whatever is open.
    Inside,
    /// `- ` at column 0.
    Item,
    /// `name:` at column 0, with what follows the colon empty (or a comment) or not.
    Key { value_empty: bool },
}

/// Cuts `text` (see the module doc), with parts of about `part_bytes` bytes; `None` when the
/// text's lines are not the plain shape the cut understands.
pub fn split_top_level_sequences<'a>(
    text: &'a str,
    keys: &[&str],
    part_bytes: usize,
) -> Option<SplitDocument<'a>> {
    let mut head = String::with_capacity(text.len().min(1 << 20));
    let mut head_key_lines = Vec::new();
    let mut head_lines = 0usize;
    let mut sequences: Vec<Vec<SequencePart<'a>>> = keys.iter().map(|_| Vec::new()).collect();
    let mut seen = vec![false; keys.len()];
    // The key whose items are being cut, with the byte where its body (first item) started.
    let mut open_body: Option<(usize, usize)> = None;
    // A cut key whose first item has not come yet (comments may come first).
    let mut awaiting_body: Option<usize> = None;
    let mut offset = 0usize;
    while offset < text.len() {
        let end = text[offset..]
            .find('\n')
            .map_or(text.len(), |newline| offset + newline + 1);
        let line = &text[offset..end];
        let kind = classify(line)?;
        match kind {
            LineKind::Key { value_empty } => {
                if let Some((key_index, body_start)) = open_body.take() {
                    sequences[key_index] = cut_body(&text[body_start..offset], part_bytes);
                }
                awaiting_body = None;
                let name = &line[..line.find(':')?];
                if let Some(key_index) = keys.iter().position(|key| *key == name) {
                    if std::mem::replace(&mut seen[key_index], true) {
                        return None;
                    }
                    if value_empty {
                        awaiting_body = Some(key_index);
                    }
                }
                head_lines += 1;
                head_key_lines.push(head_lines);
                head.push_str(line);
            }
            LineKind::Item if awaiting_body.is_some() => {
                open_body = awaiting_body.take().map(|key_index| (key_index, offset));
            }
            LineKind::Inside if awaiting_body.is_some() && !is_blank_or_comment(line) => {
                // An indented sequence or a value on the next line: not cut, read with the head.
                awaiting_body = None;
                head_lines += 1;
                head.push_str(line);
            }
            _ if open_body.is_some() => {}
            _ => {
                head_lines += 1;
                head.push_str(line);
            }
        }
        offset = end;
    }
    if let Some((key_index, body_start)) = open_body {
        sequences[key_index] = cut_body(&text[body_start..], part_bytes);
    }
    if !head.ends_with('\n') && !head.is_empty() {
        head.push('\n');
    }
    Some(SplitDocument {
        head,
        head_key_lines,
        sequences,
    })
}

/// What a line is; `None` for a line at column 0 the cut does not understand.
fn classify(line: &str) -> Option<LineKind> {
    let content = line.trim_end_matches(['\n', '\r']);
    let Some(&first) = content.as_bytes().first() else {
        return Some(LineKind::Inside);
    };
    match first {
        b' ' | b'#' => Some(LineKind::Inside),
        b'-' => match content.as_bytes().get(1) {
            Some(b' ') | None => Some(LineKind::Item),
            _ => None,
        },
        b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
            let colon = content.find(':')?;
            let name = &content[..colon];
            if !name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
            {
                return None;
            }
            let rest = &content[colon + 1..];
            if !rest.is_empty() && !rest.starts_with(' ') {
                return None;
            }
            let value = rest.trim_start();
            Some(LineKind::Key {
                value_empty: value.is_empty() || value.starts_with('#'),
            })
        }
        _ => None,
    }
}

fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// Cuts a body (whole items, each starting with `- ` at column 0) into parts of about
/// `part_bytes`, at item starts.
fn cut_body(body: &str, part_bytes: usize) -> Vec<SequencePart<'_>> {
    let mut parts = Vec::new();
    let mut part_start = 0usize;
    let mut item_lines = Vec::new();
    let mut line_number = 0usize;
    let mut offset = 0usize;
    while offset < body.len() {
        let end = body[offset..]
            .find('\n')
            .map_or(body.len(), |newline| offset + newline + 1);
        let is_item = body.as_bytes()[offset] == b'-';
        if is_item && offset - part_start >= part_bytes && !item_lines.is_empty() {
            parts.push(SequencePart {
                text: &body[part_start..offset],
                item_lines: std::mem::take(&mut item_lines),
            });
            part_start = offset;
            line_number = 0;
        }
        line_number += 1;
        if is_item {
            item_lines.push(line_number);
        }
        offset = end;
    }
    if part_start < body.len() {
        parts.push(SequencePart {
            text: &body[part_start..],
            item_lines,
        });
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "cluster:\n  name: a\nhosts:\n# the hosts\n- name: h1\n  cpus: 2\n- name: h2\nvms: # none yet\n- name: v1\n- name: v2\n- name: v3\npolicy: {}\n";

    #[test]
    fn items_are_cut_into_parts_and_the_head_keeps_the_rest() {
        let split = split_top_level_sequences(TEXT, &["hosts", "vms"], 1).unwrap();
        assert_eq!(
            split.head,
            "cluster:\n  name: a\nhosts:\n# the hosts\nvms: # none yet\npolicy: {}\n"
        );
        assert_eq!(split.head_key_lines, vec![1, 3, 5, 6]);
        let hosts: Vec<&str> = split.sequences[0].iter().map(|part| part.text).collect();
        assert_eq!(hosts, vec!["- name: h1\n  cpus: 2\n", "- name: h2\n"]);
        assert_eq!(split.sequences[1].len(), 3);
        assert_eq!(split.sequences[1][2].item_lines, vec![1]);
    }

    #[test]
    fn large_parts_hold_several_items() {
        let split = split_top_level_sequences(TEXT, &["vms"], 1 << 20).unwrap();
        assert_eq!(split.sequences[0].len(), 1);
        assert_eq!(split.sequences[0][0].item_lines, vec![1, 2, 3]);
        assert!(split.head.contains("- name: h1"));
    }

    #[test]
    fn unusual_lines_make_the_cut_give_up() {
        for text in [
            "---\nhosts:\n- a\n",
            "\"hosts\":\n- a\n",
            "hosts:\n-a\n",
            "{hosts: []}\n",
            "%YAML 1.2\n---\nhosts: []\n",
        ] {
            assert!(
                split_top_level_sequences(text, &["hosts"], 1).is_none(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_key_given_twice_is_not_cut() {
        assert!(split_top_level_sequences("vms:\n- a\nvms:\n- b\n", &["vms"], 1).is_none());
    }

    #[test]
    fn an_indented_sequence_stays_in_the_head() {
        let text = "hosts:\n  - name: a\nvms:\n- name: v\n";
        let split = split_top_level_sequences(text, &["hosts", "vms"], 1).unwrap();
        assert!(split.sequences[0].is_empty());
        assert_eq!(split.head, "hosts:\n  - name: a\nvms:\n");
        assert_eq!(split.sequences[1][0].text, "- name: v\n");
    }
}
