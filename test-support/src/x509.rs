//! Re-encoding a certificate the way its holder can, without the CA's key: an ECDSA
//! signature (r, s) verifies exactly as (r, n - s) does, so [`high_s_copy`] turns a P-256
//! ECDSA-signed certificate into another, equally valid DER encoding of the same
//! certificate (same subject, key, serial and extensions) with a different fingerprint.
//!
//! The DER is walked by hand (a few lines for three nested TLVs) so that the copy is built
//! from the bytes alone, as an attacker would; any surprise is a panic: this is test code.

/// The order n of the P-256 group, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The DER of the AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
const ECDSA_WITH_SHA256: [u8; 12] = [
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;

/// A copy of `cert_der` (an X.509 certificate signed with ECDSA P-256 and SHA-256) whose
/// signature's s is replaced by n - s: the same certificate, other bytes.
pub fn high_s_copy(cert_der: &[u8]) -> Vec<u8> {
    let (tag, certificate, rest) = tlv(cert_der);
    assert!(tag == SEQUENCE && rest.is_empty(), "not a DER certificate");
    let (tbs_tag, _, after_tbs) = tlv(certificate);
    assert_eq!(tbs_tag, SEQUENCE, "no TBSCertificate");
    let tbs_raw = &certificate[..certificate.len() - after_tbs.len()];
    let (_, _, after_alg) = tlv(after_tbs);
    let alg_raw = &after_tbs[..after_tbs.len() - after_alg.len()];
    assert_eq!(
        alg_raw, ECDSA_WITH_SHA256,
        "not signed with ecdsa-with-SHA256"
    );
    let (sig_tag, bits, end) = tlv(after_alg);
    assert!(
        sig_tag == BIT_STRING && end.is_empty(),
        "no signature BIT STRING"
    );
    assert_eq!(
        bits.first(),
        Some(&0),
        "signature BIT STRING with unused bits"
    );
    let (seq_tag, ecdsa_sig, none) = tlv(&bits[1..]);
    assert!(seq_tag == SEQUENCE && none.is_empty(), "no ECDSA-Sig-Value");
    let (r_tag, r, after_r) = tlv(ecdsa_sig);
    let (s_tag, s, none) = tlv(after_r);
    assert!(
        r_tag == INTEGER && s_tag == INTEGER && none.is_empty(),
        "no r and s"
    );

    let high_s = subtract(&P256_ORDER, &magnitude(s));
    let mut sig_value = encode(INTEGER, r);
    sig_value.extend(encode(INTEGER, &integer_content(&high_s)));
    let mut bit_string = vec![0];
    bit_string.extend(encode(SEQUENCE, &sig_value));
    let mut body = tbs_raw.to_vec();
    body.extend_from_slice(alg_raw);
    body.extend(encode(BIT_STRING, &bit_string));
    encode(SEQUENCE, &body)
}

/// The tag, content and the bytes after one DER TLV.
fn tlv(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = input[0];
    let (len, header) = match input[1] {
        short @ 0..=0x7f => (usize::from(short), 2),
        long => {
            let count = usize::from(long & 0x7f);
            let len = input[2..2 + count]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, 2 + count)
        }
    };
    (tag, &input[header..header + len], &input[header + len..])
}

/// One DER TLV with a definite, minimal length.
fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A positive INTEGER's content as 32 big-endian bytes.
fn magnitude(content: &[u8]) -> [u8; 32] {
    let digits: Vec<u8> = content.iter().copied().skip_while(|&b| b == 0).collect();
    assert!(digits.len() <= 32, "s is larger than P-256's order");
    let mut out = [0; 32];
    out[32 - digits.len()..].copy_from_slice(&digits);
    out
}

/// The content of the DER INTEGER for a 32-byte big-endian magnitude: no leading zero
/// bytes, and one 0x00 when the top bit is set (so it stays positive).
fn integer_content(value: &[u8; 32]) -> Vec<u8> {
    let mut digits: Vec<u8> = value.iter().copied().skip_while(|&b| b == 0).collect();
    if digits.first().is_none_or(|&b| b & 0x80 != 0) {
        digits.insert(0, 0);
    }
    digits
}

/// a - b for 32-byte big-endian numbers with a >= b.
fn subtract(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    assert_eq!(borrow, 0, "s is not below P-256's order");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtraction_and_integers() {
        let mut one = [0; 32];
        one[31] = 1;
        let n_minus_1 = subtract(&P256_ORDER, &one);
        assert_eq!(n_minus_1[31], 0x50);
        assert_eq!(subtract(&P256_ORDER, &n_minus_1), one);
        assert_eq!(integer_content(&one), [1]);
        assert_eq!(integer_content(&P256_ORDER)[0], 0);
        assert_eq!(integer_content(&P256_ORDER).len(), 33);
        assert_eq!(magnitude(&[0, 0x80]), {
            let mut m = [0; 32];
            m[31] = 0x80;
            m
        });
    }

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0x1234] {
            let content = vec![7u8; len];
            let encoded = encode(SEQUENCE, &content);
            let (tag, got, rest) = tlv(&encoded);
            assert_eq!((tag, got, rest), (SEQUENCE, content.as_slice(), &[][..]));
        }
    }
}
