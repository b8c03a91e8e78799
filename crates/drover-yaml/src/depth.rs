//! A bound on nesting depth that is cheap enough to run on every input before serde_yaml_ng,
//! whose parser slows down quadratically on deeply nested flow collections (`[[[…]]]`).
//!
//! It knows no file format and places nothing itself: a byte scan says whether the text *may*
//! nest deeper than a limit, and only then does the exact event walk (`nesting_deeper_than`) find
//! where. Both are linear; valid inventories of tens of megabytes pay one byte scan.

use crate::locate::{nesting_deeper_than, Position};

/// Where the nesting of mappings and sequences first goes deeper than `limit`, if it does;
/// [`nesting_deeper_than`] with a byte scan in front that clears almost every text at once.
pub fn nesting_deeper_than_bounded(text: &str, limit: usize) -> Option<Position> {
    if !flow_nesting_may_exceed(text, limit) && !block_nesting_may_exceed(text, limit) {
        return None;
    }
    nesting_deeper_than(text, limit)
}

/// An over-estimate of flow nesting: brackets are counted outside comments and outside quoted
/// scalars that start where a flow or block value may start. In flow context a plain scalar
/// cannot hold a bracket, so the count never falls below the true depth there; in block context
/// the true depth is 0 and the count is kept at 0 or more. A false alarm only costs the exact walk.
fn flow_nesting_may_exceed(text: &str, limit: usize) -> bool {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        // Most bytes matter not at all: one table lookup passes them.
        if !INTERESTING[byte as usize] {
            index += 1;
            continue;
        }
        match byte {
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'#' if index == 0 || matches!(bytes[index - 1], b' ' | b'\t' | b'\n' | b'\r') => {
                index = skip_line(text, index);
                continue;
            }
            b'"' | b'\'' if opens_scalar(bytes, index) => {
                index = skip_quoted(bytes, index);
                continue;
            }
            _ => {}
        }
        index += 1;
    }
    false
}

/// The bytes the flow scan looks at; everything else is passed over.
const INTERESTING: [bool; 256] = {
    let mut table = [false; 256];
    let mut index = 0;
    let bytes = *b"[]{}#\"'";
    while index < bytes.len() {
        table[bytes[index] as usize] = true;
        index += 1;
    }
    table
};

/// Whether the quote at `index` opens a quoted scalar: the last byte before it that is not a
/// space is one of `[{,:-?`, or a line start.
fn opens_scalar(bytes: &[u8], index: usize) -> bool {
    let previous = bytes[..index]
        .iter()
        .rev()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r'))
        .copied()
        .unwrap_or(b'\n');
    matches!(previous, b'[' | b'{' | b',' | b':' | b'-' | b'?' | b'\n')
}

/// The index of the end of the line that holds `index` (its `\n`, or the end of the text);
/// `index` is on an ASCII byte, so on a character boundary.
fn skip_line(text: &str, index: usize) -> usize {
    // `str::find` of an ASCII byte searches word at a time, several times faster than a loop.
    text[index..]
        .find('\n')
        .map_or(text.len(), |offset| index + offset)
}

/// The index after the quoted scalar that opens at `index` (`""` escapes with `\`, `''` by doubling,
/// which this scan reads as a close and a reopen, with the same result).
fn skip_quoted(bytes: &[u8], index: usize) -> usize {
    let quote = bytes[index];
    let mut at = index + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' if quote == b'"' => at += 2,
            byte if byte == quote => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// Block nesting needs an indentation per level (at least one column more each, or a `- ` per
/// level on one line), so a text whose lines all start shallower than `limit` columns and hold
/// fewer than `limit` dashes cannot nest deeper than `limit` in block style.
fn block_nesting_may_exceed(text: &str, limit: usize) -> bool {
    let bytes = text.as_bytes();
    let mut line_start = 0;
    while line_start < bytes.len() {
        let indent = bytes[line_start..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'-'))
            .count();
        if indent >= limit {
            return true;
        }
        line_start = skip_line(text, line_start + indent) + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_in_quotes_and_comments_do_not_count() {
        let text = "a: \"[[[[[[\" # [[[[[[\nb: '{{{{{{'\nc: [1, [2]]\n";
        assert!(!flow_nesting_may_exceed(text, 2));
        assert!(flow_nesting_may_exceed(text, 1));
        assert_eq!(nesting_deeper_than_bounded(text, 2), None);
    }

    #[test]
    fn deep_flow_and_block_nesting_are_found_where_they_start() {
        let deep = format!("a: {}{}\n", "[".repeat(100), "]".repeat(100));
        assert_eq!(
            nesting_deeper_than_bounded(&deep, 64),
            nesting_deeper_than(&deep, 64)
        );
        assert!(nesting_deeper_than_bounded(&deep, 64).is_some());
        let mut block = String::new();
        for level in 0..70 {
            block.push_str(&format!("{}k{level}:\n", " ".repeat(level)));
        }
        block.push_str(&format!("{}leaf: 1\n", " ".repeat(70)));
        assert!(nesting_deeper_than_bounded(&block, 64).is_some());
    }

    #[test]
    fn a_quote_inside_a_plain_scalar_does_not_hide_brackets() {
        let text = format!("name: it's\nx: {}{}\n", "[".repeat(10), "]".repeat(10));
        assert!(nesting_deeper_than_bounded(&text, 5).is_some());
    }
}
