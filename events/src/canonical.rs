//! RFC 8785 (JCS) canonical JSON for the integer-only profile the log format pins.
//!
//! The pinned format forbids floating-point numbers anywhere in an entry and bounds integers to
//! ±(2^53−1), the range every JSON implementation represents exactly. Under that profile JCS reduces
//! to: object members sorted by the UTF-16 code units of their names, no insignificant whitespace,
//! integers in plain decimal, and strings with the minimal ECMAScript escapes. Because no number is
//! ever fractional, the number-formatting part of JCS (ECMAScript `Number.prototype.toString`) is
//! never needed, and a value that would need it is rejected instead.

use serde_json::Value;
use std::cmp::Ordering;

/// Largest integer magnitude allowed in an entry: 2^53 − 1 (JavaScript's `Number.MAX_SAFE_INTEGER`).
pub const INTEGER_MAGNITUDE_MAX: u64 = (1 << 53) - 1;

/// Why a JSON value has no canonical form under the log's profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// A floating-point number (or an integer too large for i64/u64) appears at `path`.
    #[error("floating-point number at {path}: entries carry integers, decimal strings or basis points only")]
    Float {
        /// JSON-pointer-like location of the offending value.
        path: String,
    },
    /// An integer outside ±(2^53−1) appears at `path`.
    #[error("integer {value} at {path} is outside ±(2^53−1)")]
    IntegerOutOfRange {
        /// JSON-pointer-like location of the offending value.
        path: String,
        /// The offending integer, as text.
        value: String,
    },
    /// The bytes are not JSON at all.
    #[error("not valid JSON: {0}")]
    Syntax(String),
    /// The bytes are JSON but not in canonical form (whitespace, key order, escapes, duplicates).
    #[error("JSON is not in RFC 8785 canonical form")]
    NotCanonical,
}

/// Encodes `value` canonically.
///
/// # Errors
/// [`CanonicalError::Float`] or [`CanonicalError::IntegerOutOfRange`] when a number breaks the profile.
pub fn to_canonical_vec(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out, &mut String::new())?;
    Ok(out)
}

/// Checks that a value obeys the number profile without encoding it.
///
/// # Errors
/// As [`to_canonical_vec`].
pub fn check_numbers(value: &Value) -> Result<(), CanonicalError> {
    check_numbers_at(value, &mut String::new())
}

fn check_numbers_at(value: &Value, path: &mut String) -> Result<(), CanonicalError> {
    match value {
        Value::Number(n) => check_number(n, path).map(|_| ()),
        Value::Array(items) => {
            for (idx, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("/{idx}"));
                check_numbers_at(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                path.push('/');
                path.push_str(key);
                check_numbers_at(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Parses `bytes` and checks they are exactly the canonical encoding of what they contain.
///
/// # Errors
/// [`CanonicalError::Syntax`] for non-JSON, a number error for floats or large integers, and
/// [`CanonicalError::NotCanonical`] when re-encoding gives different bytes.
pub fn parse_canonical(bytes: &[u8]) -> Result<Value, CanonicalError> {
    // The common case, canonical bytes, costs one scan and one parse; anything else takes the
    // re-encoding path, which says precisely what is wrong.
    if check_canonical(bytes).is_ok() {
        return serde_json::from_slice(bytes).map_err(|e| CanonicalError::Syntax(e.to_string()));
    }
    parse_canonical_by_reencoding(bytes)
}

/// The reference check: parse, re-encode, compare.
fn parse_canonical_by_reencoding(bytes: &[u8]) -> Result<Value, CanonicalError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| CanonicalError::Syntax(e.to_string()))?;
    let again = to_canonical_vec(&value)?;
    if again != bytes {
        return Err(CanonicalError::NotCanonical);
    }
    Ok(value)
}

/// Checks that `bytes` are canonical under the log's profile in one pass, without building a
/// value: the fast path of [`parse_canonical`]'s check, for verifying stored entries.
///
/// It accepts only what [`parse_canonical`] accepts (a property test compares the two on
/// arbitrary and mutated inputs). Its errors are coarse: callers that need to say *why* bytes
/// are not canonical ask [`parse_canonical`], which is slower and precise.
///
/// # Errors
/// [`CanonicalError::NotCanonical`] for anything that is not canonical JSON under the profile.
pub fn check_canonical(bytes: &[u8]) -> Result<(), CanonicalError> {
    let mut checker = Checker { bytes, at: 0 };
    checker.value(0)?;
    checker.finished()
}

/// [`check_canonical`] for bytes that must hold an object whose member names all come from
/// `names`, a list of plain ASCII names in canonical order. Each member's name is matched where
/// it stands against the names not yet passed, which checks its spelling, its order and finds its
/// place at once (reading each name as a string, comparing it with the one before and looking it
/// up cost a fifth of decoding an entry's header). `member(k, value, plain_text)` is told each
/// member's place `k` in `names`, where its value sits in `bytes`, and whether that value is a
/// string without escapes, whose text is then its bytes between the quotes.
///
/// `None` when the bytes are not canonical, and also when they hold a member not in `names`
/// (or one out of order, or twice): callers then take a slower path that says what is wrong.
pub(crate) fn check_canonical_object_of_known_members(
    bytes: &[u8],
    names: &[&str],
    mut member: impl FnMut(usize, std::ops::Range<usize>, bool),
) -> Option<()> {
    debug_assert!(
        names.is_sorted()
            && names.iter().all(|n| n
                .bytes()
                .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\\')),
        "plain ASCII names in canonical order"
    );
    let mut checker = Checker { bytes, at: 0 };
    checker.expect(b'{').ok()?;
    if checker.peek() == Some(b'}') {
        checker.at += 1;
        return checker.finished().ok();
    }
    let mut next_name = 0;
    loop {
        checker.expect(b'"').ok()?;
        let rest = &bytes[checker.at..];
        // A name, then its closing quote and the colon: so "data" never matches the start of
        // "datacontenttype". A later place than the last one is the canonical order.
        let k = (next_name..names.len()).find(|&k| {
            let name = names[k].as_bytes();
            rest.get(name.len()..name.len() + 2) == Some(b"\":") && rest.starts_with(name)
        })?;
        checker.at += names[k].len() + 2;
        next_name = k + 1;
        let start = checker.at;
        let plain_text = if checker.peek() == Some(b'"') {
            !checker.string_noting_escapes().ok()?.1
        } else {
            checker.value(1).ok()?;
            false
        };
        member(k, start..checker.at, plain_text);
        match checker.peek() {
            Some(b',') => checker.at += 1,
            Some(b'}') => {
                checker.at += 1;
                return checker.finished().ok();
            }
            _ => return None,
        }
    }
}

/// The deepest nesting serde_json parses (its recursion limit is 128, counting the refused
/// level), so both paths refuse the same depth.
const DEPTH_MAX: usize = 127;

struct Checker<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Checker<'a> {
    fn finished(&self) -> Result<(), CanonicalError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(CanonicalError::NotCanonical)
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), CanonicalError> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(CanonicalError::NotCanonical)
        }
    }

    fn literal(&mut self, text: &[u8]) -> Result<(), CanonicalError> {
        if self.bytes[self.at..].starts_with(text) {
            self.at += text.len();
            Ok(())
        } else {
            Err(CanonicalError::NotCanonical)
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), CanonicalError> {
        match self.peek().ok_or(CanonicalError::NotCanonical)? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => Err(CanonicalError::NotCanonical),
        }
    }

    /// `0` or `-?[1-9][0-9]*` within ±(2^53−1); never `-0`, a fraction or an exponent.
    fn integer(&mut self) -> Result<(), CanonicalError> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        let digits = &self.bytes[start..self.at];
        let well_formed = match digits {
            [] => false,
            [b'0'] => !negative,
            [b'0', ..] => false,
            _ => digits.len() <= 16,
        };
        if !well_formed || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(CanonicalError::NotCanonical);
        }
        let magnitude = digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if magnitude > INTEGER_MAGNITUDE_MAX {
            return Err(CanonicalError::NotCanonical);
        }
        Ok(())
    }

    /// A string exactly as [`write_string`] writes it. Returns its raw contents (between the
    /// quotes, escapes still escaped) for member-name ordering.
    fn string(&mut self) -> Result<&'a [u8], CanonicalError> {
        self.string_noting_escapes().map(|(raw, _)| raw)
    }

    /// [`Checker::string`], also saying whether the string holds an escape.
    fn string_noting_escapes(&mut self) -> Result<(&'a [u8], bool), CanonicalError> {
        self.expect(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            // Up to the next quote or backslash the string is its text as is.
            let (run, printable_ascii) = find_quote_or_backslash(&self.bytes[self.at..])
                .ok_or(CanonicalError::NotCanonical)?;
            if !printable_ascii {
                check_unescaped_text(&self.bytes[self.at..self.at + run])?;
            }
            self.at += run;
            if self.bytes[self.at] == b'"' {
                break;
            }
            escaped = true;
            let escape = *self
                .bytes
                .get(self.at + 1)
                .ok_or(CanonicalError::NotCanonical)?;
            match escape {
                b'"' | b'\\' | b'b' | b't' | b'n' | b'f' | b'r' => self.at += 2,
                b'u' => {
                    // Only control characters other than the five with short escapes, as \u00
                    // and two lowercase hex digits.
                    let hex = self
                        .bytes
                        .get(self.at + 2..self.at + 6)
                        .ok_or(CanonicalError::NotCanonical)?;
                    let code = match hex {
                        [b'0', b'0', high @ (b'0' | b'1'), low] => {
                            let low = match low {
                                b'0'..=b'9' => low - b'0',
                                b'a'..=b'f' => low - b'a' + 10,
                                _ => return Err(CanonicalError::NotCanonical),
                            };
                            (high - b'0') << 4 | low
                        }
                        _ => return Err(CanonicalError::NotCanonical),
                    };
                    if matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                        return Err(CanonicalError::NotCanonical);
                    }
                    self.at += 6;
                }
                _ => return Err(CanonicalError::NotCanonical),
            }
        }
        let raw = &self.bytes[start..self.at];
        self.at += 1;
        Ok((raw, escaped))
    }

    fn array(&mut self, depth: usize) -> Result<(), CanonicalError> {
        if depth > DEPTH_MAX {
            return Err(CanonicalError::NotCanonical);
        }
        self.expect(b'[')?;
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(CanonicalError::NotCanonical),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), CanonicalError> {
        if depth > DEPTH_MAX {
            return Err(CanonicalError::NotCanonical);
        }
        self.expect(b'{')?;
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        let mut previous: Option<&'a [u8]> = None;
        loop {
            let name = self.string()?;
            if let Some(before) = previous {
                if compare_raw_names(before, name) != Ordering::Less {
                    return Err(CanonicalError::NotCanonical);
                }
            }
            previous = Some(name);
            self.expect(b':')?;
            self.value(depth)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(CanonicalError::NotCanonical),
            }
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Where the first quote or backslash in `bytes` is, and whether every byte before it is known
/// to be printable ASCII (then that run needs no [`check_unescaped_text`]). Most strings are short
/// (member names, header values): a word at a time finds their end and checks their text in the
/// same pass, before memchr's setup would pay off; memchr takes the long ones many bytes at a
/// time, and leaves their text to be checked. (A byte-at-a-time loop here cost more than the rest
/// of the canonical check, and a second pass over each short string for its text cost a tenth of
/// it.)
fn find_quote_or_backslash(bytes: &[u8]) -> Option<(usize, bool)> {
    /// memchr past this many bytes.
    const SHORT_STRING_BYTES: usize = 32;
    // The classic test for a zero byte: its lowest flagged byte is always a true hit (a false
    // one can only follow a true one), so the first match is exact.
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    // A byte below 0x20 or with its high bit set leaves its high bit flagged. Like `has_zero`,
    // it may flag a byte after a true hit, never one before the first: so the flags below the
    // first quote or backslash are exactly the unprintable bytes before it.
    let unprintable = |v: u64| ((v.wrapping_sub(ONES * 0x20) & !v) | v) & HIGHS;
    let mut flagged = 0u64;
    let mut at = 0;
    while let Some(word) = bytes.get(at..at + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let hits = has_zero(w ^ (ONES * u64::from(b'"'))) | has_zero(w ^ (ONES * u64::from(b'\\')));
        if hits != 0 {
            // Every bit below the first hit's flag: the bytes before it, and its own low bits.
            let before_hit = (hits & hits.wrapping_neg()) - 1;
            flagged |= unprintable(w) & before_hit;
            return Some((at + (hits.trailing_zeros() / 8) as usize, flagged == 0));
        }
        flagged |= unprintable(w);
        at += 8;
        if at >= SHORT_STRING_BYTES {
            return memchr::memchr2(b'"', b'\\', &bytes[at..]).map(|end| (at + end, false));
        }
    }
    let mut printable_ascii = flagged == 0;
    for (k, &c) in bytes[at..].iter().enumerate() {
        if c == b'"' || c == b'\\' {
            return Some((at + k, printable_ascii));
        }
        printable_ascii &= (0x20..0x80).contains(&c);
    }
    None
}

/// Checks a run of a string between escapes (it holds no quote or backslash): canonical text
/// holds such a run as is, so it must be UTF-8 with no control character below U+0020. Entries
/// are mostly such runs (checking them a byte at a time was the largest single cost of parsing
/// an entry after SHA-256), and mostly printable ASCII: one pass a word at a time settles that
/// case. A multi-byte character never holds a quote or backslash byte, so runs never split one.
fn check_unescaped_text(run: &[u8]) -> Result<(), CanonicalError> {
    let printable_ascii = |c: u8| (0x20..0x80).contains(&c);
    // Eight bytes at a time, no early exit: a byte below 0x20 (the classic test for a byte less
    // than a bound; it may flag a byte next to a true hit too, but never flags a word without
    // one) or with its high bit set leaves a high bit in `flagged`.
    let mut words = run.chunks_exact(8);
    let mut flagged = 0u64;
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        flagged |= (w.wrapping_sub(ONES * 0x20) & !w) | w;
    }
    if flagged & HIGHS == 0 && words.remainder().iter().all(|&c| printable_ascii(c)) {
        return Ok(());
    }
    if run.iter().any(|&c| c < 0x20) || std::str::from_utf8(run).is_err() {
        return Err(CanonicalError::NotCanonical);
    }
    Ok(())
}

/// Orders two member names as they appear between quotes (already checked canonical) by the
/// UTF-16 code units of what they spell. Names without escapes or non-ASCII, the usual case,
/// compare as bytes.
fn compare_raw_names(a: &[u8], b: &[u8]) -> Ordering {
    // Up to the first difference, plain ASCII on both sides spells the same code units, so that
    // byte decides (and a name that is a prefix of the other comes first). One pass, no call:
    // every member of every entry is compared with the one before.
    let plain = |c: u8| c != b'\\' && c < 0x80;
    let mut simple = true;
    for (&x, &y) in a.iter().zip(b) {
        if !plain(x) || !plain(y) {
            simple = false;
            break;
        }
        if x != y {
            return x.cmp(&y);
        }
    }
    if simple {
        return a.len().cmp(&b.len());
    }
    let decode = |raw: &[u8]| -> String {
        // Canonical escapes only: quote, backslash, the five short ones and \u00XX.
        let mut out = String::with_capacity(raw.len());
        let text = std::str::from_utf8(raw).unwrap_or_default();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('b') => out.push('\u{8}'),
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('f') => out.push('\u{c}'),
                Some('r') => out.push('\r'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).unwrap_or(0);
                    out.push(char::from_u32(code).unwrap_or('\0'));
                }
                Some(other) => out.push(other),
                None => {}
            }
        }
        out
    };
    compare_utf16(&decode(a), &decode(b))
}

fn check_number(n: &serde_json::Number, path: &str) -> Result<String, CanonicalError> {
    let magnitude = if let Some(u) = n.as_u64() {
        u
    } else if let Some(i) = n.as_i64() {
        i.unsigned_abs()
    } else {
        return Err(CanonicalError::Float {
            path: display_path(path),
        });
    };
    let text = n.to_string();
    if magnitude > INTEGER_MAGNITUDE_MAX {
        return Err(CanonicalError::IntegerOutOfRange {
            path: display_path(path),
            value: text,
        });
    }
    Ok(text)
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

fn write_value(value: &Value, out: &mut Vec<u8>, path: &mut String) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(check_number(n, path)?.as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push(b',');
                }
                let len = path.len();
                path.push_str(&format!("/{idx}"));
                write_value(item, out, path)?;
                path.truncate(len);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| compare_utf16(a.0, b.0));
            out.push(b'{');
            for (idx, (key, item)) in members.into_iter().enumerate() {
                if idx > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                let len = path.len();
                path.push('/');
                path.push_str(key);
                write_value(item, out, path)?;
                path.truncate(len);
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// JCS orders member names by their UTF-16 code units, which differs from UTF-8 byte order only
/// when a supplementary-plane character meets one in U+E000..=U+FFFF.
fn compare_utf16(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// ECMAScript `JSON.stringify` string escaping, as RFC 8785 §3.2.2.2 requires. Runs that need
/// no escape are copied whole: most text has none, and entry payloads are mostly text.
pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut unescaped_from = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let short: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            // Multi-byte UTF-8 sequences and everything else pass through unescaped.
            _ => continue,
        };
        out.extend_from_slice(&bytes[unescaped_from..at]);
        unescaped_from = at + 1;
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(&bytes[unescaped_from..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: &Value) -> String {
        String::from_utf8(to_canonical_vec(v).unwrap()).unwrap()
    }

    #[test]
    fn sorts_members_and_drops_whitespace() {
        let v: Value =
            serde_json::from_str(r#"{ "b": [1, 2, {"z": null, "a": true}], "a": "x" }"#).unwrap();
        assert_eq!(canon(&v), r#"{"a":"x","b":[1,2,{"a":true,"z":null}]}"#);
    }

    #[test]
    fn escapes_like_ecmascript() {
        let v = json!("q\"b\\\u{8}\t\n\u{c}\r\u{1}\u{1f}\u{7f}é€😀\u{2028}/");
        assert_eq!(
            canon(&v),
            "\"q\\\"b\\\\\\b\\t\\n\\f\\r\\u0001\\u001f\u{7f}é€😀\u{2028}/\""
        );
    }

    #[test]
    fn orders_keys_by_utf16_code_units_not_utf8_bytes() {
        // RFC 8785 §3.2.3: U+1F600 (surrogates D83D DE00) sorts before U+FB33 in UTF-16
        // although its UTF-8 encoding (F0 ...) sorts after (EF ...).
        let v = json!({"\u{fb33}": 1, "\u{1f600}": 2});
        assert_eq!(canon(&v), "{\"\u{1f600}\":2,\"\u{fb33}\":1}");
    }

    #[test]
    fn rejects_floats_and_unsafe_integers() {
        assert!(
            matches!(to_canonical_vec(&json!({"a": [1.5]})), Err(CanonicalError::Float { path }) if path == "/a/0")
        );
        assert!(matches!(
            to_canonical_vec(&json!({"n": 9_007_199_254_740_992u64})),
            Err(CanonicalError::IntegerOutOfRange { .. })
        ));
        assert!(to_canonical_vec(
            &json!({"n": 9_007_199_254_740_991u64, "m": -9_007_199_254_740_991i64})
        )
        .is_ok());
        assert!(matches!(
            parse_canonical(b"1.0"),
            Err(CanonicalError::Float { .. })
        ));
        assert!(matches!(
            parse_canonical(b"1e3"),
            Err(CanonicalError::Float { .. })
        ));
        assert!(matches!(
            parse_canonical(b"-0"),
            Err(CanonicalError::Float { .. })
        ));
    }

    mod fast_check {
        use super::super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                (-(INTEGER_MAGNITUDE_MAX as i64)..=INTEGER_MAGNITUDE_MAX as i64)
                    .prop_map(Value::from),
                prop_oneof![Just(0i64), Just(-1), Just(10), Just(9_007_199_254_740_991)]
                    .prop_map(Value::from),
                "\\PC{0,6}|[\\x00-\\x1f\"\\\\/\u{7f}\u{e9}\u{fb33}\u{1f600}]{0,4}"
                    .prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 40, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                    prop::collection::btree_map(
                        "[a-c]{0,2}|[\\x00-\\x1f\"\\\\\u{e9}\u{fb33}\u{1f600}]{1,2}",
                        inner,
                        0..5
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn agree(bytes: &[u8]) {
            let fast = check_canonical(bytes).is_ok();
            let reference = parse_canonical_by_reencoding(bytes).is_ok();
            assert_eq!(
                fast,
                reference,
                "fast {fast}, reference {reference}: {:?}",
                String::from_utf8_lossy(bytes)
            );
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            #[test]
            fn strings_end_where_a_byte_at_a_time_search_says(
                bytes in prop::collection::vec(
                    prop_oneof![16 => 0x20u8..0x80, 1 => Just(b'"'), 1 => Just(b'\\'), 1 => any::<u8>()],
                    0..100,
                ),
            ) {
                let reference = bytes.iter().position(|&c| c == b'"' || c == b'\\');
                let found = find_quote_or_backslash(&bytes);
                prop_assert_eq!(found.map(|(end, _)| end), reference);
                if let Some((end, printable_ascii)) = found {
                    // Never "printable" wrongly (the text would go unchecked), and always told
                    // for a short run (the fast path the canonical check counts on).
                    let all_printable = bytes[..end].iter().all(|c| (0x20..0x80).contains(c));
                    prop_assert!(!printable_ascii || all_printable, "{:?}", &bytes[..end]);
                    if end < 32 {
                        prop_assert_eq!(printable_ascii, all_printable);
                    }
                }
            }

            #[test]
            fn runs_are_checked_as_the_char_at_a_time_rule_says(
                bytes in prop::collection::vec(
                    prop_oneof![8 => 0x20u8..0x80, 1 => 0x80u8..=0xff, 1 => 0u8..0x20],
                    0..40,
                ).prop_filter("a run holds no quote or backslash", |b| {
                    !b.contains(&b'"') && !b.contains(&b'\\')
                }),
                text in "[^\"\\\\]{0,12}",
            ) {
                let reference = |run: &[u8]| {
                    std::str::from_utf8(run).is_ok_and(|t| t.chars().all(|c| c >= ' '))
                };
                prop_assert_eq!(check_unescaped_text(&bytes).is_ok(), reference(&bytes));
                prop_assert_eq!(
                    check_unescaped_text(text.as_bytes()).is_ok(),
                    reference(text.as_bytes())
                );
            }

            #[test]
            fn accepts_every_canonical_encoding(v in json_value()) {
                let bytes = to_canonical_vec(&v).unwrap();
                prop_assert!(check_canonical(&bytes).is_ok(), "{}", String::from_utf8_lossy(&bytes));
            }

            #[test]
            fn agrees_with_reencoding_on_mutations(
                v in json_value(),
                edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..4),
            ) {
                let mut bytes = to_canonical_vec(&v).unwrap();
                for (at, kind, byte) in edits {
                    let len = bytes.len();
                    match kind {
                        0 if len > 0 => bytes[at.index(len)] = byte,
                        1 => bytes.insert(at.index(len + 1), byte),
                        _ if len > 0 => { bytes.remove(at.index(len)); }
                        _ => {}
                    }
                }
                agree(&bytes);
            }

            #[test]
            fn agrees_on_other_serialisations(v in json_value()) {
                agree(&serde_json::to_vec(&v).unwrap());
                agree(&serde_json::to_vec_pretty(&v).unwrap());
            }
        }

        #[test]
        fn agrees_on_edge_cases() {
            for text in [
                "0",
                "-0",
                "01",
                "-",
                "1.0",
                "1e3",
                "9007199254740991",
                "9007199254740992",
                "-9007199254740991",
                "18446744073709551616",
                "\"\\u001f\"",
                "\"\\u001F\"",
                "\"\\u000a\"",
                "\"\\n\"",
                "\"\\/\"",
                "\"\u{7f}\"",
                "{}",
                "[]",
                "{\"a\":1,\"a\":1}",
                "{\"\u{1f600}\":2,\"\u{fb33}\":1}",
                "{\"\u{fb33}\":1,\"\u{1f600}\":2}",
                "{\"\\n\":1,\"a\":2}",
                "{\"a\":2,\"\\n\":1}",
                "[1,]",
                "[,1]",
                "{\"a\"}",
                " 1",
                "1 ",
                "tru",
                "nul",
                "\"abc",
                "\"\\ud83d\\ude00\"",
            ] {
                agree(text.as_bytes());
            }
            agree(&[b'"', 0xed, 0xa0, 0x80, b'"']);
            agree(&[b'"', 0xc0, 0x80, b'"']);
            let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
            for n in [126, 127, 128, 129] {
                agree(deep(n).as_bytes());
            }
        }
    }

    #[test]
    fn parse_canonical_rejects_any_other_spelling() {
        assert!(parse_canonical(br#"{"a":1,"b":2}"#).is_ok());
        for bad in [
            &br#"{"b":2,"a":1}"#[..],
            br#"{"a": 1}"#,
            br#"{"a":1,"a":1}"#,
            br#""\u0041""#,
            br#""\/""#,
        ] {
            assert_eq!(
                parse_canonical(bad),
                Err(CanonicalError::NotCanonical),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
