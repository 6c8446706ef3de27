//! Text from a log or a resource, as v8box prints it to a terminal: a script chooses the names
//! it touches, and a name with an escape sequence, a carriage return or a bidirectional
//! override in it must not rewrite what the reader sees.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is printed escaped: C0 controls, DEL, C1 controls, the Unicode bidirectional
/// controls (embeddings, overrides, isolates, marks), the line and paragraph separators, the
/// byte-order mark / zero-width no-break space, and `\` itself (so that an escape in the output
/// always stands for a character, never for the four characters a name spelled).
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}' | '\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}'
        | '\\')
}

/// `s` with the characters above in a visible form: `\n`, `\r`, `\t`, `\\`, `\x1b` (other
/// C0 controls and DEL), `\u{9b}` (C1 controls and the Unicode ones, `\u{202e}`). Text
/// without any comes back as it is, uncopied.
pub fn escaped(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x80 && needs_escape(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::escaped;

    #[test]
    fn controls_and_bidi_overrides_are_shown_escaped() {
        assert_eq!(escaped("/tmp/plain é"), "/tmp/plain é");
        assert_eq!(
            escaped("a\u{1b}[2Jb\rc\nd\te\u{7f}f\u{9b}g\u{202e}h\u{2028}i\\j"),
            "a\\x1b[2Jb\\rc\\nd\\te\\x7ff\\u{9b}g\\u{202e}h\\u{2028}i\\\\j"
        );
    }
}
