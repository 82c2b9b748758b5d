//! Safe rendering of log-derived text.
//!
//! File names and user names come from logs written by remote clients; a
//! name holding an escape sequence could rewrite the operator's terminal
//! (CWE-150), and one holding a bidi override (U+202E), an invisible
//! character (U+200B, U+FEFF) or a line separator (U+2028) could make a
//! report row say something other than what is stored (Trojan Source,
//! CVE-2021-42574). Every human-facing output (import summary, error
//! messages, report table, Markdown, CSV, HTML) shows such text through
//! [`sanitize`]; JSON escapes the same characters as `\uXXXX` through
//! [`JsonFormatter`], so it parses back to the stored text. One predicate,
//! [`is_unsafe`], decides for all of them.
//!
//! The characters escaped are those of the Unicode general categories Cc
//! (C0 controls, DEL, C1 controls), Cf (format characters: bidi controls,
//! zero-width characters, the byte-order mark, invisible operators, tag
//! characters, …), Zl and Zp (U+2028, U+2029). Everything else (letters of
//! any script, combining marks, emoji) is left as it is, borrowed when there
//! is nothing to escape (as fd does).

use std::borrow::Cow;
use std::io;

use serde_json::ser::{Formatter, PrettyFormatter};

/// Inclusive ranges of the characters escaped, sorted: general categories
/// Cc, Cf, Zl and Zp of Unicode 15.0 (generated from the Unicode Character
/// Database; Unicode 15.1 and 16.0 add no character to these categories).
const UNSAFE: &[(u32, u32)] = &[
    (0x0000, 0x001F),   // Cc: C0 controls
    (0x007F, 0x009F),   // Cc: DEL, C1 controls
    (0x00AD, 0x00AD),   // Cf: soft hyphen
    (0x0600, 0x0605),   // Cf: Arabic number signs
    (0x061C, 0x061C),   // Cf: Arabic letter mark (bidi)
    (0x06DD, 0x06DD),   // Cf: Arabic end of ayah
    (0x070F, 0x070F),   // Cf: Syriac abbreviation mark
    (0x0890, 0x0891),   // Cf: Arabic pound/piastre mark above
    (0x08E2, 0x08E2),   // Cf: Arabic disputed end of ayah
    (0x180E, 0x180E),   // Cf: Mongolian vowel separator
    (0x200B, 0x200F),   // Cf: zero-width space/non-joiner/joiner, LRM, RLM
    (0x2028, 0x202E),   // Zl, Zp: line/paragraph separator; Cf: LRE, RLE, PDF, LRO, RLO
    (0x2060, 0x2064),   // Cf: word joiner, invisible operators
    (0x2066, 0x206F),   // Cf: LRI, RLI, FSI, PDI, deprecated format characters
    (0xFEFF, 0xFEFF),   // Cf: zero-width no-break space (byte-order mark)
    (0xFFF9, 0xFFFB),   // Cf: interlinear annotation
    (0x110BD, 0x110BD), // Cf: Kaithi number sign
    (0x110CD, 0x110CD), // Cf: Kaithi number sign above
    (0x13430, 0x1343F), // Cf: Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3), // Cf: shorthand format controls
    (0x1D173, 0x1D17A), // Cf: musical symbol format controls
    (0xE0001, 0xE0001), // Cf: language tag
    (0xE0020, 0xE007F), // Cf: tag characters
];

/// True for the characters no output shows raw: controls (C0, DEL, C1),
/// format characters (bidi controls, zero-width and invisible characters)
/// and the line and paragraph separators.
pub fn is_unsafe(c: char) -> bool {
    let c = c as u32;
    // Printable ASCII is by far the most common case.
    if (0x20..0x7F).contains(&c) {
        return false;
    }
    UNSAFE
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Escapes the [`is_unsafe`] characters as `\xHH` (below U+0100) or
/// `\u{…}`.
///
/// ```
/// use xferstats::sanitize::sanitize;
///
/// assert_eq!(sanitize("evil\u{1b}[2Jname"), "evil\\x1b[2Jname");
/// assert_eq!(sanitize("txt.\u{202e}exe"), "txt.\\u{202e}exe");
/// assert_eq!(sanitize("ñandú.png"), "ñandú.png");
/// ```
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
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

/// A `serde_json` formatter that writes every [`is_unsafe`] character of a
/// string as `\uXXXX` (a surrogate pair above U+FFFF), so the JSON shows
/// none of them raw yet parses back to the very same text. serde_json
/// itself escapes only C0 controls, `"` and `\`. The layout is the wrapped
/// formatter's (pretty by default, `CompactFormatter` for one line).
#[derive(Debug, Clone)]
pub struct JsonFormatter<F = PrettyFormatter<'static>>(pub F);

impl Default for JsonFormatter {
    fn default() -> Self {
        JsonFormatter(PrettyFormatter::new())
    }
}

impl<F: Formatter> Formatter for JsonFormatter<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((i, c)) = rest.char_indices().find(|&(_, c)| is_unsafe(c)) {
            self.0.write_string_fragment(w, &rest[..i])?;
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                write!(w, "\\u{u:04x}")?;
            }
            rest = &rest[i + c.len_utf8()..];
        }
        self.0.write_string_fragment(w, rest)
    }

    // The layout: everything the wrapped formatter may lay out its own way.
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Writes `value` as pretty JSON through [`JsonFormatter`].
pub fn write_json<W: io::Write, T: serde::Serialize + ?Sized>(w: W, value: &T) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(w, JsonFormatter::default());
    value.serialize(&mut ser).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One character of each class that must never be shown raw.
    const EACH_CLASS: &[(char, &str)] = &[
        ('\u{0}', "C0 NUL"),
        ('\u{1b}', "C0 ESC"),
        ('\n', "C0 LF"),
        ('\r', "C0 CR"),
        ('\u{7f}', "DEL"),
        ('\u{85}', "C1 NEL"),
        ('\u{9b}', "C1 CSI"),
        ('\u{ad}', "Cf soft hyphen"),
        ('\u{600}', "Cf Arabic number sign"),
        ('\u{61c}', "Cf Arabic letter mark"),
        ('\u{6dd}', "Cf end of ayah"),
        ('\u{70f}', "Cf Syriac abbreviation mark"),
        ('\u{180e}', "Cf Mongolian vowel separator"),
        ('\u{200b}', "Cf zero-width space"),
        ('\u{200d}', "Cf zero-width joiner"),
        ('\u{200e}', "Cf LRM"),
        ('\u{200f}', "Cf RLM"),
        ('\u{2028}', "Zl line separator"),
        ('\u{2029}', "Zp paragraph separator"),
        ('\u{202a}', "Cf LRE"),
        ('\u{202e}', "Cf RLO"),
        ('\u{2060}', "Cf word joiner"),
        ('\u{2064}', "Cf invisible plus"),
        ('\u{2066}', "Cf LRI"),
        ('\u{2069}', "Cf PDI"),
        ('\u{206f}', "Cf nominal digit shapes"),
        ('\u{feff}', "Cf BOM"),
        ('\u{fff9}', "Cf interlinear annotation anchor"),
        ('\u{fffb}', "Cf interlinear annotation terminator"),
        ('\u{110bd}', "Cf Kaithi number sign"),
        ('\u{1343f}', "Cf Egyptian format control"),
        ('\u{1bca0}', "Cf shorthand letter overlap"),
        ('\u{1d173}', "Cf musical begin beam"),
        ('\u{1d17a}', "Cf musical end phrase"),
        ('\u{e0001}', "Cf language tag"),
        ('\u{e0020}', "Cf tag space"),
        ('\u{e007f}', "Cf cancel tag"),
    ];

    /// Neighbours of the ranges and ordinary text of several scripts.
    const SAFE: &[char] = &[
        ' ',
        '~',
        'a',
        '\u{a0}',
        '\u{ac}',
        '\u{ae}',
        'ñ',
        '\u{5ff}',
        '\u{606}',
        '\u{61b}',
        '\u{61d}',
        '\u{200a}',
        '\u{2010}',
        '\u{2027}',
        '\u{202f}',
        '\u{2065}',
        '\u{2070}',
        '\u{fefe}',
        '\u{ff00}',
        '\u{fffc}',
        '\u{fffd}',
        'ж',
        'ب',
        '中',
        '\u{301}',
        '\u{1f600}',
        '\u{13440}',
        '\u{e0000}',
        '\u{e0080}',
        '\u{e0100}',
        '\u{10ffff}',
    ];

    #[test]
    fn table_is_sorted_and_disjoint() {
        for w in UNSAFE.windows(2) {
            assert!(w[0].0 <= w[0].1 && w[0].1 < w[1].0, "{:x?}", w);
        }
    }

    #[test]
    fn escapes_every_class() {
        for &(c, class) in EACH_CLASS {
            assert!(is_unsafe(c), "{class} (U+{:04X})", c as u32);
            let s = format!("a{c}b");
            let out = sanitize(&s);
            let want =
                if (c as u32) < 0x100 { format!("a\\x{:02x}b", c as u32) } else { format!("a\\u{{{:x}}}b", c as u32) };
            assert_eq!(out, want, "{class}");
        }
    }

    #[test]
    fn leaves_everything_else() {
        for &c in SAFE {
            assert!(!is_unsafe(c), "U+{:04X}", c as u32);
        }
        let text: String = SAFE.iter().collect();
        assert!(matches!(sanitize(&text), Cow::Borrowed(_)));
        assert!(matches!(sanitize("plain ñandú"), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_controls_and_bidi() {
        assert_eq!(sanitize("a\u{1b}[31mred"), "a\\x1b[31mred");
        assert_eq!(sanitize("x\u{9b}y\u{202e}z"), "x\\x9by\\u{202e}z");
        assert_eq!(
            sanitize("a\u{61c}b\u{2028}c\u{2029}d\u{200b}e\u{feff}"),
            "a\\u{61c}b\\u{2028}c\\u{2029}d\\u{200b}e\\u{feff}"
        );
        assert_eq!(sanitize_bytes(b"ab\xffcd\n", 3), "ab\u{fffd}…");
    }

    #[test]
    fn json_escapes_and_round_trips() {
        let all: String = EACH_CLASS.iter().map(|&(c, _)| c).chain(SAFE.iter().copied()).collect();
        let value = serde_json::json!([{ "user": all, "n": 1 }]);
        let mut out = Vec::new();
        write_json(&mut out, &value).unwrap();
        let text = String::from_utf8(out).unwrap();
        // Nothing unsafe raw, except the pretty layout's own newlines.
        assert!(!text.chars().any(|c| is_unsafe(c) && c != '\n'), "{text}");
        assert!(text.contains("\\u202e") && text.contains("\\u0085") && text.contains("\\u007f"), "{text}");
        // Astral characters as surrogate pairs.
        assert!(text.contains("\\udb40\\udc01") && text.contains("\\ud834\\udd73"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
        // The layout is serde_json's own.
        let plain = serde_json::json!([{ "user": "ñandú", "n": 1 }]);
        let mut out = Vec::new();
        write_json(&mut out, &plain).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string_pretty(&plain).unwrap());
        // Compact too.
        let mut out = Vec::new();
        let mut ser =
            serde_json::Serializer::with_formatter(&mut out, JsonFormatter(serde_json::ser::CompactFormatter));
        serde::Serialize::serialize(&serde_json::json!({"k": "a\u{2029}b"}), &mut ser).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"k":"a\u2029b"}"#);
    }
}
