//! A coverage-less mutation engine: havoc-style byte mutations, line-level
//! splicing between corpus entries, and a dictionary of tokens the log
//! formats and URL parsers give meaning to.
//!
//! Without coverage feedback the engine cannot learn new inputs, so it leans
//! on structure instead: the seeds are real log lines, and most mutations
//! keep them line-shaped (swap, duplicate, splice lines of two seeds, replace
//! a number with an extreme one, insert a format token). A mutant is mutated
//! again now and then, so stacks of edits reach deeper than one step.

/// A small, fast, seedable generator (SplitMix64): the same seed gives the
/// same sequence of inputs, so a smoke run is deterministic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Tokens that mean something to at least one parser: separators, escapes,
/// time-stamp pieces, extreme numbers, JSON and URL syntax.
const DICT: &[&[u8]] = &[
    b" ",
    b"  ",
    b"\t",
    b"\"",
    b"\\",
    b"\\\"",
    b"\\x",
    b"\\303\\251",
    b"#",
    b"%",
    b"%%",
    b"%{",
    b"}",
    b"%t",
    b"%f",
    b"%n",
    b"%o",
    b"%i",
    b"%l",
    b"%b",
    b"%'b",
    b"%''l",
    b"%r",
    b"%m",
    b"%{iso8601}",
    b"%{file-size}",
    b"%{transfer-status}",
    b"%{protocol}",
    b"[",
    b"]",
    b"(",
    b")",
    b":",
    b"::",
    b"/",
    b"//",
    b"-",
    b"+",
    b".",
    b",",
    b"@",
    b"=",
    b"?",
    b"&",
    b"{",
    b"\"\":\"\"",
    b"null",
    b"true",
    b"\\u0000",
    b"\\ud800",
    b"0",
    b"1",
    b"-1",
    b"00",
    b"29",
    b"60",
    b"99",
    b"2026",
    b"1970",
    b"9999",
    b"4294967295",
    b"4294967296",
    b"9223372036854775807",
    b"9223372036854775808",
    b"18446744073709551615",
    b"18446744073709551616",
    b"99999999999999999999999",
    b"1.5G",
    b"1,234",
    b"Feb 29",
    b"Dec 31 23:59:60",
    b"Jan  1 00:00:00",
    b"2026/02/29 24:00:00",
    b"2026-03-29T02:30:00.123456+01:00",
    b"+99:99",
    b"-2359",
    b"Z",
    b"T",
    b"Sun Mar 29 02:30:00 2026",
    b"[12345]",
    b"[4294967296]",
    b"rsyncd[1]:",
    b"sshd[1]:",
    b"sftp-server[1]:",
    b"internal-sftp[1]:",
    b"proftpd[1]",
    b"connect from",
    b"rsync on",
    b"rsync to",
    b"sent 1 bytes  received 2 bytes  total size 3",
    b"rsync error:",
    b"session opened for local user",
    b"session closed for local user",
    b"open \"",
    b"close \"",
    b"flags",
    b"bytes read 1 written 2",
    b"Accepted password for",
    b"Failed password for invalid user",
    b"from 203.0.113.7 port 22 ssh2",
    b"OK UPLOAD:",
    b"OK DOWNLOAD:",
    b"FAIL LOGIN:",
    b"Client \"::ffff:127.0.0.1\"",
    b"\"STOR ",
    b"\"RETR ",
    b"226",
    b"UNKNOWN",
    b"UNDETERMINED",
    b"127.0.0.1",
    b"::1",
    b"[::ffff:10.0.0.1]",
    b"2001:db8::1%eth0",
    b"\"sender\":\"Upload\"",
    b"\"time\":\"",
    b"\"size_bytes\":",
    b"postgres://",
    b"postgresql://",
    b"influxdb://",
    b"influxdb2://",
    b"sqlite:",
    b"host=",
    b"port=",
    b"user=",
    b"password=",
    b"?rp=",
    b"&timeout=",
    b"retries=",
    b"backoff=",
    b"batch=",
    b"state=",
    b"ssl=",
    b"daily_bucket=",
    b"%2F",
    b"%FF",
    b"Europe/Paris",
    b"America/St_Johns",
    b"local",
    b"UTC",
    b"\xc3\xa9",
    b"\xff",
    b"\x00",
    b"\r",
    b"\n",
];

/// Numbers that sit on a boundary of some integer type or date field.
const NUMBERS: &[&[u8]] = &[
    b"0",
    b"1",
    b"-1",
    b"00",
    b"12",
    b"13",
    b"24",
    b"31",
    b"32",
    b"59",
    b"60",
    b"61",
    b"255",
    b"256",
    b"65535",
    b"65536",
    b"2147483647",
    b"2147483648",
    b"-2147483649",
    b"4294967295",
    b"4294967296",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775808",
    b"18446744073709551615",
    b"18446744073709551616",
    b"000000000000000000000000000001",
];

/// Bytes worth putting in place of another.
const INTERESTING: &[u8] = b" \t\"\\%{}[]()<>:;/-+.,@=?&#*0123456789aAzZTt\x00\x7f\x80\xc3\xff\r\n";

/// Largest input the engine produces (bytes): bigger inputs only slow a
/// campaign down without reaching new code in line parsers.
pub const MAX_LEN: usize = 4096;

/// The mutation engine of one campaign.
#[derive(Debug)]
pub struct Mutator {
    rng: Rng,
    dict: Vec<Vec<u8>>,
}

impl Mutator {
    /// An engine started at `seed`, with the target's own tokens added to
    /// the shared dictionary.
    pub fn new(seed: u64, extra_dict: &[&[u8]]) -> Mutator {
        let dict = DICT.iter().chain(extra_dict).map(|t| t.to_vec()).collect();
        Mutator { rng: Rng::new(seed), dict }
    }

    /// The generator (for picking corpus entries).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Replaces `out` with a mutant of `base`, splicing from `other`.
    pub fn mutate(&mut self, base: &[u8], other: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(base);
        let rounds = 1 + self.rng.below(8);
        for _ in 0..rounds {
            self.one(other, out);
        }
        out.truncate(MAX_LEN);
    }

    fn one(&mut self, other: &[u8], out: &mut Vec<u8>) {
        let r = &mut self.rng;
        let len = out.len();
        match r.below(19) {
            // Flip a bit.
            0 if len > 0 => {
                let i = r.below(len);
                out[i] ^= 1 << r.below(8);
            }
            // A random byte.
            1 if len > 0 => {
                let i = r.below(len);
                out[i] = r.next_u64() as u8;
            }
            // An interesting byte.
            2 | 3 if len > 0 => {
                let i = r.below(len);
                out[i] = INTERESTING[r.below(INTERESTING.len())];
            }
            // Delete a range.
            4 | 5 if len > 0 => {
                let i = r.below(len);
                let n = 1 + r.below((len - i).min(32));
                out.drain(i..i + n);
            }
            // Duplicate a range.
            6 if len > 0 => {
                let i = r.below(len);
                let n = 1 + r.below((len - i).min(64));
                let at = r.below(len + 1);
                let piece = out[i..i + n].to_vec();
                out.splice(at..at, piece);
            }
            // Insert a dictionary token.
            7..=9 => {
                let t = self.dict[r.below(self.dict.len())].clone();
                let at = r.below(len + 1);
                out.splice(at..at, t);
            }
            // Overwrite with a dictionary token.
            10 if len > 0 => {
                let t = &self.dict[r.below(self.dict.len())];
                let at = r.below(len);
                let end = (at + t.len()).min(len);
                out.splice(at..end, t.iter().copied());
            }
            // Replace a run of digits with a boundary number.
            11 | 12 => replace_number(r, out),
            // Insert random bytes.
            13 => {
                let at = r.below(len + 1);
                let n = 1 + r.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| r.next_u64() as u8).collect();
                out.splice(at..at, bytes);
            }
            // Splice: a prefix of this input with a suffix of the other.
            14 if !other.is_empty() => {
                let a = r.below(len + 1);
                let b = r.below(other.len());
                out.truncate(a);
                out.extend_from_slice(&other[b..]);
            }
            // Copy a line of the other input into this one.
            15 if !other.is_empty() => {
                let src = pick_line(r, other);
                let at = line_start(out, r.below(len + 1));
                let mut piece = src.to_vec();
                piece.push(b'\n');
                out.splice(at..at, piece);
            }
            // Swap two lines / duplicate a line.
            16 | 17 => {
                let lines: Vec<Vec<u8>> = out.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                if lines.len() > 1 {
                    let mut lines = lines;
                    let (i, j) = (r.below(lines.len()), r.below(lines.len()));
                    if r.one_in(2) {
                        lines.swap(i, j);
                    } else {
                        let l = lines[i].clone();
                        lines.insert(j, l);
                    }
                    *out = lines.join(&b'\n');
                }
            }
            // Cut the input short.
            18 if len > 0 => out.truncate(r.below(len)),
            _ => {
                let at = r.below(len + 1);
                out.insert(at, INTERESTING[r.below(INTERESTING.len())]);
            }
        }
    }
}

/// Replaces one run of ASCII digits in `out` with a boundary number.
fn replace_number(r: &mut Rng, out: &mut Vec<u8>) {
    let starts: Vec<usize> =
        (0..out.len()).filter(|&i| out[i].is_ascii_digit() && (i == 0 || !out[i - 1].is_ascii_digit())).collect();
    if starts.is_empty() {
        return;
    }
    let s = starts[r.below(starts.len())];
    let e = out[s..].iter().position(|b| !b.is_ascii_digit()).map_or(out.len(), |n| s + n);
    let n = NUMBERS[r.below(NUMBERS.len())];
    out.splice(s..e, n.iter().copied());
}

/// A random line of `data` (without its newline).
fn pick_line<'a>(r: &mut Rng, data: &'a [u8]) -> &'a [u8] {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    lines[r.below(lines.len())]
}

/// The start of the line that holds byte `at`.
fn line_start(data: &[u8], at: usize) -> usize {
    data[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_mutants() {
        let run = |seed| {
            let mut m = Mutator::new(seed, &[b"extra"]);
            let mut out = Vec::new();
            let mut all = Vec::new();
            for _ in 0..200 {
                m.mutate(
                    b"2026/11/08 08:58:03 [25942] connect from x (1.2.3.4)\nsecond 12 line",
                    b"other\nlines 7",
                    &mut out,
                );
                all.push(out.clone());
            }
            all
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn mutants_stay_bounded() {
        let mut m = Mutator::new(1, &[]);
        let mut out = Vec::new();
        let big = vec![b'9'; MAX_LEN];
        for _ in 0..500 {
            m.mutate(&big, &big, &mut out);
            assert!(out.len() <= MAX_LEN);
        }
        for _ in 0..500 {
            m.mutate(b"", b"", &mut out);
            assert!(out.len() <= MAX_LEN);
        }
    }

    #[test]
    fn numbers_are_replaced_whole() {
        let mut r = Rng::new(3);
        let mut out = b"a 123 b".to_vec();
        replace_number(&mut r, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("a ") && s.ends_with(" b"), "{s}");
        let n = &s[2..s.len() - 2];
        assert!(NUMBERS.contains(&n.as_bytes()), "{n}");
    }
}
