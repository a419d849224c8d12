//! End to end: List page by page. Pages come in scope then key order with a token to go on
//! from, the first with the listing's total count; a principal sees (and counts) only the
//! secrets its ACL lets it list (a rule for some keys of a scope lists those), however they
//! fall across the store's pages; a token the daemon did not issue is refused (and audited);
//! `vaultctl list` reads every page and says how many secrets it showed, and `list --count`
//! prints the total alone.

mod common;

use common::{Client, Sandbox, code, vaultctl_with};
use proto::v1 as pb;
use tonic::Code;

const ACL: &str = r#"
[[acl]]
principal = "admin"
scopes = ["*"]
operations = ["read", "write", "delete", "list", "seal", "open", "admin", "audit"]

[[acl]]
principal = "alice"
scopes = ["global"]
keys = ["app-*"]
operations = ["list"]
"#;

fn put(scope: &str, key: &str) -> pb::PutRequest {
    pb::PutRequest {
        scope: scope.into(),
        key: key.into(),
        value: b"v".to_vec(),
        expected_version: None,
    }
}

/// Every page of a listing with `page_size`: the names, and how many pages it took. The
/// first page's total_count must be how many names all the pages hold, and later pages
/// leave it unset.
async fn walk(api: &mut Client, scope: Option<&str>, page_size: u32) -> (Vec<String>, usize) {
    let (mut names, mut token, mut pages, mut total) = (Vec::new(), String::new(), 0, None);
    loop {
        let reply = api
            .list(pb::ListRequest {
                scope: scope.map(str::to_owned),
                page_size,
                page_token: token,
            })
            .await
            .expect("list")
            .into_inner();
        pages += 1;
        if pages == 1 {
            total = reply.total_count;
        } else {
            assert_eq!(reply.total_count, None, "counted on the first page only");
        }
        let most = if page_size == 0 {
            1000
        } else {
            page_size as usize
        };
        assert!(reply.secrets.len() <= most, "{reply:?}");
        names.extend(
            reply
                .secrets
                .iter()
                .map(|s| format!("{} {}", s.scope, s.key)),
        );
        if reply.next_page_token.is_empty() {
            assert_eq!(total, Some(names.len() as u64), "{scope:?} by {page_size}");
            return (names, pages);
        }
        token = reply.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_cover_every_visible_secret_once_in_order() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.daemon().config(ACL).start();
    let mut admin = daemon.client("admin").await;
    let mut expected = Vec::new();
    for i in 0..30 {
        // Alice may list one key in three of global's.
        let key = if i % 3 == 0 {
            format!("app-{i:02}")
        } else {
            format!("db-{i:02}")
        };
        admin.put(put("global", &key)).await.expect("put");
        expected.push(format!("global {key}"));
    }
    admin.put(put("skill:deploy", "token")).await.expect("put");
    expected.push("skill:deploy token".into());
    expected.sort();

    let (all, pages) = walk(&mut admin, None, 7).await;
    assert_eq!(all, expected);
    assert_eq!(pages, 5, "31 secrets in pages of 7");
    let (one_page, pages) = walk(&mut admin, None, 0).await;
    assert_eq!(
        (one_page, pages),
        (expected.clone(), 1),
        "the default page holds them"
    );
    let (global, _) = walk(&mut admin, Some("global"), 4).await;
    assert_eq!(global.len(), 30);

    // Alice's pages hold only her ten keys, though they are spread over the store's pages.
    let mut alice = daemon.client("alice").await;
    let (hers, _) = walk(&mut alice, Some("global"), 3).await;
    let want: Vec<_> = expected
        .iter()
        .filter(|n| n.starts_with("global app-"))
        .cloned()
        .collect();
    assert_eq!(hers, want);
    assert_eq!(
        walk(&mut alice, None, 5).await.0,
        want,
        "every scope: still only hers"
    );
    // A scope no list rule of hers names is refused outright.
    let refused = alice
        .list(pb::ListRequest {
            scope: Some("skill:deploy".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(code(&refused), Code::PermissionDenied, "{refused:?}");

    // A token the daemon did not issue: INVALID_ARGUMENT, on the audit record.
    for forged in ["not-a-token", "p1.c2tpbGw6ZGVwbG95CnRva2VuCg"] {
        let refused = admin
            .list(pb::ListRequest {
                scope: None,
                page_size: 5,
                page_token: forged.into(),
            })
            .await;
        assert_eq!(
            code(&refused),
            Code::InvalidArgument,
            "{forged}: {refused:?}"
        );
    }
    let audited = sandbox
        .audit_records()
        .into_iter()
        .filter(|r| r.op == "list" && r.status == "INVALID_ARGUMENT")
        .count();
    assert_eq!(audited, 2);

    // vaultctl reads every page, in both output forms.
    let exports = daemon.exports();
    let listed = vaultctl_with(&exports, &["list", "--page-size", "4"], b"");
    assert!(listed.status.success(), "{listed:?}");
    let table = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(table.lines().count(), 2 + expected.len(), "{table}");
    assert_eq!(table.lines().last(), Some("31 secrets"), "{table}");
    // The count alone: vaultd's total_count, in both forms.
    for (args, want) in [
        (&["list", "--count"][..], "31\n"),
        (&["list", "global", "--count"][..], "30\n"),
        (
            &["list", "--count", "--format", "json"][..],
            "{\"total_count\":31}\n",
        ),
    ] {
        let counted = vaultctl_with(&exports, args, b"");
        assert!(counted.status.success(), "{args:?}: {counted:?}");
        assert_eq!(String::from_utf8_lossy(&counted.stdout), want, "{args:?}");
    }
    let json = vaultctl_with(
        &exports,
        &["list", "--page-size", "4", "--format", "json"],
        b"",
    );
    assert!(json.status.success(), "{json:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).expect("a JSON array");
    let names: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["scope"].as_str().unwrap(),
                r["key"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, expected);
}
