//! Matching a line against a compiled log template (a sequence of literals
//! and fields), for servers whose line layout is user-configured (ProFTPD's
//! `LogFormat`).
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
    /// Exactly this many bytes.
    Fixed(usize),
    /// Free text that may contain spaces.
    Spacey,
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
    fn spacey(&self) -> bool {
        matches!(self, Item::Field(_, Shape::Spacey))
    }
}

/// Matches `msg` against `items`, calling `store` with each field's value;
/// `None` when the line does not fit (or `store` refuses a value).
pub fn match_items<'a, F: Copy>(
    items: &[Item<F>],
    msg: &'a [u8],
    store: &mut dyn FnMut(F, &'a [u8]) -> Option<()>,
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
                let v = match shape {
                    Shape::Fixed(n) => {
                        let v = msg.get(pos..pos + n)?;
                        pos += n;
                        v
                    }
                    _ => {
                        let stop = match items.get(i + 1) {
                            Some(Item::Lit(l)) => l[0],
                            _ => b' ',
                        };
                        let start = pos;
                        while pos < msg.len() && msg[pos] != stop && msg[pos] != b' ' {
                            pos += 1;
                        }
                        &msg[start..pos]
                    }
                };
                store(*f, v)?;
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
                let v = match shape {
                    Shape::Fixed(n) => {
                        let s = end.checked_sub(*n).filter(|&s| s >= pos)?;
                        let v = &msg[s..end];
                        end = s;
                        v
                    }
                    _ => {
                        let stop = match j.checked_sub(2).map(|k| &items[k]) {
                            Some(Item::Lit(l)) => *l.last().unwrap_or(&b' '),
                            _ => b' ',
                        };
                        let e = end;
                        while end > pos && msg[end - 1] != stop && msg[end - 1] != b' ' {
                            end -= 1;
                        }
                        &msg[end..e]
                    }
                };
                store(*f, v)?;
            }
        }
        j -= 1;
    }
    let mut mid = &msg[pos..end];
    let mut k = i;
    while k < j {
        match &items[k] {
            Item::Lit(l) => mid = mid.strip_prefix(l.as_slice())?,
            Item::Field(f, _) => {
                let v = match items[k + 1..j].first() {
                    None => std::mem::take(&mut mid),
                    Some(Item::Lit(l)) => {
                        let at = memchr::memmem::find(mid, l)?;
                        let (v, rest) = mid.split_at(at);
                        mid = rest;
                        v
                    }
                    Some(Item::Field(..)) => return None,
                };
                store(*f, v)?;
            }
        }
        k += 1;
    }
    mid.is_empty().then_some(())
}
