//! Well-known credential formats, matched by hand (no regex engine): a prefix, then a run of
//! the format's alphabet with a length range, at word boundaries on both sides.

use crate::finding::Kind;

/// A token found in a line or value: its byte range and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenMatch {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
fn upper_digit(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}
fn b64url(b: u8) -> bool {
    alnum(b) || b == b'_' || b == b'-'
}
fn word(b: u8) -> bool {
    alnum(b) || b == b'_'
}
fn slack(b: u8) -> bool {
    alnum(b) || b == b'-'
}

/// `prefix` + `min..=max` characters of `class`, not followed by another `class` character.
struct Prefixed {
    prefix: &'static str,
    class: fn(u8) -> bool,
    min: usize,
    max: usize,
    kind: Kind,
}

/// Checked in order: longer prefixes first (`sk-ant-` before `sk-`).
const PREFIXED: &[Prefixed] = &[
    Prefixed {
        prefix: "AKIA",
        class: upper_digit,
        min: 16,
        max: 16,
        kind: Kind::AwsAccessKeyId,
    },
    Prefixed {
        prefix: "ASIA",
        class: upper_digit,
        min: 16,
        max: 16,
        kind: Kind::AwsAccessKeyId,
    },
    Prefixed {
        prefix: "github_pat_",
        class: word,
        min: 40,
        max: 255,
        kind: Kind::GithubToken,
    },
    Prefixed {
        prefix: "ghp_",
        class: alnum,
        min: 36,
        max: 255,
        kind: Kind::GithubToken,
    },
    Prefixed {
        prefix: "gho_",
        class: alnum,
        min: 36,
        max: 255,
        kind: Kind::GithubToken,
    },
    Prefixed {
        prefix: "ghs_",
        class: alnum,
        min: 36,
        max: 255,
        kind: Kind::GithubToken,
    },
    Prefixed {
        prefix: "ghu_",
        class: alnum,
        min: 36,
        max: 255,
        kind: Kind::GithubToken,
    },
    Prefixed {
        prefix: "ghr_",
        class: alnum,
        min: 36,
        max: 255,
        kind: Kind::GithubToken,
    },
    Prefixed {
        prefix: "glpat-",
        class: b64url,
        min: 20,
        max: 255,
        kind: Kind::GitlabToken,
    },
    Prefixed {
        prefix: "xoxb-",
        class: slack,
        min: 20,
        max: 255,
        kind: Kind::SlackToken,
    },
    Prefixed {
        prefix: "xoxp-",
        class: slack,
        min: 20,
        max: 255,
        kind: Kind::SlackToken,
    },
    Prefixed {
        prefix: "xoxa-",
        class: slack,
        min: 20,
        max: 255,
        kind: Kind::SlackToken,
    },
    Prefixed {
        prefix: "xoxr-",
        class: slack,
        min: 20,
        max: 255,
        kind: Kind::SlackToken,
    },
    Prefixed {
        prefix: "xoxs-",
        class: slack,
        min: 20,
        max: 255,
        kind: Kind::SlackToken,
    },
    Prefixed {
        prefix: "xapp-",
        class: slack,
        min: 20,
        max: 255,
        kind: Kind::SlackToken,
    },
    Prefixed {
        prefix: "sk_live_",
        class: alnum,
        min: 20,
        max: 255,
        kind: Kind::StripeKey,
    },
    Prefixed {
        prefix: "rk_live_",
        class: alnum,
        min: 20,
        max: 255,
        kind: Kind::StripeKey,
    },
    Prefixed {
        prefix: "sk-ant-",
        class: b64url,
        min: 32,
        max: 255,
        kind: Kind::AnthropicKey,
    },
    Prefixed {
        prefix: "sk-proj-",
        class: b64url,
        min: 32,
        max: 255,
        kind: Kind::OpenaiKey,
    },
    Prefixed {
        prefix: "sk-",
        class: b64url,
        min: 32,
        max: 255,
        kind: Kind::OpenaiKey,
    },
    Prefixed {
        prefix: "AIza",
        class: b64url,
        min: 35,
        max: 35,
        kind: Kind::GoogleApiKey,
    },
    Prefixed {
        prefix: "npm_",
        class: alnum,
        min: 36,
        max: 36,
        kind: Kind::NpmToken,
    },
];

/// Every token in `text`, left to right, not overlapping.
pub(crate) fn find_tokens(text: &str) -> Vec<TokenMatch> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !b64url(bytes[i - 1]);
        let hit = if boundary { match_at(bytes, i) } else { None };
        match hit {
            Some((end, kind)) if !looks_like_placeholder(&text[i..end]) => {
                found.push(TokenMatch {
                    start: i,
                    end,
                    kind,
                });
                i = end;
            }
            _ => i += 1,
        }
    }
    found
}

fn match_at(bytes: &[u8], i: usize) -> Option<(usize, Kind)> {
    for p in PREFIXED {
        if bytes[i..].starts_with(p.prefix.as_bytes()) {
            let body = i + p.prefix.len();
            let end = run(bytes, body, p.class);
            let len = end - body;
            let clean_end = bytes.get(end).is_none_or(|b| !b64url(*b) || (p.class)(*b));
            if (p.min..=p.max).contains(&len) && clean_end {
                return Some((end, p.kind));
            }
        }
    }
    jwt(bytes, i)
        .map(|end| (end, Kind::Jwt))
        .or_else(|| telegram(bytes, i).map(|end| (end, Kind::TelegramBotToken)))
        .or_else(|| discord(bytes, i).map(|end| (end, Kind::DiscordBotToken)))
}

/// End of the run of `class` characters starting at `i`.
fn run(bytes: &[u8], i: usize, class: fn(u8) -> bool) -> usize {
    let mut end = i;
    while end < bytes.len() && class(bytes[end]) {
        end += 1;
    }
    end
}

/// `eyJ<10+>.eyJ<10+>.<signature>`: a JWT's header and payload are base64url JSON objects,
/// which always start `eyJ`.
fn jwt(bytes: &[u8], i: usize) -> Option<usize> {
    let part = |at: usize| -> Option<usize> {
        bytes[at..].starts_with(b"eyJ").then_some(())?;
        let end = run(bytes, at + 3, b64url);
        (end - at >= 13 && bytes.get(end) == Some(&b'.')).then_some(end + 1)
    };
    let after_payload = part(part(i)?)?;
    Some(run(bytes, after_payload, b64url))
}

/// `<6-12 digits>:<35 of base64url>`: the bot id, then the secret.
fn telegram(bytes: &[u8], i: usize) -> Option<usize> {
    let digits = run(bytes, i, |b| b.is_ascii_digit());
    if !(6..=12).contains(&(digits - i)) || bytes.get(digits) != Some(&b':') {
        return None;
    }
    let end = run(bytes, digits + 1, b64url);
    (end - digits - 1 == 35).then_some(end)
}

/// `[MNO]<23-27>.<6-7>.<27-40>` of base64url: the bot's id, a timestamp and an HMAC.
fn discord(bytes: &[u8], i: usize) -> Option<usize> {
    if !matches!(bytes[i], b'M' | b'N' | b'O') {
        return None;
    }
    let mut at = i;
    for (min, max) in [(24, 28), (6, 7), (27, 40)] {
        let end = run(bytes, at, b64url);
        if !(min..=max).contains(&(end - at)) {
            return None;
        }
        at = end;
        if max != 40 {
            (bytes.get(at) == Some(&b'.')).then_some(())?;
            at += 1;
        }
    }
    Some(at)
}

/// Documentation examples (`AKIAIOSFODNN7EXAMPLE`) and filler (`ghp_xxxx...`) are not
/// secrets.
fn looks_like_placeholder(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    let mut distinct: Vec<u8> = token.bytes().skip(4).collect();
    distinct.sort_unstable();
    distinct.dedup();
    lower.contains("example") || lower.contains("xxxxxx") || distinct.len() < 6
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Varied characters of the given length, from `alphabet`.
    fn filler(len: usize, alphabet: &str) -> String {
        alphabet.chars().cycle().skip(7).take(len).collect()
    }

    const ALNUM: &str = "aB3dE5gH7jK9mN1pQ2sT4vW6yZ8cF0";

    fn kinds(text: &str) -> Vec<Kind> {
        find_tokens(text).into_iter().map(|m| m.kind).collect()
    }

    #[test]
    fn each_format_is_recognised() {
        let cases = [
            (
                format!("AKIA{}", filler(16, "ABCDEFGHJKLMNPQRSTUVWXYZ234567")),
                Kind::AwsAccessKeyId,
            ),
            (format!("ghp_{}", filler(36, ALNUM)), Kind::GithubToken),
            (
                format!("github_pat_{}", filler(82, ALNUM)),
                Kind::GithubToken,
            ),
            (format!("glpat-{}", filler(20, ALNUM)), Kind::GitlabToken),
            (format!("xoxb-{}", filler(40, ALNUM)), Kind::SlackToken),
            (format!("sk_live_{}", filler(24, ALNUM)), Kind::StripeKey),
            (
                format!("sk-ant-api03-{}", filler(80, ALNUM)),
                Kind::AnthropicKey,
            ),
            (format!("sk-proj-{}", filler(60, ALNUM)), Kind::OpenaiKey),
            (format!("sk-{}", filler(48, ALNUM)), Kind::OpenaiKey),
            (format!("AIza{}", filler(35, ALNUM)), Kind::GoogleApiKey),
            (format!("npm_{}", filler(36, ALNUM)), Kind::NpmToken),
            (
                format!("123456789:AA{}", filler(33, ALNUM)),
                Kind::TelegramBotToken,
            ),
            (
                format!(
                    "M{}.{}.{}",
                    filler(25, ALNUM),
                    filler(6, ALNUM),
                    filler(27, ALNUM)
                ),
                Kind::DiscordBotToken,
            ),
            (
                format!(
                    "eyJ{}.eyJ{}.{}",
                    filler(20, ALNUM),
                    filler(30, ALNUM),
                    filler(43, ALNUM)
                ),
                Kind::Jwt,
            ),
        ];
        for (token, kind) in cases {
            assert_eq!(kinds(&token), vec![kind], "{kind}");
            let embedded = format!("Authorization: Bearer {token}, next");
            let m = find_tokens(&embedded);
            assert_eq!(m.len(), 1, "{kind} embedded");
            assert_eq!(&embedded[m[0].start..m[0].end], token);
        }
    }

    #[test]
    fn near_misses_and_placeholders_are_not_tokens() {
        assert!(kinds(&format!("ghp_{}", filler(20, ALNUM))).is_empty());
        assert!(kinds(&format!("xghp_{}", filler(36, ALNUM))).is_empty());
        assert!(kinds(&format!("task-{}", filler(40, ALNUM))).is_empty());
        assert!(kinds(&["AK", "IAIOSFODNN7EXAMPLE"].concat()).is_empty());
        assert!(kinds(&format!("ghp_{}", "x".repeat(36))).is_empty());
        assert!(
            kinds(&format!(
                "AKIA{}X",
                filler(16, "ABCDEFGHJKLMNPQRSTUVWXYZ234567")
            ))
            .is_empty()
        );
        assert!(kinds("12345:short").is_empty());
    }
}
