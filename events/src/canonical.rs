//! RFC 8785 (JCS) canonical JSON for the integer-only profile the log format pins.
//!
//! DESIGN.md §2 forbids floating-point numbers anywhere in an entry and bounds integers to
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
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| CanonicalError::Syntax(e.to_string()))?;
    let again = to_canonical_vec(&value)?;
    if again != bytes {
        return Err(CanonicalError::NotCanonical);
    }
    Ok(value)
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

/// ECMAScript `JSON.stringify` string escaping, as RFC 8785 §3.2.2.2 requires.
fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &byte in s.as_bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0a => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x0d => out.extend_from_slice(b"\\r"),
            0x00..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
            // Multi-byte UTF-8 sequences and everything else pass through unescaped.
            _ => out.push(byte),
        }
    }
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
