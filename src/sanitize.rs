//! Terminal-safe rendering of log-derived text.
//!
//! File names and user names come from logs written by remote clients; a
//! name holding an escape sequence could rewrite the operator's terminal
//! (CWE-150). Everything log-derived that reaches a terminal goes through
//! [`sanitize`], which escapes control characters (C0, DEL, C1) and leaves
//! other text untouched, borrowing when there is nothing to escape (as fd
//! does).

use std::borrow::Cow;

fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Escapes control and bidi-override characters as `\xHH` / `\u{…}`.
///
/// ```
/// use xferstats::sanitize::sanitize;
///
/// assert_eq!(sanitize("evil\u{1b}[2Jname"), "evil\\x1b[2Jname");
/// assert_eq!(sanitize("ñandú.png"), "ñandú.png");
/// ```
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Sanitises raw log bytes (invalid UTF-8 shown as U+FFFD) and cuts them to
/// `max` characters.
pub fn sanitize_bytes(b: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(b);
    let mut out: String = sanitize(&s).chars().take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_only() {
        assert!(matches!(sanitize("plain ñandú"), Cow::Borrowed(_)));
        assert_eq!(sanitize("a\u{1b}[31mred"), "a\\x1b[31mred");
        assert_eq!(sanitize("x\u{9b}y\u{202e}z"), "x\\x9by\\u{202e}z");
        assert_eq!(sanitize_bytes(b"ab\xffcd\n", 3), "ab\u{fffd}…");
    }
}
