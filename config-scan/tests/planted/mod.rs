//! A tree of configuration files in all five formats with planted secrets, placeholders and
//! references, shared by config-scan's tests and vaultctl's `scan` tests.
//!
//! Every planted token is assembled here at run time from split prefixes and a seeded
//! generator, so the repository holds nothing that looks like a live credential.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A secret planted at a file and line, and what the scanner must call it.
#[derive(Debug, Clone)]
pub struct Planted {
    pub rel: &'static str,
    pub line: usize,
    pub kind: &'static str,
    pub key: &'static str,
    /// The full secret text (for a PEM block, the base64 body lines).
    pub value: String,
}

/// The tree and what is planted in it.
#[derive(Debug)]
pub struct Tree {
    pub dir: TempDir,
    /// A directory beside the tree that a symlink inside it points into.
    pub outside: TempDir,
    pub planted: Vec<Planted>,
    /// Secrets in places the scan must not read (skipped directories, non-config files,
    /// behind a symlink out of the tree).
    pub hidden: Vec<String>,
}

impl Tree {
    pub fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn planted(&self, rel: &str, line: usize) -> &Planted {
        self.planted
            .iter()
            .find(|p| p.rel == rel && p.line == line)
            .expect("planted")
    }
}

/// Deterministic varied characters (xorshift), `len` of them from `alphabet`.
pub fn random(seed: u64, len: usize, alphabet: &str) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chars[(x % chars.len() as u64) as usize]
        })
        .collect()
}

pub const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_DIGIT: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `a` + `b` + a random body: prefixes are split so no source line holds a token prefix
/// followed by a body.
fn token(a: &str, b: &str, seed: u64, len: usize, alphabet: &str) -> String {
    format!("{a}{b}{}", random(seed, len, alphabet))
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

/// The line (1-based) of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle")
        + 1
}

/// Records `value`, found at the line holding `needle`.
fn plant(
    planted: &mut Vec<Planted>,
    rel: &'static str,
    text: &str,
    needle: &str,
    value: &str,
    kind: &'static str,
    key: &'static str,
) {
    planted.push(Planted {
        rel,
        line: line_of(text, needle),
        kind,
        key,
        value: value.to_owned(),
    });
}

/// Builds the tree.
pub fn build() -> Tree {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let mut planted = Vec::new();

    let gh = token("gh", "p_", 1, 36, ALNUM);
    let db_password = random(2, 24, ALNUM);
    let pem_rsa = random(3, 64, B64);
    let rsa = ["-----BEGIN RSA PRIV", "ATE KEY-----"].concat();
    let rsa_end = ["-----END RSA PRIV", "ATE KEY-----"].concat();
    let toml = format!(
        "# service configuration\n[server]\nport = 8080\n[github]\ntoken = \"{gh}\"\n\
         [database]\nurl = \"postgres://db.internal/app\"\npassword = \"{db_password}\"\n\
         api_key = \"${{API_KEY}}\"\nsecret = \"vault://global/db-secret\"\n\
         other = \"vault://global/not-there\"\nsigning_key = \"\"\"\n{rsa}\n{pem_rsa}\n{rsa_end}\n\"\"\"\n\
         token_url = \"https://auth.internal/token\"\n"
    );
    write(root, "app/config.toml", &toml);
    plant(
        &mut planted,
        "app/config.toml",
        &toml,
        &gh,
        &gh,
        "github-token",
        "github.token",
    );
    plant(
        &mut planted,
        "app/config.toml",
        &toml,
        &db_password,
        &db_password,
        "high-entropy",
        "database.password",
    );
    plant(
        &mut planted,
        "app/config.toml",
        &toml,
        &rsa,
        &pem_rsa,
        "pem-private-key",
        "database.signing_key",
    );

    let slack = token("xox", "b-", 4, 48, ALNUM);
    let akia = token("AK", "IA", 5, 16, UPPER_DIGIT);
    let aws_secret = random(6, 40, B64);
    let pem_ec = random(7, 64, B64);
    let ec = ["-----BEGIN EC PRIV", "ATE KEY-----"].concat();
    let ec_end = ["-----END EC PRIV", "ATE KEY-----"].concat();
    let yaml = format!(
        "slack:\n  bot_token: {slack}\naws:\n  access_key_id: {akia}\n  secret_access_key: \
         \"{aws_secret}\"\ntls:\n  key: |\n    {ec}\n    {pem_ec}\n    {ec_end}\nusers:\n  \
         - name: admin\n    password: changeme\n  - name: ci\n    password: \
         \"vault://global/ci-password#2\"\n  - name: web\n    password: \"<set me>\"\n"
    );
    write(root, "deploy/values.yaml", &yaml);
    plant(
        &mut planted,
        "deploy/values.yaml",
        &yaml,
        &slack,
        &slack,
        "slack-token",
        "slack.bot_token",
    );
    plant(
        &mut planted,
        "deploy/values.yaml",
        &yaml,
        &akia,
        &akia,
        "aws-access-key-id",
        "aws.access_key_id",
    );
    plant(
        &mut planted,
        "deploy/values.yaml",
        &yaml,
        &aws_secret,
        &aws_secret,
        "aws-secret-key",
        "aws.secret_access_key",
    );
    plant(
        &mut planted,
        "deploy/values.yaml",
        &yaml,
        &ec,
        &pem_ec,
        "pem-private-key",
        "tls.key",
    );

    let stripe = token("sk_li", "ve_", 8, 32, ALNUM);
    let openai = token("sk-pr", "oj-", 9, 64, ALNUM);
    let anthropic = token("sk-an", "t-api03-", 10, 80, ALNUM);
    let google = token("AI", "za", 11, 35, ALNUM);
    let jwt = format!(
        "{}.{}.{}",
        token("ey", "J", 12, 24, ALNUM),
        token("ey", "J", 13, 40, ALNUM),
        random(14, 43, ALNUM)
    );
    let json = format!(
        "{{\n  \"stripe\": {{\"secret_key\": \"{stripe}\"}},\n  \"openai_api_key\": \"{openai}\",\n  \
         \"anthropic\": \"{anthropic}\",\n  \"google\": {{\"maps_key\": \"{google}\"}},\n  \
         \"session\": \"{jwt}\",\n  \"auth_token\": \"<your token here>\",\n  \
         \"empty_secret\": \"\",\n  \"client_secret\": \"xxxxxxxxxxxxxxxxxxxx\"\n}}\n"
    );
    write(root, "web/settings.json", &json);
    plant(
        &mut planted,
        "web/settings.json",
        &json,
        &stripe,
        &stripe,
        "stripe-key",
        "stripe.secret_key",
    );
    plant(
        &mut planted,
        "web/settings.json",
        &json,
        &openai,
        &openai,
        "openai-key",
        "openai_api_key",
    );
    plant(
        &mut planted,
        "web/settings.json",
        &json,
        &anthropic,
        &anthropic,
        "anthropic-key",
        "anthropic",
    );
    plant(
        &mut planted,
        "web/settings.json",
        &json,
        &google,
        &google,
        "google-api-key",
        "google.maps_key",
    );
    plant(
        &mut planted,
        "web/settings.json",
        &json,
        &jwt,
        &jwt,
        "jwt",
        "session",
    );

    let gitlab = token("glp", "at-", 15, 20, ALNUM);
    let mail_password = random(16, 20, ALNUM);
    let npm = token("np", "m_", 17, 36, ALNUM);
    let ini = format!(
        "; legacy settings\n[gitlab]\ntoken = {gitlab}\n[mail]\npassword = {mail_password}\n\
         user = mailer\n[npm]\n//registry.npmjs.org/:_authToken={npm}\n"
    );
    write(root, "legacy/app.ini", &ini);
    plant(
        &mut planted,
        "legacy/app.ini",
        &ini,
        &gitlab,
        &gitlab,
        "gitlab-token",
        "gitlab.token",
    );
    plant(
        &mut planted,
        "legacy/app.ini",
        &ini,
        &mail_password,
        &mail_password,
        "high-entropy",
        "mail.password",
    );
    plant(
        &mut planted,
        "legacy/app.ini",
        &ini,
        &npm,
        &npm,
        "npm-token",
        "npm.//registry.npmjs.org/:_authToken",
    );

    let telegram = format!("{}:{}", "987654321", token("A", "A", 18, 33, ALNUM));
    let discord = format!(
        "{}.{}.{}",
        token("M", "T", 19, 24, ALNUM),
        random(20, 6, ALNUM),
        random(21, 38, ALNUM)
    );
    let openai_legacy = token("s", "k-", 22, 48, ALNUM);
    let env = format!(
        "# local environment\nTELEGRAM_BOT_TOKEN={telegram}\nDISCORD_TOKEN=\"{discord}\"\n\
         DB_PASSWORD=${{DB_PASSWORD}}\nGH_TOKEN=env://GH_TOKEN\nexport OPENAI_API_KEY={openai_legacy}\n\
         SESSION_SECRET=file:///run/secrets/session\n"
    );
    write(root, ".env", &env);
    plant(
        &mut planted,
        ".env",
        &env,
        &telegram,
        &telegram,
        "telegram-bot-token",
        "TELEGRAM_BOT_TOKEN",
    );
    plant(
        &mut planted,
        ".env",
        &env,
        &discord,
        &discord,
        "discord-bot-token",
        "DISCORD_TOKEN",
    );
    plant(
        &mut planted,
        ".env",
        &env,
        &openai_legacy,
        &openai_legacy,
        "openai-key",
        "OPENAI_API_KEY",
    );

    // Never read: skipped directories, files of other formats, a symlink out of the tree.
    let hidden: Vec<String> = (30..34).map(|s| token("gh", "p_", s, 36, ALNUM)).collect();
    write(
        root,
        "node_modules/pkg/config.json",
        &format!("{{\"t\": \"{}\"}}", hidden[0]),
    );
    write(root, ".git/config.toml", &format!("t = \"{}\"", hidden[1]));
    write(root, "README.md", &format!("token: {}\n", hidden[2]));
    write(
        outside.path(),
        "secret.toml",
        &format!("t = \"{}\"", hidden[3]),
    );
    std::os::unix::fs::symlink(outside.path().join("secret.toml"), root.join("link.toml"))
        .expect("symlink");

    Tree {
        dir,
        outside,
        planted,
        hidden,
    }
}

/// Fails if `output` holds any planted value, or any 8 characters in a row of one.
pub fn assert_nothing_revealed(output: &str, tree: &Tree) {
    let values = tree.planted.iter().map(|p| &p.value).chain(&tree.hidden);
    for value in values {
        let chars: Vec<char> = value.chars().collect();
        for window in chars.windows(8) {
            let piece: String = window.iter().collect();
            assert!(
                !output.contains(&piece),
                "output reveals {piece:?} of a planted value:\n{output}"
            );
        }
    }
}
