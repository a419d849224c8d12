//! `tpm2:` KEK URI parsing: defaults, every parameter, canonical round trips, refusals; and
//! the stanza body codec's bounds.

use std::path::PathBuf;

use kek_providers::tpm::{MAX_TPM2_URI_LEN, PcrBank, PcrSelection, SealedBody, Tcti, Tpm2Uri};
use kek_providers::{Error, SecretSource};
use proptest::prelude::*;

fn parse(text: &str) -> Tpm2Uri {
    Tpm2Uri::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn refused(text: &str) -> Error {
    match Tpm2Uri::parse(text) {
        Ok(uri) => panic!("{text} parsed: {uri:?}"),
        Err(e) => e,
    }
}

/// The canonical form parses back to the same URI and is a fixed point.
fn assert_round_trip(text: &str) -> String {
    let uri = parse(text);
    let canonical = uri.to_canonical();
    let again = parse(&canonical);
    assert_eq!(again, uri, "{text} -> {canonical}");
    assert_eq!(again.to_canonical(), canonical);
    canonical
}

#[test]
fn defaults_are_the_resource_manager_device_and_label_tpm() {
    let uri = parse("tpm2:");
    assert_eq!(
        uri.tcti,
        Tcti::Device {
            path: PathBuf::from("/dev/tpmrm0")
        }
    );
    assert_eq!(uri.srk, None);
    assert_eq!(uri.pcrs, None);
    assert!(!uri.encrypt);
    assert_eq!(uri.owner_auth, None);
    assert_eq!(uri.label, "tpm");
    assert_eq!(uri.to_canonical(), "tpm2:tcti=device:/dev/tpmrm0;label=tpm");
    assert_eq!(parse("tpm2:tcti=device"), uri);
}

#[test]
fn the_issue_examples_parse() {
    let uri = parse("tpm2:tcti=device:/dev/tpmrm0");
    assert_eq!(uri.tcti.to_string(), "device:/dev/tpmrm0");
    let uri = parse("tpm2:tcti=swtpm:host=127.0.0.1,port=2321;pcrs=sha256:7,16");
    assert_eq!(
        uri.tcti,
        Tcti::Swtpm {
            host: "127.0.0.1".into(),
            port: 2321
        }
    );
    let pcrs = uri.pcrs.expect("pcrs");
    assert_eq!(pcrs.bank(), PcrBank::Sha256);
    assert_eq!(pcrs.indices(), vec![7, 16]);
    assert_eq!(pcrs.to_string(), "sha256:7,16");
}

#[test]
fn every_parameter_parses_and_comes_back_in_canonical_order() {
    let uri = parse(
        "tpm2:label=boot-kek.1;owner-auth=env:TPM_OWNER;encrypt;pcrs=sha1:16,0,23;srk=0x81000001;tcti=mssim:port=2400,host=TPM.Example.org",
    );
    assert_eq!(uri.srk, Some(0x8100_0001));
    assert!(uri.encrypt);
    assert_eq!(uri.owner_auth, Some(SecretSource::Env("TPM_OWNER".into())));
    assert_eq!(uri.label, "boot-kek.1");
    assert_eq!(
        uri.to_canonical(),
        "tpm2:tcti=mssim:host=tpm.example.org,port=2400;srk=0x81000001;pcrs=sha1:0,16,23;encrypt;owner-auth=env:TPM_OWNER;label=boot-kek.1"
    );
    assert_round_trip(&uri.to_canonical());
}

#[test]
fn tctis_of_every_kind_round_trip() {
    for (text, canonical) in [
        (
            "tpm2:tcti=device:/dev/tpm0",
            "tpm2:tcti=device:/dev/tpm0;label=tpm",
        ),
        (
            "tpm2:tcti=swtpm",
            "tpm2:tcti=swtpm:host=localhost,port=2321;label=tpm",
        ),
        (
            "tpm2:tcti=swtpm:port=23210",
            "tpm2:tcti=swtpm:host=localhost,port=23210;label=tpm",
        ),
        (
            "tpm2:tcti=mssim:host=::1",
            "tpm2:tcti=mssim:host=::1,port=2321;label=tpm",
        ),
        (
            "tpm2:tcti=tabrmd",
            "tpm2:tcti=tabrmd:bus_name=com.intel.tss2.Tabrmd,bus_type=system;label=tpm",
        ),
        (
            "tpm2:tcti=tabrmd:bus_type=session,bus_name=my.tabrmd_2",
            "tpm2:tcti=tabrmd:bus_name=my.tabrmd_2,bus_type=session;label=tpm",
        ),
        (
            "tpm2:tcti=device:/dev/tpmrm0;owner-auth=file:/etc/vault/owner-auth",
            "tpm2:tcti=device:/dev/tpmrm0;owner-auth=file:/etc/vault/owner-auth;label=tpm",
        ),
    ] {
        assert_eq!(assert_round_trip(text), canonical, "{text}");
    }
    assert!(parse("tpm2:tcti=swtpm").tcti.is_simulator());
    assert!(!parse("tpm2:").tcti.is_simulator());
}

#[test]
fn malformed_uris_are_refused_with_the_parameter_named() {
    let cases: &[(&str, &str)] = &[
        ("tpm:tcti=device", "starts with tpm2:"),
        ("tpm2:;", "empty parameter"),
        ("tpm2:label=a;", "empty parameter"),
        ("tpm2:label=a;;encrypt", "empty parameter"),
        ("tpm2:tctl=device", "unknown tpm2 KEK parameter \"tctl\""),
        ("tpm2:encrypt;encrypt", "encrypt is given twice"),
        ("tpm2:label=a;label=b", "label is given twice"),
        ("tpm2:tcti=device;tcti=device", "tcti is given twice"),
        ("tpm2:encrypt=yes", "takes no value"),
        ("tpm2:label", "needs a value"),
        ("tpm2:label=", "needs a value"),
        ("tpm2:label=a b", "label is invalid"),
        ("tpm2:label=ä", "label is invalid"),
        ("tpm2:tcti=usb", "is not a TCTI"),
        ("tpm2:tcti=device:", "nothing after its colon"),
        ("tpm2:tcti=device:dev/tpm0", "absolute path"),
        ("tpm2:tcti=device:/dev/../etc/passwd", "absolute path"),
        ("tpm2:tcti=device:/dev//tpm0", "absolute path"),
        ("tpm2:tcti=device:/dev/tpm0 ", "absolute path"),
        ("tpm2:tcti=swtpm:port=0", "port must be"),
        ("tpm2:tcti=swtpm:port=65535", "port must be"),
        ("tpm2:tcti=swtpm:port=02321", "port must be"),
        ("tpm2:tcti=swtpm:port=+2321", "port must be"),
        (
            "tpm2:tcti=swtpm:port=2321,port=2322",
            "tcti port is given twice",
        ),
        ("tpm2:tcti=swtpm:host=a,host=b", "tcti host is given twice"),
        ("tpm2:tcti=swtpm:host=", "not an IP address or a host name"),
        (
            "tpm2:tcti=swtpm:host=-bad",
            "not an IP address or a host name",
        ),
        (
            "tpm2:tcti=swtpm:host=a_b",
            "not an IP address or a host name",
        ),
        (
            "tpm2:tcti=swtpm:host=a..b",
            "not an IP address or a host name",
        ),
        ("tpm2:tcti=swtpm:", "nothing after its colon"),
        ("tpm2:tcti=tabrmd:", "nothing after its colon"),
        ("tpm2:tcti=swtpm:host=a,", "is not host=H or port=P"),
        ("tpm2:tcti=swtpm:hostname=a", "is not host=H or port=P"),
        ("tpm2:tcti=tabrmd:bus_name=single", "D-Bus name"),
        ("tpm2:tcti=tabrmd:bus_type=user", "bus_type=system|session"),
        ("tpm2:srk=81000001", "persistent handle"),
        ("tpm2:srk=0X81000001", "persistent handle"),
        ("tpm2:srk=0x8100001", "persistent handle"),
        ("tpm2:srk=0x810000001", "persistent handle"),
        ("tpm2:srk=0x80000000", "persistent handle"),
        ("tpm2:srk=0x81800000", "persistent handle"),
        ("tpm2:srk=0x8100000g", "persistent handle"),
        ("tpm2:pcrs=7", "BANK:INDEX"),
        ("tpm2:pcrs=sha384:7", "is not sha256 or sha1"),
        ("tpm2:pcrs=sha256:", "PCR index"),
        ("tpm2:pcrs=sha256:24", "PCR index"),
        ("tpm2:pcrs=sha256:07", "PCR index"),
        ("tpm2:pcrs=sha256:7,", "PCR index"),
        ("tpm2:pcrs=sha256:-1", "PCR index"),
        ("tpm2:pcrs=sha256:7,7", "listed twice"),
        ("tpm2:pcrs=sha256:7;pcrs=sha1:7", "pcrs is given twice"),
        ("tpm2:owner-auth=secret", "env:NAME or file:"),
        ("tpm2:owner-auth=env:", "variable name"),
        ("tpm2:owner-auth=env:A-B", "variable name"),
        ("tpm2:owner-auth=file:relative", "absolute path"),
    ];
    for (text, expected) in cases {
        let message = refused(text).to_string();
        assert!(
            message.contains(expected),
            "{text}: {message:?} does not say {expected:?}"
        );
    }
}

#[test]
fn the_length_is_bounded() {
    let label = "a".repeat(64);
    let base = format!("tpm2:label={label};tcti=device:/");
    let path = "p/".repeat((MAX_TPM2_URI_LEN - base.len()) / 2);
    let long = format!("{base}{}", path.trim_end_matches('/'));
    assert!(long.len() <= MAX_TPM2_URI_LEN);
    // A path over 255 bytes is refused before the URI bound.
    assert!(matches!(
        refused(&long),
        Error::InvalidParameter { name: "tcti", .. }
    ));
    let too_long = format!("tpm2:label={}", "a".repeat(MAX_TPM2_URI_LEN));
    assert!(matches!(refused(&too_long), Error::UriTooLong { .. }));
    assert!(matches!(
        refused(&format!("tpm2:label={}", "a".repeat(65))),
        Error::InvalidParameter { name: "label", .. }
    ));
}

#[test]
fn pcr_selections_are_bounded() {
    assert_eq!(PcrSelection::new(PcrBank::Sha256, 0), None);
    assert_eq!(PcrSelection::new(PcrBank::Sha256, 1 << 24), None);
    let all = PcrSelection::new(PcrBank::Sha256, 0x00ff_ffff).expect("all 24");
    assert_eq!(all.indices().len(), 24);
    let text = format!("tpm2:pcrs={all}");
    assert_eq!(parse(&text).pcrs, Some(all));
}

#[test]
fn the_registry_parses_tpm2_uris_in_every_build() {
    let result = kek_providers::check_uri("tpm2:tcti=swtpm:port=2321;pcrs=sha256:16");
    if cfg!(feature = "tpm") {
        result.expect("tpm feature: a well-formed URI checks");
    } else {
        assert!(matches!(
            result,
            Err(Error::FeatureNotBuilt {
                kind: "tpm2",
                feature: "tpm"
            })
        ));
    }
    // A malformed URI is reported as such with or without the provider.
    assert!(matches!(
        kek_providers::check_uri("tpm2:pcrs=sha256:99"),
        Err(Error::InvalidParameter { name: "pcrs", .. })
    ));
}

fn body(pcrs: Option<PcrSelection>) -> Vec<u8> {
    SealedBody {
        srk_name: &[0, 0x0b, 0xaa, 0xbb],
        pcrs,
        public: &[1; 46],
        private: &[2; 190],
    }
    .encode()
    .expect("bounded")
}

#[test]
fn stanza_bodies_round_trip_and_refuse_truncation_and_extension() {
    let pcrs = PcrSelection::new(PcrBank::Sha256, (1 << 7) | (1 << 16));
    for pcrs in [None, pcrs] {
        let encoded = body(pcrs);
        let parsed = SealedBody::parse(&encoded).expect("parses");
        assert_eq!(parsed.pcrs, pcrs);
        assert_eq!(parsed.srk_name, &[0, 0x0b, 0xaa, 0xbb]);
        assert_eq!(parsed.encode().expect("bounded"), encoded);
        for len in 0..encoded.len() {
            assert!(
                SealedBody::parse(&encoded[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut longer = encoded.clone();
        longer.push(0);
        assert!(SealedBody::parse(&longer).is_err());
    }
}

#[test]
fn stanza_body_parts_are_bounded() {
    let name = [0u8; 67];
    let big = [0u8; 1025];
    for (srk_name, public, private) in [
        (&name[..], &[1u8][..], &[1u8][..]),
        (&name[..2], &[1u8][..], &[1u8][..]),
        (&name[..34], &big[..513], &[1u8][..]),
        (&name[..34], &[][..], &[1u8][..]),
        (&name[..34], &[1u8][..], &big[..]),
        (&name[..34], &[1u8][..], &[][..]),
    ] {
        let body = SealedBody {
            srk_name,
            pcrs: None,
            public,
            private,
        };
        assert_eq!(body.encode(), None, "{body:?}");
    }
    // The largest parts still fit.
    let body = SealedBody {
        srk_name: &name[..66],
        pcrs: None,
        public: &big[..512],
        private: &big[..1024],
    };
    let encoded = body.encode().expect("bounded");
    assert_eq!(SealedBody::parse(&encoded), Ok(body));
}

proptest! {
    #[test]
    fn parsing_never_panics_and_accepted_uris_round_trip(text in "tpm2:[a-z0-9=:;,./_-]{0,80}") {
        if let Ok(uri) = Tpm2Uri::parse(&text) {
            let canonical = uri.to_canonical();
            prop_assert_eq!(Tpm2Uri::parse(&canonical).expect("canonical parses"), uri);
        }
    }

    #[test]
    fn body_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(parsed) = SealedBody::parse(&bytes) {
            prop_assert_eq!(parsed.encode().expect("bounded"), bytes);
        }
    }
}
