//! Percent-encoding of PKCS#11 URI values (RFC 7512, section 2.3).

/// Which part of a `pkcs11:` URI a value goes into; they allow different characters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part {
    /// Path attributes, separated by `;`.
    Path,
    /// Query attributes, separated by `&`.
    Query,
}

/// `value` with every byte RFC 7512 does not allow literally in `part` written as `%XX`.
pub(crate) fn encode(value: &str, part: Part) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if literal_ok(byte, part) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// RFC 7512 allows literally: unreserved characters, the sub-delims but for the part's
/// separator, `:`, `[`, `]`, `@`, and, in the query, `/`, `?` and `|`.
fn literal_ok(byte: u8, part: Part) -> bool {
    byte.is_ascii_alphanumeric()
        || b"-._~:[]@!$'()*+,=".contains(&byte)
        || match part {
            Part::Path => byte == b'&',
            Part::Query => b"/?|".contains(&byte),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_stay_readable() {
        assert_eq!(
            encode("/usr/lib/softhsm/libsofthsm2.so", Part::Query),
            "/usr/lib/softhsm/libsofthsm2.so"
        );
        assert_eq!(
            encode("file:/tmp/x/user.pin", Part::Query),
            "file:/tmp/x/user.pin"
        );
        assert_eq!(encode("kek-1_a.b~c", Part::Path), "kek-1_a.b~c");
    }

    #[test]
    fn separators_and_odd_bytes_are_escaped() {
        assert_eq!(encode("a;b&c/d", Part::Path), "a%3Bb&c%2Fd");
        assert_eq!(encode("a;b&c/d", Part::Query), "a%3Bb%26c/d");
        assert_eq!(encode("my key%#", Part::Path), "my%20key%25%23");
        assert_eq!(encode("é", Part::Path), "%C3%A9");
    }
}
