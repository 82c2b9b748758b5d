//! Matching a line against a compiled log template (a sequence of literals
//! and fields), for servers whose line layout is user-configured: rsyncd's
//! `log format` and ProFTPD's `LogFormat` share this two-ended matcher.
//!
//! Fields that can hold spaces (file names, request lines) make whitespace
//! splitting wrong. Fields of known shape are taken from the left up to the
//! first free-text field, then from the right; the free-text fields share
//! what remains, split at the literals between them.

/// How a field's value is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// No spaces; ends at the next literal's first byte or a space.
    Token,
    /// A token padded with spaces to at least `width` bytes: before it
    /// (right-aligned) or, with `left`, after it.
    Padded {
        /// Minimum width.
        width: usize,
        /// Left-aligned: the padding follows the value.
        left: bool,
    },
    /// Exactly this many bytes.
    Fixed(usize),
    /// Free text that may contain spaces; with `trim`, padding spaces
    /// around it are not part of the value.
    Spacey {
        /// Strip surrounding spaces.
        trim: bool,
    },
    /// Free text that starts with one of `marks` (rsync's `%L`:
    /// ` -> target`), or is empty; the free-text field right before it
    /// ends where it starts.
    Marked {
        /// Strip surrounding spaces.
        trim: bool,
        /// What the value starts with, tried in order.
        marks: &'static [&'static [u8]],
    },
}

/// One template item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<F> {
    /// Literal bytes.
    Lit(Vec<u8>),
    /// A field with its shape.
    Field(F, Shape),
}

impl<F> Item<F> {
    /// Whether the item is a free-text field.
    pub fn spacey(&self) -> bool {
        matches!(self, Item::Field(_, Shape::Spacey { .. } | Shape::Marked { .. }))
    }
}

/// Matches `msg` against `items`, calling `store` with each field's value;
/// `None` when the line does not fit (or `store` refuses a value).
#[inline]
pub fn match_items<'a, F: Copy>(
    items: &[Item<F>],
    msg: &'a [u8],
    mut store: impl FnMut(F, &'a [u8]) -> Option<()>,
) -> Option<()> {
    let mut pos = 0usize;
    let mut i = 0usize;
    while i < items.len() && !items[i].spacey() {
        match &items[i] {
            Item::Lit(l) => {
                if !msg[pos..].starts_with(l) {
                    return None;
                }
                pos += l.len();
            }
            Item::Field(f, shape) => {
                let stop = match items.get(i + 1) {
                    Some(Item::Lit(l)) => l[0],
                    _ => b' ',
                };
                store(*f, take_left(msg, &mut pos, *shape, stop)?)?;
            }
        }
        i += 1;
    }
    let mut end = msg.len();
    let mut j = items.len();
    while j > i && !items[j - 1].spacey() {
        match &items[j - 1] {
            Item::Lit(l) => {
                if end < pos + l.len() || !msg[..end].ends_with(l) {
                    return None;
                }
                end -= l.len();
            }
            Item::Field(f, shape) => {
                let stop = match j.checked_sub(2).map(|k| &items[k]) {
                    Some(Item::Lit(l)) => *l.last().unwrap_or(&b' '),
                    _ => b' ',
                };
                store(*f, take_right(msg, pos, &mut end, *shape, stop)?)?;
            }
        }
        j -= 1;
    }
    if i == j {
        return (pos == end).then_some(());
    }
    // items[i..j]: free-text fields separated by literals.
    let mut mid = &msg[pos..end];
    let mut k = i;
    while k < j {
        match &items[k] {
            Item::Lit(l) => mid = mid.strip_prefix(l.as_slice())?,
            Item::Field(f, shape) => {
                let at = match items[k + 1..j].first() {
                    None => mid.len(),
                    Some(Item::Field(_, Shape::Marked { marks, .. })) => {
                        marks.iter().find_map(|m| memchr::memmem::find(mid, m)).unwrap_or(mid.len())
                    }
                    Some(Item::Lit(l)) => memchr::memmem::find(mid, l)?,
                    Some(Item::Field(..)) => return None,
                };
                let (v, rest) = mid.split_at(at);
                mid = rest;
                let trim = matches!(shape, Shape::Spacey { trim: true } | Shape::Marked { trim: true, .. });
                store(*f, if trim { trim_spaces(v) } else { v })?;
            }
        }
        k += 1;
    }
    mid.is_empty().then_some(())
}

/// `v` without the spaces around it.
pub fn trim_spaces(v: &[u8]) -> &[u8] {
    let s = v.iter().position(|&c| c != b' ').unwrap_or(v.len());
    let e = v.iter().rposition(|&c| c != b' ').map_or(s, |p| p + 1);
    &v[s..e]
}

/// The value of a field of known shape starting at `pos`, which it moves
/// past the value (and its padding).
#[inline]
fn take_left<'a>(msg: &'a [u8], pos: &mut usize, shape: Shape, stop: u8) -> Option<&'a [u8]> {
    let (width, left) = match shape {
        Shape::Fixed(n) => {
            let v = msg.get(*pos..*pos + n)?;
            *pos += n;
            return Some(v);
        }
        Shape::Padded { width, left } => (width, left),
        _ => {
            let start = *pos;
            *pos += scan(&msg[start..], stop);
            return Some(&msg[start..*pos]);
        }
    };
    let begin = *pos;
    let mut p = begin;
    if !left {
        while msg.get(p) == Some(&b' ') {
            p += 1;
        }
    }
    let start = p;
    p += scan(&msg[p..], stop);
    let v = &msg[start..p];
    if left {
        while p - begin < width && msg.get(p) == Some(&b' ') {
            p += 1;
        }
    }
    *pos = p;
    Some(v)
}

/// Length of the token at the start of `b`: up to `stop` or a space.
#[inline]
fn scan(b: &[u8], stop: u8) -> usize {
    b.iter().position(|&c| c == stop || c == b' ').unwrap_or(b.len())
}

/// Length of the token at the end of `b`: back to `stop` or a space.
#[inline]
fn scan_back(b: &[u8], stop: u8) -> usize {
    b.iter().rev().position(|&c| c == stop || c == b' ').unwrap_or(b.len())
}

/// The value of a field of known shape ending at `end`, which it moves
/// before the value (and its padding); never below `floor`.
#[inline]
fn take_right<'a>(msg: &'a [u8], floor: usize, end: &mut usize, shape: Shape, stop: u8) -> Option<&'a [u8]> {
    let (width, left) = match shape {
        Shape::Fixed(n) => {
            let s = end.checked_sub(n).filter(|&s| s >= floor)?;
            let v = &msg[s..*end];
            *end = s;
            return Some(v);
        }
        Shape::Padded { width, left } => (width, left),
        _ => {
            let e = *end;
            *end -= scan_back(&msg[floor..e], stop);
            return Some(&msg[*end..e]);
        }
    };
    let end0 = *end;
    let mut e = end0;
    if left {
        while e > floor && msg[e - 1] == b' ' {
            e -= 1;
        }
    }
    let mut s = e - scan_back(&msg[floor..e], stop);
    let v = &msg[s..e];
    if !left {
        while end0 - s < width && s > floor && msg[s - 1] == b' ' {
            s -= 1;
        }
    }
    *end = s;
    Some(v)
}
