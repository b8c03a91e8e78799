//! Where a shell will read a template's values, and whether shell quoting protects them there.
//!
//! Drover never runs a shell of its own. A shell only reads values when the operator asks for
//! one: `[sh, -c, SCRIPT, ...]` (or `bash`, `dash`, … with exactly `-c`), whose SCRIPT is shell
//! text, and `ssh`, which joins every argument after its own name into one command line for the
//! remote shell. In those places every value is substituted shell-quoted (`shlex::try_quote`).
//!
//! Quoting only protects a value that the shell reads as a bare word. Inside `"…"` or `'…'` the
//! quotes Drover adds are literal and `$(…)` in the value would run; in a comment a newline in the
//! value ends the comment; in backticks a backtick in the value ends the substitution. So a
//! placeholder is allowed only where the scan below is sure the shell reads a bare word, and
//! refused everywhere else at configuration time. The scan is deliberately conservative: after a
//! here-document or a substitution nested inside double quotes it stops trusting itself.
//!
//! This module knows nothing of steps, values or processes.

/// How a template argument's values are substituted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueQuoting {
    /// As they are: the argument goes to the program as one argv element, no shell reads it.
    Raw,
    /// Shell-quoted, because a shell will parse this argument as shell text.
    ShellQuoted,
}

/// Programs whose `-c` argument is a shell script.
const SHELLS: [&str; 7] = ["sh", "bash", "dash", "ash", "ksh", "mksh", "zsh"];

/// The last path component of a program (`/usr/bin/ssh` → `ssh`).
fn base_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

pub(crate) fn is_shell(program: &str) -> bool {
    SHELLS.contains(&base_name(program))
}

pub(crate) fn is_ssh(program: &str) -> bool {
    base_name(program) == "ssh"
}

/// A single-dash option cluster that includes `c` (`-c`, `-ec`, `-lc`): the next operand is a
/// script. Long options (`--norc`) are not clusters.
pub(crate) fn is_command_option(argument: &str) -> bool {
    argument.len() > 1
        && argument.starts_with('-')
        && !argument.starts_with("--")
        && argument[1..].chars().all(|c| c.is_ascii_alphabetic())
        && argument.contains('c')
}

/// One piece of the shell text being scanned: literal text, or the place a value goes.
pub(crate) enum ShellPiece<'a> {
    Text(&'a str),
    Value,
}

/// Why a value at some place would not be read as a bare word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnsafePlace {
    SingleQuotes,
    DoubleQuotes,
    AnsiCQuotes,
    Backticks,
    Comment,
    AfterBackslash,
    AfterDollar,
    ParameterExpansion,
    Untrusted,
}

impl UnsafePlace {
    /// The end of "placeholder {vm} …" in an error message.
    pub(crate) fn explanation(self) -> &'static str {
        match self {
            UnsafePlace::SingleQuotes => "is inside single quotes in shell text; write it bare: Drover shell-quotes every value itself",
            UnsafePlace::DoubleQuotes => "is inside double quotes in shell text, where $(…) in a value would run; write it bare: Drover shell-quotes every value itself",
            UnsafePlace::AnsiCQuotes => "is inside $'…' quotes in shell text; write it bare: Drover shell-quotes every value itself",
            UnsafePlace::Backticks => "is inside backticks in shell text, where a backtick in a value would end the substitution; use $(…) instead",
            UnsafePlace::Comment => "is inside a shell comment, where a newline in a value would start a command; remove it from the comment",
            UnsafePlace::AfterBackslash => "follows a backslash in shell text, which would undo the quoting Drover adds",
            UnsafePlace::AfterDollar => "follows a $ in shell text, which would change how the shell reads the quoted value",
            UnsafePlace::ParameterExpansion => "is inside ${…} in shell text, where the value would be split and globbed; assign it to a variable first (v={placeholder}) and use \"$v\"",
            UnsafePlace::Untrusted => "comes after a here-document (<<) or a substitution inside double quotes, where Drover cannot tell how the shell reads it; pass it as an argument after the script and use \"$1\"",
        }
    }
}

/// The scanner's idea of where it is in the shell text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Outside any quotes; `word_start` when the next character begins a word.
    Bare {
        word_start: bool,
    },
    SingleQuotes,
    DoubleQuotes,
    AnsiCQuotes,
    Backticks,
    Comment,
    /// Inside `${…}`, this many braces deep.
    ParameterExpansion {
        depth: u32,
    },
    Untrusted,
}

/// Scans shell text and says where each value would land.
struct Scanner {
    place: Place,
    /// The previous character was an unquoted backslash.
    escaped: bool,
    /// The previous character, for two-character tokens (`$'`, `${`, `$(`, `<<`).
    previous: Option<char>,
}

/// Checks every value place in `pieces`; the first unsafe one is returned with its index among
/// the value places.
pub(crate) fn first_unsafe_value<'a>(
    pieces: impl IntoIterator<Item = ShellPiece<'a>>,
) -> Option<(usize, UnsafePlace)> {
    let mut scanner = Scanner {
        place: Place::Bare { word_start: true },
        escaped: false,
        previous: None,
    };
    let mut value_index = 0;
    for piece in pieces {
        match piece {
            ShellPiece::Text(text) => text.chars().for_each(|c| scanner.read(c)),
            ShellPiece::Value => {
                if let Some(unsafe_place) = scanner.value_place() {
                    return Some((value_index, unsafe_place));
                }
                scanner.read_value();
                value_index += 1;
            }
        }
    }
    None
}

impl Scanner {
    /// Why a value here would be unsafe, or `None` when the shell reads it as a bare word.
    fn value_place(&self) -> Option<UnsafePlace> {
        if self.escaped {
            return Some(UnsafePlace::AfterBackslash);
        }
        match self.place {
            Place::Bare { .. } if self.previous == Some('$') => Some(UnsafePlace::AfterDollar),
            Place::Bare { .. } => None,
            Place::SingleQuotes => Some(UnsafePlace::SingleQuotes),
            Place::DoubleQuotes => Some(UnsafePlace::DoubleQuotes),
            Place::AnsiCQuotes => Some(UnsafePlace::AnsiCQuotes),
            Place::Backticks => Some(UnsafePlace::Backticks),
            Place::Comment => Some(UnsafePlace::Comment),
            Place::ParameterExpansion { .. } => Some(UnsafePlace::ParameterExpansion),
            Place::Untrusted => Some(UnsafePlace::Untrusted),
        }
    }

    /// A quoted value is part of a word, never the start of a comment.
    fn read_value(&mut self) {
        self.place = Place::Bare { word_start: false };
        self.previous = Some('\'');
    }

    fn read(&mut self, character: char) {
        let previous = self.previous.replace(character);
        if self.escaped {
            self.escaped = false;
            if let Place::Bare { .. } = self.place {
                self.place = Place::Bare { word_start: false };
            }
            // An escaped character pairs with nothing that follows.
            self.previous = None;
            return;
        }
        self.place = match self.place {
            Place::Bare { word_start } => self.read_bare(character, previous, word_start),
            Place::SingleQuotes => closes_on(character, '\'', Place::SingleQuotes),
            Place::AnsiCQuotes => self.read_ansi_c(character),
            Place::DoubleQuotes => self.read_double(character, previous),
            Place::Backticks => self.read_backticks(character),
            Place::Comment if character == '\n' => Place::Bare { word_start: true },
            Place::Comment => Place::Comment,
            Place::ParameterExpansion { depth } => read_parameter_expansion(character, depth),
            Place::Untrusted => Place::Untrusted,
        };
    }

    fn read_bare(&mut self, character: char, previous: Option<char>, word_start: bool) -> Place {
        match character {
            '\\' => {
                self.escaped = true;
                Place::Bare { word_start: false }
            }
            '\'' if previous == Some('$') => Place::AnsiCQuotes,
            '\'' => Place::SingleQuotes,
            '"' => Place::DoubleQuotes,
            '`' => Place::Backticks,
            '{' if previous == Some('$') => Place::ParameterExpansion { depth: 1 },
            '<' if previous == Some('<') => Place::Untrusted,
            '#' if word_start => Place::Comment,
            c if c.is_whitespace() || ";&|()<>".contains(c) => Place::Bare { word_start: true },
            _ => Place::Bare { word_start: false },
        }
    }

    fn read_ansi_c(&mut self, character: char) -> Place {
        match character {
            '\\' => {
                self.escaped_in_quotes();
                Place::AnsiCQuotes
            }
            '\'' => Place::Bare { word_start: false },
            _ => Place::AnsiCQuotes,
        }
    }

    fn read_double(&mut self, character: char, previous: Option<char>) -> Place {
        match character {
            '\\' => {
                self.escaped_in_quotes();
                Place::DoubleQuotes
            }
            '"' => Place::Bare { word_start: false },
            // Quoting starts afresh inside a nested substitution; a simple scan cannot follow it.
            '`' => Place::Untrusted,
            '(' if previous == Some('$') => Place::Untrusted,
            _ => Place::DoubleQuotes,
        }
    }

    fn read_backticks(&mut self, character: char) -> Place {
        match character {
            '\\' => {
                self.escaped_in_quotes();
                Place::Backticks
            }
            '`' => Place::Bare { word_start: false },
            _ => Place::Backticks,
        }
    }

    /// Inside quotes a backslash takes the next character out of play (`\"`, `\'`, `` \` ``),
    /// which `read` does by skipping it; the place stays what it was.
    fn escaped_in_quotes(&mut self) {
        self.escaped = true;
    }
}

fn closes_on(character: char, closing: char, inside: Place) -> Place {
    if character == closing {
        Place::Bare { word_start: false }
    } else {
        inside
    }
}

fn read_parameter_expansion(character: char, depth: u32) -> Place {
    match character {
        '{' => Place::ParameterExpansion { depth: depth + 1 },
        '}' if depth == 1 => Place::Bare { word_start: false },
        '}' => Place::ParameterExpansion { depth: depth - 1 },
        // Quotes inside ${…} follow rules that differ between shells.
        '\'' | '"' | '`' | '\\' => Place::Untrusted,
        _ => Place::ParameterExpansion { depth },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unsafe place of the first value in `text`, where `@` marks each value.
    fn check(text: &str) -> Option<UnsafePlace> {
        let pieces: Vec<ShellPiece> = text
            .split('@')
            .enumerate()
            .flat_map(|(index, part)| {
                let value = (index > 0).then_some(ShellPiece::Value);
                value.into_iter().chain([ShellPiece::Text(part)])
            })
            .collect();
        first_unsafe_value(pieces).map(|(_, place)| place)
    }

    #[test]
    fn bare_words_are_safe() {
        for text in [
            "virsh shutdown @",
            "x=@; echo \"$x\"",
            "echo pre@post",
            "echo $(cat @)",
            "echo 'a' @ \"b\" @",
            "a=$(echo \"x\"); echo @",
            "echo \\\\ @",
            "echo a#b @",
            "echo ${HOME} @",
            "# comment\necho @",
            "echo \"\\\"\" @",
        ] {
            assert_eq!(check(text), None, "{text:?}");
        }
    }

    #[test]
    fn quoted_and_commented_places_are_refused() {
        let cases = [
            ("echo '@'", UnsafePlace::SingleQuotes),
            ("echo \"@\"", UnsafePlace::DoubleQuotes),
            ("echo \"a \\\" @\"", UnsafePlace::DoubleQuotes),
            ("echo $'@'", UnsafePlace::AnsiCQuotes),
            ("echo `cat @`", UnsafePlace::Backticks),
            ("echo x # @", UnsafePlace::Comment),
            ("# @", UnsafePlace::Comment),
            ("echo \\@", UnsafePlace::AfterBackslash),
            ("echo $@", UnsafePlace::AfterDollar),
            ("echo ${x:-@}", UnsafePlace::ParameterExpansion),
            ("cat <<EOF\n@\nEOF", UnsafePlace::Untrusted),
            ("echo \"$(echo \"x\")\" @", UnsafePlace::Untrusted),
            ("echo \"`x`\" @", UnsafePlace::Untrusted),
            ("a=\"$(echo x)\"; echo @", UnsafePlace::Untrusted),
            ("echo $(echo \"@\")", UnsafePlace::DoubleQuotes),
        ];
        for (text, expected) in cases {
            assert_eq!(check(text), Some(expected), "{text:?}");
        }
    }

    #[test]
    fn command_options_are_recognised() {
        for option in ["-c", "-ec", "-lc", "-xec"] {
            assert!(is_command_option(option), "{option}");
        }
        for argument in ["--norc", "-e", "-", "c", "-o", "--command", "-1c"] {
            assert!(!is_command_option(argument), "{argument}");
        }
    }

    #[test]
    fn programs_are_recognised_by_base_name() {
        assert!(is_shell("/bin/sh") && is_shell("bash") && !is_shell("shx"));
        assert!(is_ssh("/usr/bin/ssh") && !is_ssh("sshpass"));
    }
}
