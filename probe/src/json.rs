//! A tiny JSON value and writer.
//!
//! The probe cannot use serde (it is built with `+crt-static`, which breaks proc-macros), and it
//! only ever writes JSON, so a value tree with a `Display` impl is all it needs. Strings come from
//! the kernel (paths, mount options, environment) and need not be UTF-8: they are converted lossily
//! when the value is built, and escaped when it is written.

use std::fmt::{self, Write};
use std::io;

/// A JSON value. Objects keep their keys in insertion order, so output is stable.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// A string from raw bytes; invalid UTF-8 becomes U+FFFD.
    pub fn bytes(bytes: &[u8]) -> Json {
        Json::Str(String::from_utf8_lossy(bytes).into_owned())
    }

    /// An object from `(key, value)` pairs, in the given order.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// An array of values.
    pub fn array<T: Into<Json>>(items: impl IntoIterator<Item = T>) -> Json {
        Json::Array(items.into_iter().map(Into::into).collect())
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Json {
        Json::Bool(b)
    }
}

impl From<i32> for Json {
    fn from(n: i32) -> Json {
        Json::Int(n.into())
    }
}

impl From<u32> for Json {
    fn from(n: u32) -> Json {
        Json::Int(n.into())
    }
}

impl From<i64> for Json {
    fn from(n: i64) -> Json {
        Json::Int(n)
    }
}

impl From<u64> for Json {
    fn from(n: u64) -> Json {
        Json::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Json {
    fn from(n: usize) -> Json {
        Json::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::Str(s.to_owned())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Json {
        Json::Str(s)
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(v: Option<T>) -> Json {
        v.map_or(Json::Null, Into::into)
    }
}

/// The `(errno, error)` pair every failing step reports: the number when the kernel gave one, and
/// a human string such as "Permission denied".
pub fn errno_fields(err: &io::Error) -> (Json, Json) {
    let message = err.to_string();
    match err.raw_os_error() {
        Some(code) => {
            // std formats OS errors as "Permission denied (os error 13)"; keep the words only.
            let suffix = format!(" (os error {code})");
            let words = message.strip_suffix(&suffix).unwrap_or(&message);
            (Json::Int(code.into()), Json::from(words))
        }
        None => (Json::Null, Json::Str(message)),
    }
}

/// The `ok`, `errno` and `error` fields of a step that either worked or failed.
pub fn result_fields<T>(result: &io::Result<T>) -> [(&'static str, Json); 3] {
    let (ok, (errno, error)) = match result {
        Ok(_) => (true, (Json::Null, Json::Null)),
        Err(e) => (false, errno_fields(e)),
    };
    [("ok", ok.into()), ("errno", errno), ("error", error)]
}

/// `err` as one line, with its errno when there is one: "Permission denied (errno 13)".
pub fn describe(err: &io::Error) -> String {
    match errno_fields(err) {
        (Json::Int(code), Json::Str(words)) => format!("{words} (errno {code})"),
        _ => err.to_string(),
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Int(n) => write!(f, "{n}"),
            Json::Str(s) => write_string(f, s),
            Json::Array(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
            Json::Object(pairs) => {
                f.write_char('{')?;
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write_string(f, key)?;
                    write!(f, ":{value}")?;
                }
                f.write_char('}')
            }
        }
    }
}

/// Writes `s` as a JSON string: quotes and backslashes escaped, control characters as `\u00XX`.
fn write_string(f: &mut impl Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            c if c.is_control() && (c as u32) < 0x80 => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_written_as_json() {
        assert_eq!(Json::Null.to_string(), "null");
        assert_eq!(Json::from(true).to_string(), "true");
        assert_eq!(Json::from(-42i32).to_string(), "-42");
        assert_eq!(Json::from(None::<u32>).to_string(), "null");
        assert_eq!(Json::from(Some("x")).to_string(), "\"x\"");
    }

    #[test]
    fn quotes_backslashes_and_controls_are_escaped() {
        let s = Json::from("a\"b\\c\nd\te\u{1}f\u{7f}");
        assert_eq!(s.to_string(), r#""a\"b\\c\u000ad\u0009e\u0001f\u007f""#);
    }

    #[test]
    fn non_ascii_text_is_kept_as_is() {
        assert_eq!(Json::from("héllo ✓").to_string(), "\"héllo ✓\"");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(Json::bytes(b"a\xffb").to_string(), "\"a\u{fffd}b\"");
    }

    #[test]
    fn objects_keep_order_and_escape_keys() {
        let v = Json::object([
            ("b", Json::from(1i32)),
            ("a\"", Json::array([1i32, 2])),
            ("c", Json::object(Vec::<(String, Json)>::new())),
        ]);
        assert_eq!(v.to_string(), r#"{"b":1,"a\"":[1,2],"c":{}}"#);
    }

    #[test]
    fn os_errors_give_number_and_words() {
        let err = io::Error::from_raw_os_error(libc::EACCES);
        let (errno, words) = errno_fields(&err);
        assert_eq!(errno, Json::Int(libc::EACCES.into()));
        assert_eq!(words, Json::from("Permission denied"));
        assert_eq!(describe(&err), "Permission denied (errno 13)");
    }

    #[test]
    fn results_give_ok_errno_and_error() {
        let failed: io::Result<()> = Err(io::Error::from_raw_os_error(libc::EPERM));
        let fields = Json::object(result_fields(&failed));
        assert_eq!(
            fields.to_string(),
            r#"{"ok":false,"errno":1,"error":"Operation not permitted"}"#
        );
        let fields = Json::object(result_fields(&Ok(7)));
        assert_eq!(
            fields.to_string(),
            r#"{"ok":true,"errno":null,"error":null}"#
        );
    }

    #[test]
    fn large_unsigned_numbers_saturate() {
        assert_eq!(Json::from(u64::MAX), Json::Int(i64::MAX));
        assert_eq!(Json::from(5u64).to_string(), "5");
    }

    #[test]
    fn other_errors_have_no_number() {
        let err = io::Error::other("bad");
        assert_eq!(errno_fields(&err), (Json::Null, Json::from("bad")));
    }
}
