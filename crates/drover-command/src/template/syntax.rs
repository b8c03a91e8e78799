//! The brace syntax of one template argument: `{name}` is a placeholder, `{{` and `}}` are literal
//! braces, anything else is literal text.
//!
//! This module knows nothing of steps, of which placeholders exist, or of shells.

/// A piece of one argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RawSegment {
    Literal(String),
    /// The text between the braces, not yet checked against the known names.
    Placeholder(String),
}

/// Splits one argument into literal text and placeholder names; `Err` is the problem in words.
pub(crate) fn split_argument(argument: &str) -> Result<Vec<RawSegment>, String> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut characters = argument.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '{' if characters.peek() == Some(&'{') => {
                characters.next();
                literal.push('{');
            }
            '}' if characters.peek() == Some(&'}') => {
                characters.next();
                literal.push('}');
            }
            '{' => {
                let name = placeholder_name(&mut characters)?;
                if !literal.is_empty() {
                    segments.push(RawSegment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(RawSegment::Placeholder(name));
            }
            '}' => return Err("a lone } (write }} for a literal brace)".to_string()),
            other => literal.push(other),
        }
    }
    if !literal.is_empty() {
        segments.push(RawSegment::Literal(literal));
    }
    Ok(segments)
}

/// Reads a placeholder name up to its closing brace (the opening one is already consumed).
fn placeholder_name(characters: &mut impl Iterator<Item = char>) -> Result<String, String> {
    let mut name = String::new();
    for character in characters.by_ref() {
        match character {
            '}' => return Ok(name),
            '{' => break,
            other => name.push(other),
        }
    }
    Err(format!(
        "{{{name} is not closed (write {{{{ for a literal brace)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(text: &str) -> RawSegment {
        RawSegment::Literal(text.to_string())
    }

    fn placeholder(name: &str) -> RawSegment {
        RawSegment::Placeholder(name.to_string())
    }

    #[test]
    fn splits_literals_and_placeholders() {
        assert_eq!(
            split_argument("qemu+ssh://{to.address}/system").unwrap(),
            vec![
                literal("qemu+ssh://"),
                placeholder("to.address"),
                literal("/system")
            ]
        );
        assert_eq!(
            split_argument("{host}{vm}").unwrap(),
            vec![placeholder("host"), placeholder("vm")]
        );
        assert_eq!(split_argument("").unwrap(), vec![]);
    }

    #[test]
    fn doubled_braces_are_literal() {
        assert_eq!(
            split_argument("${{HOME}} {{host}} }}{{").unwrap(),
            vec![literal("${HOME} {host} }{")]
        );
    }

    #[test]
    fn unbalanced_braces_are_refused() {
        assert!(split_argument("a}b").unwrap_err().contains("lone }"));
        assert!(split_argument("{host").unwrap_err().contains("not closed"));
        assert!(split_argument("{ho{st}")
            .unwrap_err()
            .contains("not closed"));
    }

    #[test]
    fn empty_braces_are_an_empty_name() {
        assert_eq!(split_argument("{}").unwrap(), vec![placeholder("")]);
    }
}
