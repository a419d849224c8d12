//! The threshold KEK: any m of n members open, fewer say how many more are needed, sealing
//! needs all, shares are bound to their position and policy, every tampered byte is refused.

use std::sync::Arc;

use envelope::{Context, Dek, Health, KekId, KekProvider, SoftwareKek, StanzaRef};
use kek_providers::{Error, MAX_THRESHOLD_MEMBERS, ThresholdKek};
use proptest::prelude::*;

const AAD: &[u8] = b"threshold test aad";

/// `n` fresh in-memory members named `<prefix>0`, `<prefix>1`, ...
fn members(prefix: &str, n: usize) -> Vec<Arc<dyn KekProvider>> {
    (0..n)
        .map(|k| {
            let kek = SoftwareKek::random(&format!("{prefix}{k}")).expect("member");
            Arc::new(kek) as Arc<dyn KekProvider>
        })
        .collect()
}

fn ids(members: &[Arc<dyn KekProvider>]) -> Vec<KekId> {
    members.iter().map(|m| m.id().clone()).collect()
}

/// A threshold KEK needing `m` of `all`, with the members at `available` present.
fn threshold(m: usize, all: &[Arc<dyn KekProvider>], available: &[usize]) -> ThresholdKek {
    let present = available.iter().map(|&k| Arc::clone(&all[k])).collect();
    ThresholdKek::new(m, ids(all), present).expect("threshold KEK")
}

fn everyone(m: usize, all: &[Arc<dyn KekProvider>]) -> ThresholdKek {
    threshold(m, all, &(0..all.len()).collect::<Vec<_>>())
}

fn stanza<'a>(kek: &'a dyn KekProvider, body: &'a [u8]) -> StanzaRef<'a> {
    let id = kek.id();
    StanzaRef {
        kind: id.kind(),
        label: id.label(),
        version: id.version(),
        body,
    }
}

fn wrap(kek: &ThresholdKek) -> (Dek, Vec<u8>) {
    let dek = Dek::generate().expect("dek");
    let body = kek.wrap(&dek, AAD).expect("wrap");
    (dek, body)
}

fn open(kek: &ThresholdKek, body: &[u8]) -> Result<Dek, envelope::Error> {
    kek.unwrap(&stanza(kek, body), AAD).expect("its own stanza")
}

/// Every `size`-subset of `0..n`.
fn subsets(n: usize, size: usize) -> Vec<Vec<usize>> {
    (0u32..1 << n)
        .filter(|bits| bits.count_ones() as usize == size)
        .map(|bits| (0..n).filter(|k| bits & (1 << k) != 0).collect())
        .collect()
}

fn assert_opens(kek: &ThresholdKek, body: &[u8], dek: &Dek) {
    let back = open(kek, body).unwrap_or_else(|e| panic!("{kek:?}: {e}"));
    assert_eq!(back.expose_secret(), dek.expose_secret());
}

fn refusal(kek: &ThresholdKek, body: &[u8]) -> String {
    match open(kek, body) {
        Ok(_) => panic!("{kek:?} opened with too few members"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn any_two_of_three_open_a_stanza_sealed_by_all_three() {
    let all = members("m", 3);
    let (dek, body) = wrap(&everyone(2, &all));
    for subset in subsets(3, 2).into_iter().chain([vec![0, 1, 2]]) {
        assert_opens(&threshold(2, &all, &subset), &body, &dek);
    }
}

#[test]
fn one_of_two_of_three_says_one_more_is_needed_and_which() {
    let all = members("m", 3);
    let (_, body) = wrap(&everyone(2, &all));
    for k in 0..3 {
        let message = refusal(&threshold(2, &all, &[k]), &body);
        assert!(message.contains("2 of 3 KEKs are needed"), "{message}");
        assert!(
            message.contains(&format!("1 opened (memory:m{k}#v1)")),
            "{message}"
        );
        assert!(message.contains("1 more"), "{message}");
        for other in (0..3).filter(|&o| o != k) {
            assert!(
                message.contains(&format!("memory:m{other}#v1")),
                "{message}"
            );
        }
    }
    let message = refusal(&threshold(2, &all, &[]), &body);
    assert!(message.contains("0 opened; 2 more needed"), "{message}");
}

#[test]
fn three_of_five_open_with_any_three_and_not_with_two() {
    let all = members("m", 5);
    let (dek, body) = wrap(&everyone(3, &all));
    for subset in subsets(5, 3) {
        assert_opens(&threshold(3, &all, &subset), &body, &dek);
    }
    for subset in subsets(5, 2) {
        let message = refusal(&threshold(3, &all, &subset), &body);
        assert!(
            message.contains("3 of 5 KEKs are needed; 2 opened"),
            "{message}"
        );
        assert!(message.contains("1 more"), "{message}");
    }
}

#[test]
fn sealing_needs_every_member_and_names_the_missing_ones() {
    let all = members("m", 3);
    let dek = Dek::generate().expect("dek");
    let err = threshold(2, &all, &[0, 2])
        .wrap(&dek, AAD)
        .expect_err("refused");
    let message = err.to_string();
    assert!(message.contains("memory:m1#v1"), "{message}");
    assert!(
        message.contains("every member KEK must be present"),
        "{message}"
    );
    assert!(!message.contains("memory:m0#v1"), "{message}");
}

#[test]
fn a_failing_member_is_named_and_others_still_open() {
    let all = members("m", 3);
    let (dek, body) = wrap(&everyone(2, &all));
    // Member 0 with another key under the same id: it rejects its share.
    let impostor: Arc<dyn KekProvider> = Arc::new(SoftwareKek::new(
        all[0].id().clone(),
        Dek::generate().expect("key"),
    ));
    let swapped = vec![impostor.clone(), all[1].clone(), all[2].clone()];
    assert_opens(&threshold(2, &swapped, &[0, 1, 2]), &body, &dek);
    let message = refusal(&threshold(2, &swapped, &[0, 1]), &body);
    assert!(message.contains("1 opened (memory:m1#v1)"), "{message}");
    assert!(message.contains("member errors: "), "{message}");
    assert!(
        message.contains("memory:m0#v1 rejected its wrapped key"),
        "{message}"
    );
}

/// The byte range of entry `k`'s wrapped share in a body of members with 2-byte labels.
fn wrapped_range(k: usize) -> std::ops::Range<usize> {
    let entry_len = 1 + 1 + "memory".len() + 1 + 2 + 4 + 2 + 61;
    let start = 3 + k * entry_len + entry_len - 61;
    start..start + 61
}

#[test]
fn a_share_moved_to_another_index_does_not_unwrap() {
    let all = members("m", 3);
    let (_, body) = wrap(&everyone(2, &all));
    let mut moved = body.clone();
    let (first, second) = (
        body[wrapped_range(0)].to_vec(),
        body[wrapped_range(1)].to_vec(),
    );
    moved[wrapped_range(0)].copy_from_slice(&second);
    moved[wrapped_range(1)].copy_from_slice(&first);
    let message = refusal(&threshold(2, &all, &[0, 1]), &moved);
    assert!(message.contains("0 opened; 2 more needed"), "{message}");
    assert!(message.contains("memory:m0#v1 rejected"), "{message}");
    assert!(message.contains("memory:m1#v1 rejected"), "{message}");
}

#[test]
fn a_share_moved_into_another_policy_does_not_unwrap() {
    // The same members under 2 of 3 and 3 of 3: shares are bound to m and n as well.
    let all = members("m", 3);
    let two = everyone(2, &all);
    let three = everyone(3, &all);
    let (_, body) = wrap(&three);
    let mut relabelled = body.clone();
    relabelled[1] = 2;
    let message = refusal(&two, &relabelled);
    // The header passes; each member refuses its share because the AAD names 2 of 3.
    assert!(message.contains("0 opened; 2 more needed"), "{message}");
    assert!(message.contains("memory:m0#v1 rejected"), "{message}");
}

#[test]
fn every_changed_byte_of_the_body_is_refused() {
    let all = members("m", 3);
    let kek = everyone(2, &all);
    let (dek, body) = wrap(&kek);
    let pairs: Vec<ThresholdKek> = subsets(3, 2)
        .iter()
        .map(|s| threshold(2, &all, s))
        .collect();
    for at in 0..body.len() {
        for mask in [0x01u8, 0x80] {
            let mut changed = body.clone();
            changed[at] ^= mask;
            for reader in pairs.iter().chain([&kek]) {
                match reader.unwrap(&stanza(reader, &changed), AAD) {
                    Some(Err(_)) => {}
                    None => panic!("byte {at}: not mine"),
                    Some(Ok(back)) => panic!(
                        "byte {at} xor {mask:#04x} opened (the right DEK: {})",
                        back.expose_secret() == dek.expose_secret()
                    ),
                }
            }
        }
    }
}

#[test]
fn another_policy_says_not_mine() {
    let all = members("m", 3);
    let kek = everyone(2, &all);
    let (_, body) = wrap(&kek);
    let others = [
        everyone(3, &all),
        everyone(2, &members("x", 3)),
        everyone(2, &[all[1].clone(), all[0].clone(), all[2].clone()]),
        everyone(
            2,
            &all[..2]
                .iter()
                .cloned()
                .chain(members("y", 1))
                .collect::<Vec<_>>(),
        ),
    ];
    for other in &others {
        assert_ne!(other.id(), kek.id());
        assert!(
            other.unwrap(&stanza(&kek, &body), AAD).is_none(),
            "{other:?}"
        );
    }
    // The same policy built again is the same KEK.
    assert_eq!(threshold(2, &all, &[1]).id(), kek.id());
}

#[test]
fn the_id_names_the_policy() {
    let all = members("m", 3);
    let id = everyone(2, &all).id().clone();
    assert_eq!(id.kind(), "threshold");
    assert_eq!(id.version(), 1);
    let (policy, hash) = id.label().split_once('-').expect("m of n - hash");
    assert_eq!(policy, "2of3");
    assert_eq!(hash.len(), 16);
    assert!(
        hash.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
}

#[test]
fn construction_refuses_bad_policies_and_strangers() {
    let all = members("m", 3);
    let new = |m, ids, available| ThresholdKek::new(m, ids, available).expect_err("refused");
    for (m, n) in [
        (1, 3),
        (0, 3),
        (4, 3),
        (2, 1),
        (2, MAX_THRESHOLD_MEMBERS + 1),
    ] {
        let many = members("n", n);
        assert!(
            matches!(new(m, ids(&many), vec![]), Error::ThresholdPolicy { .. }),
            "{m} of {n}"
        );
    }
    let twice = vec![
        all[0].id().clone(),
        all[1].id().clone(),
        all[0].id().clone(),
    ];
    let err = new(2, twice, vec![]);
    assert!(
        matches!(err, Error::ThresholdDuplicateMember { .. }),
        "{err:?}"
    );
    let stranger = members("s", 1).remove(0);
    let err = new(2, ids(&all), vec![stranger]);
    assert!(matches!(err, Error::ThresholdNotAMember { .. }), "{err}");
    assert!(err.to_string().contains("memory:s0#v1"), "{err}");
    let err = new(2, ids(&all), vec![all[1].clone(), all[1].clone()]);
    assert!(
        matches!(err, Error::ThresholdMemberGivenTwice { .. }),
        "{err:?}"
    );
}

#[test]
fn up_to_sixteen_members_with_the_longest_ids_fit_a_stanza() {
    let kind = "k".repeat(32);
    for n in 2..=MAX_THRESHOLD_MEMBERS {
        let all: Vec<Arc<dyn KekProvider>> = (0..n)
            .map(|k| {
                let label = format!("{k:02}{}", "l".repeat(253));
                let id = KekId::new(&kind, &label, u32::MAX).expect("id");
                Arc::new(SoftwareKek::new(id, Dek::generate().expect("key"))) as _
            })
            .collect();
        let kek = everyone(2, &all);
        let (dek, body) = wrap(&kek);
        assert!(body.len() <= envelope::MAX_BODY_LEN, "{n}: {}", body.len());
        assert_opens(&threshold(2, &all, &[n - 2, n - 1]), &body, &dek);
        let ctx = Context::new("global", "threshold/big", 1);
        let kek: Arc<dyn KekProvider> = Arc::new(kek);
        let sealed = envelope::seal(b"s", &ctx, std::slice::from_ref(&kek)).expect("seal");
        assert_eq!(
            envelope::open(&sealed, &ctx, &[kek])
                .expect("open")
                .expose_secret(),
            b"s"
        );
    }
}

#[test]
fn sealed_envelopes_open_with_the_threshold_or_the_recovery_kek() {
    let all = members("m", 3);
    let recovery: Arc<dyn KekProvider> = Arc::new(SoftwareKek::random("recovery").expect("kek"));
    let ctx = Context::new("global", "threshold/e2e", 4);
    let secret = b"database password";
    let kek = |available: &[usize]| Arc::new(threshold(2, &all, available)) as Arc<dyn KekProvider>;
    let sealed = envelope::seal(secret, &ctx, &[kek(&[0, 1, 2]), recovery.clone()]).expect("seal");

    for keks in [
        vec![recovery.clone()],
        vec![kek(&[0, 2])],
        vec![kek(&[1]), recovery.clone()],
        vec![kek(&[]), recovery.clone()],
    ] {
        let opened = envelope::open(&sealed, &ctx, &keks).expect("open");
        assert_eq!(opened.expose_secret(), secret);
    }
    let err = envelope::open(&sealed, &ctx, &[kek(&[2])]).expect_err("one member");
    assert!(err.to_string().contains("1 more"), "{err}");
    let moved = Context::new("global", "threshold/other", 4);
    assert!(envelope::open(&sealed, &moved, &[kek(&[0, 1])]).is_err());
    assert!(envelope::seal(secret, &ctx, &[kek(&[0, 1]), recovery]).is_err());
}

#[test]
fn health_counts_usable_members_and_assurance_is_conservative() {
    let all = members("m", 3);
    assert_eq!(threshold(2, &all, &[0, 2]).health(), Health::Ok);
    match threshold(2, &all, &[1]).health() {
        Health::Unreachable(message) => {
            assert!(
                message.contains("1 of 3 member KEKs are usable and 2 are needed"),
                "{message}"
            );
            assert!(message.contains("memory:m0#v1"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let software = envelope::Assurance::default();
    assert_eq!(everyone(2, &all).assurance(), software);
    assert_eq!(threshold(2, &all, &[0]).assurance(), software);
}

#[test]
fn debug_shows_the_policy_and_no_key() {
    let key = Dek::generate().expect("key");
    let hex: String = key
        .expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let member = SoftwareKek::new(KekId::new("memory", "k", 1).expect("id"), key);
    let mut all = members("m", 2);
    all.push(Arc::new(member));
    let kek = everyone(2, &all);
    let debug = format!("{kek:?} {kek:#?}");
    assert!(
        debug.contains("memory:k#v1") && debug.contains("m: 2"),
        "{debug}"
    );
    assert!(
        !debug.contains(&hex) && !debug.contains("REDACTED"),
        "{debug}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let all = members("m", 3);
        let kek = everyone(2, &all);
        prop_assert!(matches!(kek.unwrap(&stanza(&kek, &body), AAD), Some(Err(_))));
    }

    #[test]
    fn mutated_bodies_never_panic_nor_open(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let all = members("m", 3);
        let kek = everyone(2, &all);
        let (_, mut body) = wrap(&kek);
        let original = body.clone();
        for (at, value) in edits {
            let at = at % body.len();
            body[at] = value;
        }
        body.truncate(body.len() - cut % 4);
        let result = kek.unwrap(&stanza(&kek, &body), AAD).expect("mine");
        prop_assert_eq!(result.is_ok(), body == original);
    }
}

#[test]
fn in_memory_members_keep_the_group_in_process() {
    let all = members("m", 3);
    assert!(everyone(2, &all).computes_in_process());
    assert!(threshold(2, &all, &[0, 2]).computes_in_process());
}
