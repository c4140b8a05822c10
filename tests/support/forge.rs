//! Certificates rcgen cannot make, for tests of what a strict verifier refuses: weak
//! signatures and keys, encodings DER forbids, and the other valid ECDSA signature of a
//! certificate. Included by the library's unit tests and by the API tests, so it uses only
//! dev-dependencies and nothing of certgate. No key is checked in: all are generated.
//!
//! Each test binary uses a part of it.
#![allow(dead_code)]

use md5::Md5;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, RemoteKeyPair, SignatureAlgorithm,
};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

// ------------------------------------------------------------------ a DER tree

/// One element of a DER encoding, enough to take a certificate apart and put it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Primitive { tag: u8, content: Vec<u8> },
    Constructed { tag: u8, children: Vec<Node> },
}

/// Reads one element (definite lengths only) and what follows it.
pub fn read(bytes: &[u8]) -> (Node, &[u8]) {
    let tag = bytes[0];
    let (length, header) = match bytes[1] {
        short if short < 0x80 => (usize::from(short), 2),
        long => {
            let count = usize::from(long & 0x7f);
            let length = bytes[2..2 + count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (length, 2 + count)
        }
    };
    let (content, rest) = bytes[header..].split_at(length);
    let node = if tag & 0x20 != 0 {
        let mut children = Vec::new();
        let mut inner = content;
        while !inner.is_empty() {
            let (child, after) = read(inner);
            children.push(child);
            inner = after;
        }
        Node::Constructed { tag, children }
    } else {
        Node::Primitive {
            tag,
            content: content.to_vec(),
        }
    };
    (node, rest)
}

pub fn parse(bytes: &[u8]) -> Node {
    let (node, rest) = read(bytes);
    assert!(rest.is_empty(), "one element");
    node
}

/// DER's length octets for `length`.
pub fn length_octets(length: usize) -> Vec<u8> {
    if length < 0x80 {
        return vec![u8::try_from(length).unwrap()];
    }
    let bytes: Vec<u8> = length
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    [vec![0x80 | u8::try_from(bytes.len()).unwrap()], bytes].concat()
}

/// `tag`, its length in DER, `content`.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    [vec![tag], length_octets(content.len()), content.to_vec()].concat()
}

impl Node {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Node::Primitive { tag, content } => tlv(*tag, content),
            Node::Constructed { tag, children } => {
                let content: Vec<u8> = children.iter().flat_map(Node::encode).collect();
                tlv(*tag, &content)
            }
        }
    }

    pub fn tag(&self) -> u8 {
        match self {
            Node::Primitive { tag, .. } | Node::Constructed { tag, .. } => *tag,
        }
    }

    pub fn children_mut(&mut self) -> &mut Vec<Node> {
        match self {
            Node::Constructed { children, .. } => children,
            Node::Primitive { .. } => panic!("not constructed"),
        }
    }

    pub fn children(&self) -> &[Node] {
        match self {
            Node::Constructed { children, .. } => children,
            Node::Primitive { .. } => panic!("not constructed"),
        }
    }

    pub fn content_mut(&mut self) -> &mut Vec<u8> {
        match self {
            Node::Primitive { content, .. } => content,
            Node::Constructed { .. } => panic!("not primitive"),
        }
    }
}

/// The parts of a certificate: TBSCertificate, signatureAlgorithm, signatureValue.
pub struct Parts {
    pub tbs: Node,
    pub algorithm: Node,
    /// The signature's octets (the BIT STRING without its unused-bits octet).
    pub signature: Vec<u8>,
}

pub fn split(certificate: &[u8]) -> Parts {
    let mut top = parse(certificate);
    let mut children = std::mem::take(top.children_mut()).into_iter();
    let tbs = children.next().unwrap();
    let algorithm = children.next().unwrap();
    let Node::Primitive { content, .. } = children.next().unwrap() else {
        panic!("signature is a BIT STRING");
    };
    Parts {
        tbs,
        algorithm,
        signature: content[1..].to_vec(),
    }
}

/// A certificate from the bytes of its TBSCertificate (as signed), its algorithm and its
/// signature.
pub fn assemble(tbs: &[u8], algorithm: &[u8], signature: &[u8]) -> Vec<u8> {
    let bits = tlv(0x03, &[&[0u8][..], signature].concat());
    tlv(0x30, &[tbs, algorithm, &bits].concat())
}

/// The TBSCertificate's fields after the version: serial, signature, issuer, validity,
/// subject, spki, extensions.
pub fn tbs_field(tbs: &mut Node, index: usize) -> &mut Node {
    let children = tbs.children_mut();
    let offset = usize::from(children[0].tag() == 0xa0);
    &mut children[offset + index]
}

pub const SERIAL: usize = 0;
pub const VALIDITY: usize = 3;
pub const SUBJECT: usize = 4;
/// `[3] EXPLICIT Extensions`.
pub const EXTENSIONS: usize = 6;

// ------------------------------------------------------------------ RSA keys for rcgen

/// An RSA key the `rsa` crate holds (ring signs only with 2048-bit keys or more), usable as
/// an rcgen key that signs PKCS#1 v1.5 with SHA-256.
pub struct RsaKey {
    pub key: RsaPrivateKey,
    public: Vec<u8>,
}

impl RsaKey {
    pub fn generate(bits: usize) -> Self {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), bits).unwrap();
        let public = key
            .to_public_key()
            .to_pkcs1_der()
            .unwrap()
            .as_bytes()
            .to_vec();
        Self { key, public }
    }

    /// PKCS#1 v1.5 over `digest` of `message`, with that digest's DigestInfo prefix.
    pub fn sign(&self, digest: WeakOr, message: &[u8]) -> Vec<u8> {
        let (prefix, hashed): (&[u8], Vec<u8>) = match digest {
            WeakOr::Sha256 => (SHA256_INFO, Sha256::digest(message).to_vec()),
            WeakOr::Sha1 => (SHA1_INFO, Sha1::digest(message).to_vec()),
            WeakOr::Md5 => (MD5_INFO, Md5::digest(message).to_vec()),
        };
        let info = [prefix, &hashed].concat();
        self.key
            .sign(Pkcs1v15Sign::new_unprefixed(), &info)
            .unwrap()
    }

    /// An rcgen key over a copy of this one.
    pub fn key_pair(&self) -> KeyPair {
        KeyPair::from_remote(Box::new(RsaKey {
            key: self.key.clone(),
            public: self.public.clone(),
        }))
        .unwrap()
    }
}

impl RemoteKeyPair for RsaKey {
    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(RsaKey::sign(self, WeakOr::Sha256, message))
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

/// The digest a signature is made over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeakOr {
    Sha256,
    Sha1,
    Md5,
}

const SHA256_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const SHA1_INFO: &[u8] = &[
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];
const MD5_INFO: &[u8] = &[
    0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05, 0x05, 0x00,
    0x04, 0x10,
];

/// The last octet of the sha256WithRSAEncryption OID (1.2.840.113549.1.1.11), and of its
/// SHA-1 (…1.1.5) and MD5 (…1.1.4) siblings: one octet apart, the same length.
const RSA_SHA256_OID: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];

// ------------------------------------------------------------------ an RSA CA

/// An RSA CA whose signatures this module can make over any bytes.
pub struct RsaCa {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
    pub rsa: RsaKey,
}

fn name(params: &mut CertificateParams, cn: &str) {
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "certgate tests");
    params.distinguished_name.push(DnType::CommonName, cn);
}

/// A CA's parameters: CA:TRUE, keyCertSign, valid over `[not_before, not_after]`.
pub fn ca_params(
    cn: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    name(&mut params, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = not_before;
    params.not_after = not_after;
    params
}

/// A clientAuth leaf's parameters, valid over `[not_before, not_after]`.
pub fn leaf_params(
    cn: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    name(&mut params, cn);
    params.subject_alt_names = vec![rcgen::SanType::DnsName(cn.try_into().unwrap())];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    params
}

impl RsaCa {
    /// A self-signed RSA root of `bits` bits.
    pub fn root(
        cn: &str,
        bits: usize,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Self {
        let rsa = RsaKey::generate(bits);
        let key = rsa.key_pair();
        let cert = ca_params(cn, not_before, not_after)
            .self_signed(&key)
            .unwrap();
        Self { cert, key, rsa }
    }

    /// An RSA intermediate of `bits` bits below `issuer` (an rcgen CA).
    pub fn under(
        cn: &str,
        bits: usize,
        issuer: (&rcgen::Certificate, &KeyPair),
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Self {
        let rsa = RsaKey::generate(bits);
        let key = rsa.key_pair();
        let cert = ca_params(cn, not_before, not_after)
            .signed_by(&key, issuer.0, issuer.1)
            .unwrap();
        Self { cert, key, rsa }
    }

    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A leaf this CA signs, over a new P-256 key.
    pub fn leaf(&self, params: CertificateParams) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        params
            .signed_by(&key, &self.cert, &self.key)
            .unwrap()
            .der()
            .to_vec()
    }

    /// `certificate` (signed by this CA with SHA-256) signed again over `digest`, its two
    /// algorithm identifiers changed to say so.
    pub fn signed_with(&self, certificate: &[u8], digest: WeakOr) -> Vec<u8> {
        let last = match digest {
            WeakOr::Sha256 => 0x0b,
            WeakOr::Sha1 => 0x05,
            WeakOr::Md5 => 0x04,
        };
        let mut parts = split(certificate);
        let retarget = |node: &mut Node| {
            let oid = node.children_mut()[0].content_mut();
            assert_eq!(oid.as_slice(), RSA_SHA256_OID, "signed with sha256WithRSA");
            oid[8] = last;
        };
        retarget(tbs_field(&mut parts.tbs, 1));
        retarget(&mut parts.algorithm);
        let tbs = parts.tbs.encode();
        let signature = self.rsa.sign(digest, &tbs);
        assemble(&tbs, &parts.algorithm.encode(), &signature)
    }

    /// `certificate` with its TBSCertificate changed by `change` (the bytes it returns are
    /// what is signed), signed again with SHA-256: a certificate this CA did issue.
    pub fn resigned(
        &self,
        certificate: &[u8],
        change: impl FnOnce(&mut Node) -> Vec<u8>,
    ) -> Vec<u8> {
        let mut parts = split(certificate);
        let tbs = change(&mut parts.tbs);
        let signature = self.rsa.sign(WeakOr::Sha256, &tbs);
        assemble(&tbs, &parts.algorithm.encode(), &signature)
    }
}

// ------------------------------------------------------------------ encodings DER forbids

/// Ways to write a valid certificate that DER does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonDer {
    /// The outer SEQUENCE's length with a redundant leading zero octet (signature intact).
    OuterLengthPadded,
    /// BER's indefinite length on the outer SEQUENCE (signature intact).
    OuterIndefinite,
    /// The signature BIT STRING's length in a longer form than needed (signature intact).
    SignatureLengthPadded,
    /// The outer signatureAlgorithm's length in long form (signature intact; it no longer
    /// matches the TBSCertificate's copy byte for byte).
    AlgorithmLengthPadded,
    /// The serial number with a redundant leading zero (re-signed).
    SerialPadded,
    /// An extension's `critical` written out as FALSE, its DEFAULT (re-signed).
    CriticalFalseWritten,
    /// A BOOLEAN TRUE written as 0x01 instead of 0xFF (re-signed).
    TrueAsOne,
    /// The validity SEQUENCE's length in long form (re-signed).
    InnerLengthLong,
    /// notBefore as a UTCTime without seconds (re-signed).
    TimeWithoutSeconds,
    /// A multi-valued RDN whose SET OF is out of order (re-signed).
    SetOutOfOrder,
}

impl NonDer {
    pub const ALL: [NonDer; 10] = [
        NonDer::OuterLengthPadded,
        NonDer::OuterIndefinite,
        NonDer::SignatureLengthPadded,
        NonDer::AlgorithmLengthPadded,
        NonDer::SerialPadded,
        NonDer::CriticalFalseWritten,
        NonDer::TrueAsOne,
        NonDer::InnerLengthLong,
        NonDer::TimeWithoutSeconds,
        NonDer::SetOutOfOrder,
    ];

    /// Whether the issuer must sign again (the change is inside the TBSCertificate).
    pub fn needs_signing(self) -> bool {
        !matches!(
            self,
            NonDer::OuterLengthPadded
                | NonDer::OuterIndefinite
                | NonDer::SignatureLengthPadded
                | NonDer::AlgorithmLengthPadded
        )
    }
}

/// `certificate` written the `way` DER forbids. Changes inside the TBSCertificate are
/// signed again by `ca`; outer ones keep the signature.
pub fn non_der(certificate: &[u8], way: NonDer, ca: Option<&RsaCa>) -> Vec<u8> {
    match way {
        NonDer::OuterLengthPadded => {
            let (_, content) = outer(certificate);
            [vec![0x30], padded_length(content.len()), content.to_vec()].concat()
        }
        NonDer::OuterIndefinite => {
            let (_, content) = outer(certificate);
            [&[0x30, 0x80][..], content, &[0, 0]].concat()
        }
        NonDer::SignatureLengthPadded => {
            let parts = split(certificate);
            let bits = [&[0u8][..], &parts.signature].concat();
            let signature = [vec![0x03], padded_length(bits.len()), bits].concat();
            let content = [parts.tbs.encode(), parts.algorithm.encode(), signature].concat();
            tlv(0x30, &content)
        }
        NonDer::AlgorithmLengthPadded => {
            let parts = split(certificate);
            let algorithm = parts.algorithm.encode();
            let content = &algorithm[2..];
            assert!(algorithm[1] < 0x80, "a short signatureAlgorithm");
            let padded = [vec![0x30], padded_length(content.len()), content.to_vec()].concat();
            let bits = tlv(0x03, &[&[0u8][..], &parts.signature].concat());
            tlv(0x30, &[parts.tbs.encode(), padded, bits].concat())
        }
        other => {
            let ca = ca.expect("a change inside the TBSCertificate needs its CA");
            ca.resigned(certificate, |tbs| change_tbs(tbs, other))
        }
    }
}

/// Length octets for `length` with one octet more than DER's.
fn padded_length(length: usize) -> Vec<u8> {
    let minimal = length_octets(length);
    if minimal.len() == 1 {
        return vec![0x81, minimal[0]];
    }
    [vec![minimal[0] + 1, 0x00], minimal[1..].to_vec()].concat()
}

fn outer(certificate: &[u8]) -> (&[u8], &[u8]) {
    let header = match certificate[1] {
        short if short < 0x80 => 2,
        long => 2 + usize::from(long & 0x7f),
    };
    certificate.split_at(header)
}

/// Changes the TBSCertificate and returns its bytes as they are to be signed.
fn change_tbs(tbs: &mut Node, way: NonDer) -> Vec<u8> {
    match way {
        NonDer::SerialPadded => {
            let serial = tbs_field(tbs, SERIAL).content_mut();
            serial.insert(0, 0x00);
            if serial[1] >= 0x80 {
                serial.insert(0, 0x00);
            }
            tbs.encode()
        }
        NonDer::CriticalFalseWritten => {
            let extension = extensions(tbs)
                .iter_mut()
                .find(|ext| ext.children().len() == 2)
                .expect("a non-critical extension");
            extension.children_mut().insert(
                1,
                Node::Primitive {
                    tag: 0x01,
                    content: vec![0x00],
                },
            );
            tbs.encode()
        }
        NonDer::TrueAsOne => {
            let extension = extensions(tbs)
                .iter_mut()
                .find(|ext| ext.children().len() == 3)
                .expect("a critical extension");
            *extension.children_mut()[1].content_mut() = vec![0x01];
            tbs.encode()
        }
        NonDer::InnerLengthLong => {
            let validity = tbs_field(tbs, VALIDITY).encode();
            assert!(validity[1] < 0x80);
            let long = [&[0x30, 0x81][..], &validity[1..]].concat();
            let children = tbs.children();
            let offset = usize::from(children[0].tag() == 0xa0);
            let content: Vec<u8> = children
                .iter()
                .enumerate()
                .flat_map(|(i, child)| {
                    if i == offset + VALIDITY {
                        long.clone()
                    } else {
                        child.encode()
                    }
                })
                .collect();
            tlv(0x30, &content)
        }
        NonDer::TimeWithoutSeconds => {
            let validity = tbs_field(tbs, VALIDITY);
            let not_before = validity.children_mut()[0].content_mut();
            assert_eq!(not_before.len(), 13, "a UTCTime with seconds");
            not_before.drain(10..12);
            tbs.encode()
        }
        NonDer::SetOutOfOrder => {
            // Subject: SEQUENCE OF SET { AttributeTypeAndValue }; merge the first two sets
            // into one, larger element first.
            let subject = tbs_field(tbs, SUBJECT).children_mut();
            let second = subject.remove(1);
            let mut members = subject[0].children().to_vec();
            members.extend(second.children().iter().cloned());
            members.sort_by_key(|member| std::cmp::Reverse(member.encode()));
            *subject[0].children_mut() = members;
            tbs.encode()
        }
        outer => panic!("{outer:?} is not a change inside the TBSCertificate"),
    }
}

fn extensions(tbs: &mut Node) -> &mut Vec<Node> {
    let explicit = tbs_field(tbs, EXTENSIONS);
    assert_eq!(explicit.tag(), 0xa3);
    explicit.children_mut()[0].children_mut()
}

// ------------------------------------------------------------------ the ECDSA twin

/// The order of the P-256 group.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The order of the P-384 group.
const P384_ORDER: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// ecdsa-with-SHA256 (1.2.840.10045.4.3.2) and ecdsa-with-SHA384 (…4.3.3): what rcgen signs
/// with over P-256 and P-384.
const ECDSA_SHA256: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const ECDSA_SHA384: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];

/// `certificate` (signed by a P-256 key with SHA-256 or a P-384 key with SHA-384, as rcgen
/// signs) with its signature (r, s) turned into (r, n − s): as valid, another fingerprint,
/// the same TBSCertificate.
pub fn ecdsa_twin(certificate: &[u8]) -> Vec<u8> {
    let mut parts = split(certificate);
    let algorithm = parts.algorithm.children_mut()[0].content_mut().clone();
    let order: &[u8] = match algorithm.as_slice() {
        oid if oid == ECDSA_SHA256 => &P256_ORDER,
        oid if oid == ECDSA_SHA384 => &P384_ORDER,
        other => panic!("not an ECDSA signature rcgen makes: {other:02x?}"),
    };
    let mut signature = parse(&parts.signature);
    let values = signature.children_mut();
    let s = magnitude(values[1].content_mut());
    let twin_s = subtract(order, &s);
    *values[1].content_mut() = minimal_integer(&twin_s);
    assemble(
        &parts.tbs.encode(),
        &parts.algorithm.encode(),
        &signature.encode(),
    )
}

fn magnitude(integer: &[u8]) -> Vec<u8> {
    integer.iter().copied().skip_while(|b| *b == 0).collect()
}

/// `a − b` for big-endian unsigned integers with `a > b`, at `a`'s width.
fn subtract(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut b_padded = vec![0u8; a.len() - b.len()];
    b_padded.extend_from_slice(b);
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let mut digit = i16::from(a[i]) - i16::from(b_padded[i]) - borrow;
        borrow = i16::from(digit < 0);
        if digit < 0 {
            digit += 256;
        }
        out[i] = u8::try_from(digit).unwrap();
    }
    assert_eq!(borrow, 0, "a > b");
    out
}

/// The content octets of a non-negative INTEGER in DER.
fn minimal_integer(value: &[u8]) -> Vec<u8> {
    let mut bytes = magnitude(value);
    if bytes.is_empty() {
        bytes.push(0);
    }
    if bytes[0] >= 0x80 {
        bytes.insert(0, 0);
    }
    bytes
}

// ------------------------------------------------------------------ self-checks

#[cfg(test)]
mod selftest {
    use super::*;

    #[test]
    fn the_tree_round_trips_a_certificate() {
        let key = KeyPair::generate().unwrap();
        let now = OffsetDateTime::now_utc();
        let cert = ca_params("Root", now, now + time::Duration::days(1))
            .self_signed(&key)
            .unwrap();
        assert_eq!(parse(cert.der()).encode(), cert.der().to_vec());
        let parts = split(cert.der());
        assert_eq!(
            assemble(
                &parts.tbs.encode(),
                &parts.algorithm.encode(),
                &parts.signature
            ),
            cert.der().to_vec()
        );
    }

    #[test]
    fn subtraction_and_integers() {
        assert_eq!(subtract(&[1, 0], &[1]), vec![0, 0xff]);
        assert_eq!(subtract(&[0xff, 0xff], &[0x12, 0x34]), vec![0xed, 0xcb]);
        assert_eq!(minimal_integer(&[0, 0, 0x7f]), vec![0x7f]);
        assert_eq!(minimal_integer(&[0x80]), vec![0, 0x80]);
        assert_eq!(length_octets(5), vec![5]);
        assert_eq!(length_octets(300), vec![0x82, 0x01, 0x2c]);
    }
}
