//! PEM private key blocks, found in the raw text so they are caught however the file holds
//! them: YAML block scalars, TOML multi-line strings, `\n`-escaped JSON strings, quoted
//! `.env` values spread over lines.

/// Longest block text fingerprinted; a block without its END line stops here.
const MAX_BLOCK: usize = 64 * 1024;

/// One private key block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PemBlock {
    /// 1-based line of the BEGIN header.
    pub line: usize,
    /// Last line of the block (the END line, or the header's line when there is none).
    pub last_line: usize,
    /// `-----BEGIN RSA PRIVATE KEY-----`: the only part output shows.
    pub header: String,
    /// BEGIN to END inclusive: what the fingerprint covers.
    pub block: String,
}

/// Every private key block in `text`.
pub(crate) fn find_pem(text: &str) -> Vec<PemBlock> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(rel) = text[from..].find("-----BEGIN ") {
        let start = from + rel;
        let after = start + "-----BEGIN ".len();
        let label_end = text[after..]
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' '))
            .map_or(text.len(), |e| after + e);
        let label = &text[after..label_end];
        let is_private = label.ends_with("PRIVATE KEY") || label.ends_with("PRIVATE KEY BLOCK");
        if !is_private || !text[label_end..].starts_with("-----") {
            from = after;
            continue;
        }
        let header_end = label_end + "-----".len();
        let end = text[header_end..]
            .find("-----END ")
            .and_then(|e| {
                let at = header_end + e + "-----END ".len();
                text[at..].find("-----").map(|d| at + d + "-----".len())
            })
            .filter(|&e| e - start <= MAX_BLOCK)
            .unwrap_or_else(|| {
                text[header_end..]
                    .find('\n')
                    .map_or(text.len(), |n| header_end + n)
            });
        let line = text[..start].matches('\n').count() + 1;
        found.push(PemBlock {
            line,
            last_line: line + text[start..end].matches('\n').count(),
            header: text[start..header_end].to_owned(),
            block: text[start..end].to_owned(),
        });
        from = end.max(header_end);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_over_lines_and_escaped_in_one_line() {
        // Split so the source holds no private key block.
        let begin = ["-----BEGIN EC PRIV", "ATE KEY-----"].concat();
        let end = ["-----END EC PRIV", "ATE KEY-----"].concat();
        let text = format!(
            "a: 1\nkey: |\n  {begin}\n  MHcCAQEE\n  {end}\n{{\"k\": \"{begin}\\nAAAA\\n{end}\\n\"}}\n\
             -----BEGIN CERTIFICATE-----\n"
        );
        let found = find_pem(&text);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].line, found[0].last_line), (3, 5));
        assert_eq!(found[0].header, begin);
        assert!(found[0].block.ends_with(&end));
        assert_eq!((found[1].line, found[1].last_line), (6, 6));
    }

    #[test]
    fn a_header_without_an_end_still_counts() {
        let header = ["-----BEGIN PRIV", "ATE KEY-----"].concat();
        let found = find_pem(&format!("x = \"{header}\nAAAA"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].block, header);
    }
}
