//! Cuts a large block-style YAML mapping into parts that can be read on several cores: the
//! block sequences under some top-level keys (`hosts:`, `vms:`, their items at column 0 or
//! indented), cut between their items, and the rest of the text (the head) with those keys left
//! empty.
//!
//! The cut is made by looking at lines only, so it is a guess that the reader must confirm: it
//! reads the head and every part with [`crate::from_str_fast_witnessed`] and keeps the result
//! only when [`SplitDocument::head_confirmed`] and [`SequencePart::confirmed`] say the parser saw
//! a root key start on every line the cut took for a key, and an item start on every line it took
//! for an item. Then no quoted scalar, flow collection or other construct spans a cut, and
//! reading the parts one after the other is reading the whole text. Anything unusual at the
//! start of a line (document markers, directives, quoted or complex keys, a flow mapping, content
//! left of a sequence's items) makes the cut give up, and the caller reads the text whole. This
//! module knows no file format: the caller names the keys.

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
    /// Blank, or only a comment: belongs to whatever is open.
    Blank,
    /// `- ` (or a lone `-`) after `indent` spaces: an item of a block sequence.
    Item { indent: usize },
    /// Anything else after `indent` spaces, `indent` > 0.
    Indented { indent: usize },
    /// `name:` at column 0, with what follows the colon empty (or a comment) or not.
    Key { value_empty: bool },
}

/// The key whose items are being cut: its index, the byte where its first item starts, and the
/// column of its items (0, or more for `hosts:\n  - name: …`).
#[derive(Clone, Copy)]
struct OpenBody {
    key_index: usize,
    start: usize,
    item_indent: usize,
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
    let mut open_body: Option<OpenBody> = None;
    // A cut key whose first item has not come yet (comments may come first).
    let mut awaiting_body: Option<usize> = None;
    let mut offset = 0usize;
    while offset < text.len() {
        let end = text[offset..]
            .find('\n')
            .map_or(text.len(), |newline| offset + newline + 1);
        let line = &text[offset..end];
        let mut in_head = true;
        match classify(line)? {
            LineKind::Key { value_empty } => {
                if let Some(body) = open_body.take() {
                    sequences[body.key_index] =
                        cut_body(&text[body.start..offset], body, part_bytes);
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
                head_key_lines.push(head_lines + 1);
            }
            LineKind::Item { indent } if awaiting_body.is_some() => {
                open_body = awaiting_body.take().map(|key_index| OpenBody {
                    key_index,
                    start: offset,
                    item_indent: indent,
                });
                in_head = false;
            }
            // A value on the next line that is no block sequence: not cut, read with the head.
            LineKind::Indented { .. } if awaiting_body.is_some() => awaiting_body = None,
            LineKind::Item { indent } | LineKind::Indented { indent } if open_body.is_some() => {
                // Less indented than the items, yet no key: a shape the cut does not know.
                if open_body.is_some_and(|body| indent < body.item_indent) {
                    return None;
                }
                in_head = false;
            }
            LineKind::Blank if open_body.is_some() => in_head = false,
            _ => {}
        }
        if in_head {
            head_lines += 1;
            head.push_str(line);
        }
        offset = end;
    }
    if let Some(body) = open_body {
        sequences[body.key_index] = cut_body(&text[body.start..], body, part_bytes);
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
    let indent = content.bytes().take_while(|byte| *byte == b' ').count();
    let rest = &content.as_bytes()[indent..];
    match rest.first() {
        None | Some(b'#') => return Some(LineKind::Blank),
        Some(b'-') if matches!(rest.get(1), Some(b' ') | None) => {
            return Some(LineKind::Item { indent })
        }
        _ if indent > 0 => return Some(LineKind::Indented { indent }),
        Some(b'a'..=b'z' | b'A'..=b'Z' | b'_') => {}
        _ => return None,
    }
    let colon = content.find(':')?;
    let name = &content[..colon];
    if !name
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    {
        return None;
    }
    let after = &content[colon + 1..];
    if !after.is_empty() && !after.starts_with(' ') {
        return None;
    }
    let value = after.trim_start();
    Some(LineKind::Key {
        value_empty: value.is_empty() || value.starts_with('#'),
    })
}

/// Whether `line` starts an item of the body: `- ` (or a lone `-`) at the items' column.
fn starts_item(line: &[u8], item_indent: usize) -> bool {
    line.len() > item_indent
        && line[..item_indent].iter().all(|byte| *byte == b' ')
        && line[item_indent] == b'-'
        && matches!(line.get(item_indent + 1), Some(b' ' | b'\n' | b'\r') | None)
}

/// Cuts a body (whole items) into parts of about `part_bytes`, at item starts.
fn cut_body(body_text: &str, body: OpenBody, part_bytes: usize) -> Vec<SequencePart<'_>> {
    let mut parts = Vec::new();
    let mut part_start = 0usize;
    let mut item_lines = Vec::new();
    let mut line_number = 0usize;
    let mut offset = 0usize;
    while offset < body_text.len() {
        let end = body_text[offset..]
            .find('\n')
            .map_or(body_text.len(), |newline| offset + newline + 1);
        let is_item = starts_item(&body_text.as_bytes()[offset..end], body.item_indent);
        if is_item && offset - part_start >= part_bytes && !item_lines.is_empty() {
            parts.push(SequencePart {
                text: &body_text[part_start..offset],
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
    if part_start < body_text.len() {
        parts.push(SequencePart {
            text: &body_text[part_start..],
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
    fn an_indented_sequence_is_cut_at_its_own_column() {
        let text = "hosts:\n  - name: a\n    labels:\n    - x\n  - name: b\nvms:\n- name: v\n";
        let split = split_top_level_sequences(text, &["hosts", "vms"], 1).unwrap();
        assert_eq!(split.head, "hosts:\nvms:\n");
        let hosts: Vec<&str> = split.sequences[0].iter().map(|part| part.text).collect();
        assert_eq!(
            hosts,
            vec!["  - name: a\n    labels:\n    - x\n", "  - name: b\n"]
        );
        assert_eq!(split.sequences[1][0].text, "- name: v\n");
    }

    #[test]
    fn a_value_on_the_next_line_stays_in_the_head() {
        let text = "hosts:\n  [a, b]\nvms:\n- name: v\n";
        let split = split_top_level_sequences(text, &["hosts", "vms"], 1).unwrap();
        assert!(split.sequences[0].is_empty());
        assert_eq!(split.head, "hosts:\n  [a, b]\nvms:\n");
    }

    #[test]
    fn a_line_left_of_the_items_makes_the_cut_give_up() {
        assert!(split_top_level_sequences("vms:\n  - a\n b\n", &["vms"], 1).is_none());
    }
}
