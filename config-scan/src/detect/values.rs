//! What a value under a key is: a reference, a placeholder, an AWS secret key (by its key
//! name), or a high-entropy secret under a secret-sounding name.

use crate::finding::Kind;

/// Shortest value the entropy rule looks at: shorter ones are too often flags and names.
pub(crate) const MIN_ENTROPY_LEN: usize = 12;
/// Shannon entropy per character a value must reach. Random hex reaches about 3.7 and
/// base64 about 5; English words and `my-app-name` style values stay below 3.
pub(crate) const MIN_ENTROPY_BITS: f64 = 3.0;

/// The schemes of secret references: the value says where the secret is, not what it is.
pub(crate) const REF_SCHEMES: [&str; 4] = ["vault://", "env://", "file://", "exec://"];

/// Words that make a key name secret-sounding.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "secret",
    "secrets",
    "token",
    "tokens",
    "apikey",
    "privatekey",
    "credential",
    "credentials",
    "auth",
    "authtoken",
];
/// Pairs of words that together are secret-sounding (`api_key`, `private-key`, `accessKey`).
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("private", "key"),
    ("access", "key"),
    ("secret", "key"),
    ("signing", "key"),
    ("encryption", "key"),
];
/// A last word that says the value is about a secret, not the secret (`token_url`,
/// `password_file`, `secret_name`).
const NOT_THE_SECRET: &[&str] = &[
    "file", "path", "url", "uri", "endpoint", "dir", "name", "type", "method", "mode", "ttl",
    "timeout", "length", "len", "expiry", "expires", "header", "env", "command", "cmd", "provider",
    "enabled", "required", "id", "policy", "hint", "min", "max", "size", "count",
];

/// Whether `value` is a secret reference.
pub(crate) fn is_reference(value: &str) -> bool {
    REF_SCHEMES.iter().any(|s| value.starts_with(s))
}

/// Empty values, template variables and filler that no one would use as a secret.
pub(crate) fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    const WORDS: &[&str] = &[
        "changeme",
        "change_me",
        "change-me",
        "changeit",
        "replace_me",
        "replaceme",
        "password",
        "secret",
        "token",
        "example",
        "placeholder",
        "todo",
        "tbd",
        "redacted",
        "none",
        "null",
        "nil",
        "true",
        "false",
        "dummy",
        "test",
        "default",
    ];
    v.is_empty()
        || WORDS.contains(&lower.as_str())
        || v.contains("${")
        || v.contains("{{")
        || (v.starts_with('$')
            && v[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'))
        || (v.starts_with('<') && v.ends_with('>'))
        || v.starts_with("%(")
        || lower.contains("changeme")
        || lower.contains("your_")
        || lower.contains("your-")
        || lower.contains("xxxx")
        || lower.contains("example")
        || v.chars()
            .all(|c| matches!(c, 'x' | 'X' | '*' | '.' | '-' | '_' | '#' | '0'))
}

/// The words of a key's last segment: `db.apiKey` -> `api`, `key`; `AUTH_TOKEN` -> `auth`,
/// `token`.
fn words(key: &str) -> Vec<String> {
    let last = key.rsplit(['.', '/', ':']).next().unwrap_or(key);
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in last.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether a key name says its value is a secret.
pub(crate) fn is_secret_name(key: &str) -> bool {
    let words = words(key);
    let Some(last) = words.last() else {
        return false;
    };
    if NOT_THE_SECRET.contains(&last.as_str()) {
        return false;
    }
    words.iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
        || words
            .windows(2)
            .any(|p| SECRET_PAIRS.contains(&(p[0].as_str(), p[1].as_str())))
}

/// Whether the key names an AWS secret access key (`aws_secret_access_key`,
/// `AWS_SECRET_ACCESS_KEY`, `secretAccessKey`).
pub(crate) fn is_aws_secret_name(key: &str) -> bool {
    let joined: String = words(key).concat();
    joined.ends_with("secretaccesskey")
}

/// 40 characters of base64: the shape of an AWS secret access key.
pub(crate) fn is_aws_secret_value(value: &str) -> bool {
    value.len() == 40
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+' || b == b'=')
}

/// Shannon entropy of `value` in bits per character.
pub(crate) fn entropy(value: &str) -> f64 {
    let mut counts: std::collections::HashMap<char, usize> = std::collections::HashMap::new();
    let mut total = 0usize;
    for c in value.chars() {
        *counts.entry(c).or_default() += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    let n = total as f64;
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Words, not a random string: prose (three or more spaces), or identifiers joined by
/// `_ - . /` whose parts are each letters with optional trailing digits (`Win32_Security`,
/// `my-app/shared-secret`). Generated secrets mix letters and digits inside a part. The
/// price: a passphrase made of words is not flagged.
pub(crate) fn looks_like_words(value: &str) -> bool {
    if value.chars().filter(|c| c.is_whitespace()).count() >= 3 {
        return true;
    }
    let parts: Vec<&str> = value.split(['_', '-', '.', '/']).collect();
    parts.len() >= 2
        && parts.iter().all(|part| {
            let letters = part.trim_end_matches(|c: char| c.is_ascii_digit());
            letters.len() >= 2 && letters.chars().all(|c| c.is_ascii_alphabetic())
        })
}

/// What the value-based rules say about `value` under `key`, if anything.
pub(crate) fn classify(key: &str, value: &str) -> Option<Kind> {
    let v = value.trim();
    if is_reference(v) || is_placeholder(v) {
        return None;
    }
    if is_aws_secret_name(key) && is_aws_secret_value(v) {
        return Some(Kind::AwsSecretKey);
    }
    let looks_like_location = v.starts_with('/') || v.starts_with("./") || v.starts_with("~/");
    if is_secret_name(key)
        && !looks_like_location
        && !v.contains("://")
        && !looks_like_words(v)
        && v.chars().count() >= MIN_ENTROPY_LEN
        && entropy(v) >= MIN_ENTROPY_BITS
    {
        return Some(Kind::HighEntropy);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for key in [
            "password",
            "db.password",
            "DB_PASSWORD",
            "apiKey",
            "api_key",
            "client_secret",
            "auth_token",
            "private-key",
            "credentials",
            "AWS_SECRET_ACCESS_KEY",
            "//registry.npmjs.org/:_authToken",
        ] {
            assert!(is_secret_name(key), "{key}");
        }
        for key in [
            "token_url",
            "password_file",
            "secret_name",
            "author",
            "username",
            "auth_method",
            "passport",
            "keyboard",
            "tokenizer",
        ] {
            assert!(!is_secret_name(key), "{key}");
        }
    }

    #[test]
    fn placeholders() {
        for v in [
            "",
            "changeme",
            "CHANGEME",
            "${DB_PASSWORD}",
            "$DB_PASSWORD",
            "<your token>",
            "xxxxxxxxxxxxxxxx",
            "********",
            "{{ .Values.token }}",
            "your-token-here",
        ] {
            assert!(is_placeholder(v), "{v}");
        }
        assert!(!is_placeholder("k9Qz2Lm8Vx4Tp7Rw"));
    }

    #[test]
    fn entropy_rule() {
        assert_eq!(
            classify("password", "k9Qz2Lm8Vx4Tp7Rw"),
            Some(Kind::HighEntropy)
        );
        assert_eq!(classify("password", "aaaaaaaaaaaaaaaa"), None);
        assert_eq!(classify("password", "short1A"), None);
        assert_eq!(classify("username", "k9Qz2Lm8Vx4Tp7Rw"), None);
        assert_eq!(classify("token", "vault://global/api-token"), None);
        assert_eq!(classify("token", "/run/secrets/api-token-file"), None);
        assert!(entropy("0123456789abcdef") > 3.9);
        // Feature names and prose under secret-sounding keys (seen in real Cargo.toml and
        // test-vector files).
        assert_eq!(
            classify("Win32_Security_Credentials", "Win32_Security"),
            None
        );
        assert_eq!(classify("shared-secret", "trussed/shared-secret"), None);
        assert_eq!(
            classify(
                "ZeroSharedSecret",
                "Some libraries check that the secret is not zero"
            ),
            None
        );
        assert_eq!(
            classify("password", "Zq8#kL2!mN4$pR6^"),
            Some(Kind::HighEntropy)
        );
        assert_eq!(
            classify("token", "aB3dE5gH7jK9-mN1pQ2sT4"),
            Some(Kind::HighEntropy)
        );
    }
}
