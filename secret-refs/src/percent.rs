//! Percent-encoding for the path and argument parts of `file://` and `exec://` references.
//!
//! One character set serves both directions, so `parse(display(r)) == r` always holds: the
//! characters in [`is_plain`] may appear as they are, every other byte is written `%XX`.
//! `%` followed by anything but two hex digits is an error, never passed through.

/// Characters that need no encoding: RFC 3986 unreserved plus `/ : @ + ,`. Everything else
/// (space, `? # & = %`, quotes, control characters, non-ASCII) is percent-encoded.
pub(crate) fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.' | b'_' | b'~' | b'/' | b':' | b'@' | b'+' | b','
        )
}

/// Decodes `text`, which must consist of plain characters and `%XX` escapes, into a UTF-8
/// string. The error says what is wrong, without repeating the text.
pub(crate) fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| {
                    u8::from_str_radix(h, 16)
                        .ok()
                        .filter(|_| h.bytes().all(|c| c.is_ascii_hexdigit()))
                })
                .ok_or_else(|| format!("'%' at byte {i} is not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else if is_plain(byte) {
            out.push(byte);
            i += 1;
        } else {
            let shown = text[i..].chars().next().unwrap_or('?');
            return Err(format!(
                "{shown:?} at byte {i} must be percent-encoded (as %{byte:02X}...)"
            ));
        }
    }
    String::from_utf8(out).map_err(|_| "the percent-decoded text is not UTF-8".to_owned())
}

/// Encodes `text` with the same character set [`decode`] accepts.
pub(crate) fn encode(text: &str, out: &mut String) {
    for &byte in text.as_bytes() {
        if is_plain(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_rejects_bad_ones() {
        assert_eq!(decode("a%20b%2Fc%2f").as_deref(), Ok("a b/c/"));
        assert!(decode("%").is_err());
        assert!(decode("%2").is_err());
        assert!(decode("%zz").is_err());
        assert!(decode("%+1").is_err());
        assert!(decode("a b").is_err());
        assert!(decode("a?b").is_err());
        assert!(decode("%ff").is_err(), "not UTF-8");
        assert_eq!(decode("%C3%A9").as_deref(), Ok("é"));
    }

    #[test]
    fn encode_then_decode_is_identity() {
        for text in ["", "plain/path", "a b?c#d&e=f%g", "é\u{0}\n\"'", "~-._:@+,"] {
            let mut encoded = String::new();
            encode(text, &mut encoded);
            assert_eq!(decode(&encoded).as_deref(), Ok(text), "{encoded}");
        }
    }
}
