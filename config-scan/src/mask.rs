//! Masking values for output, and the fingerprints allowlists use.

/// Values shorter than this show no characters at all: four characters of a short password
/// would give away too much of it.
const SHOW_PREFIX_FROM: usize = 16;
/// The most characters of a value that output ever shows.
const MAX_SHOWN: usize = 4;
/// Hex digits of a fingerprint (64 bits).
pub(crate) const FINGERPRINT_LEN: usize = 16;

/// `ghp_…(40 chars)`: the first 4 characters of a value of 16 or more, else none, and the
/// length in characters.
pub(crate) fn mask(value: &str) -> String {
    let len = value.chars().count();
    let shown: String = if len >= SHOW_PREFIX_FROM {
        value
            .chars()
            .take(MAX_SHOWN)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    } else {
        String::new()
    };
    format!("{shown}…({len} chars)")
}

/// The first [`FINGERPRINT_LEN`] hex digits of SHA-256 over the relative path, the kind and
/// the value (NUL-separated), so the same secret in the same file keeps its fingerprint when
/// lines move, and a changed secret gets a new one.
pub(crate) fn fingerprint(rel_path: &str, kind: &str, value: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [rel_path, kind, value] {
        ctx.update(part.as_bytes());
        ctx.update(&[0]);
    }
    let digest = ctx.finish();
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..FINGERPRINT_LEN]
        .to_owned()
}

/// A key name safe to print on one line: a token used as a key (`{"ghp_...": "admin"}`)
/// masked like a value, control characters replaced, at most 80 characters.
pub(crate) fn printable_key(key: &str) -> String {
    let clean: String = key
        .chars()
        .map(|c| if c.is_control() || c == ' ' { '_' } else { c })
        .collect();
    // Tokens are masked before the cut, so a cut never leaves part of one unmasked.
    let mut redacted = String::with_capacity(clean.len());
    let mut from = 0;
    for m in crate::detect::tokens::find_tokens(&clean) {
        redacted.push_str(&clean[from..m.start]);
        redacted.push_str(&mask(&clean[m.start..m.end]));
        from = m.end;
    }
    redacted.push_str(&clean[from..]);
    let mut out: String = redacted.chars().take(80).collect();
    if redacted.chars().count() > 80 {
        out.push('…');
    }
    if out.is_empty() { "-".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_show_four_characters_and_the_length() {
        assert_eq!(mask("abcdefghijklmnopqrst"), "abcd…(20 chars)");
    }

    #[test]
    fn short_values_show_only_the_length() {
        assert_eq!(mask("hunter2hunter2"), "…(14 chars)");
        assert_eq!(mask(""), "…(0 chars)");
    }

    #[test]
    fn masking_counts_characters_not_bytes() {
        assert_eq!(mask("ééééééééééééééééé"), "éééé…(17 chars)");
    }

    #[test]
    fn tokens_used_as_key_names_are_masked() {
        let token = format!("gh{}{}", "p_", "aB3dE5gH7jK9mN1pQ2sT4vW6yZ8cF0hJ2kL4");
        let key = format!("users.{token}.role");
        assert_eq!(printable_key(&key), "users.ghp_…(40 chars).role");
        assert_eq!(printable_key("a b\tc"), "a_b_c");
    }

    #[test]
    fn fingerprints_depend_on_path_kind_and_value() {
        let a = fingerprint("a.env", "jwt", "v");
        assert_eq!(a.len(), FINGERPRINT_LEN);
        assert_ne!(a, fingerprint("b.env", "jwt", "v"));
        assert_ne!(a, fingerprint("a.env", "high-entropy", "v"));
        assert_ne!(a, fingerprint("a.env", "jwt", "w"));
        assert_eq!(a, fingerprint("a.env", "jwt", "v"));
    }
}
