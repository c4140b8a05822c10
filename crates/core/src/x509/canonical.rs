//! Whether certificate bytes are DER, the one encoding X.509 allows.
//!
//! A lenient parser accepts many encodings of one certificate (long-form lengths, BER
//! indefinite lengths, padded integers, an explicit `critical FALSE`), and each has its own
//! fingerprint. RustCrypto's `der` reader enforces the encoding rules of every element it
//! decodes (minimal definite lengths, canonical BOOLEAN, INTEGER, BIT STRING and times, no
//! unknown or high-number tags); this module walks every element with it and adds the rules
//! that need X.509's shape: fields whose DEFAULT value must be left out, the sorted order of
//! a SET OF, extension values, which are DER inside an OCTET STRING, and each extension at
//! most once (RFC 5280 §4.2).
//!
//! One departure is tolerated, as rustls-webpki and mozilla::pkix tolerate it: an explicit
//! `cA FALSE` inside basicConstraints, which CAs in use write (rcgen among them). It cannot
//! make one certificate into two: the CA signed those bytes.

use der::asn1::{
    AnyRef, BitStringRef, BmpString, GeneralizedTime, Ia5StringRef, IntRef, Null, ObjectIdentifier,
    PrintableStringRef, TeletexStringRef, UtcTime, Utf8StringRef, VideotexStringRef,
};
use der::{Decode, ErrorKind, Reader, SliceReader, Tag, TagNumber, Tagged};

/// Deeper than any certificate nests; bounds recursion on hostile input.
const MAX_DEPTH: usize = 20;

/// True when `bytes` are exactly one certificate in DER.
pub fn is_der_certificate(bytes: &[u8]) -> bool {
    certificate(bytes).is_ok()
}

fn certificate(bytes: &[u8]) -> der::Result<()> {
    let certificate = AnyRef::from_der(bytes)?;
    element(certificate, 0)?;
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    let mut outer = SliceReader::new(certificate.value())?;
    let tbs = AnyRef::decode(&mut outer)?;
    let mut fields = SliceReader::new(tbs.value())?;
    while !fields.is_finished() {
        let field = AnyRef::decode(&mut fields)?;
        if is_context(field.tag(), TagNumber::N0) {
            // version [0] EXPLICIT Version DEFAULT v1: v1 is written by leaving it out.
            let version = AnyRef::from_der(field.value())?.decode_as::<IntRef<'_>>()?;
            if version.as_bytes() == [0] {
                return Err(Tag::Integer.non_canonical_error());
            }
        } else if is_context(field.tag(), TagNumber::N3) {
            extensions(AnyRef::from_der(field.value())?)?;
        }
    }
    Ok(())
}

/// `Extensions ::= SEQUENCE OF Extension`, each `SEQUENCE { extnID, critical BOOLEAN
/// DEFAULT FALSE, extnValue OCTET STRING }` whose value holds one DER element; RFC 5280
/// allows each extension once.
fn extensions(list: AnyRef<'_>) -> der::Result<()> {
    let mut reader = SliceReader::new(list.value())?;
    let mut seen: Vec<ObjectIdentifier> = Vec::new();
    while !reader.is_finished() {
        let extension = AnyRef::decode(&mut reader)?;
        let mut fields = SliceReader::new(extension.value())?;
        let id = ObjectIdentifier::decode(&mut fields)?;
        if seen.contains(&id) {
            return Err(Tag::ObjectIdentifier.value_error());
        }
        seen.push(id);
        let mut value = AnyRef::decode(&mut fields)?;
        if value.tag() == Tag::Boolean {
            if !value.decode_as::<bool>()? {
                return Err(Tag::Boolean.non_canonical_error());
            }
            value = AnyRef::decode(&mut fields)?;
        }
        if value.tag() != Tag::OctetString || !fields.is_finished() {
            return Err(Tag::Sequence.value_error());
        }
        element(AnyRef::from_der(value.value())?, 1)?;
    }
    Ok(())
}

/// Checks one element and, when it is constructed, everything inside it.
fn element(any: AnyRef<'_>, depth: usize) -> der::Result<()> {
    if depth > MAX_DEPTH {
        return Err(ErrorKind::Overflow.into());
    }
    match any.tag() {
        Tag::Sequence => children(any.value(), depth, false),
        Tag::Set => children(any.value(), depth, true),
        Tag::Boolean => any.decode_as::<bool>().map(drop),
        Tag::Integer => any.decode_as::<IntRef<'_>>().map(drop),
        Tag::Enumerated => minimal_integer(any.value()),
        Tag::BitString => bit_string(any),
        Tag::OctetString => Ok(()),
        Tag::Null => any.decode_as::<Null>().map(drop),
        Tag::ObjectIdentifier => any.decode_as::<ObjectIdentifier>().map(drop),
        Tag::UtcTime => any.decode_as::<UtcTime>().map(drop),
        Tag::GeneralizedTime => any.decode_as::<GeneralizedTime>().map(drop),
        Tag::Utf8String => any.decode_as::<Utf8StringRef<'_>>().map(drop),
        Tag::PrintableString => any.decode_as::<PrintableStringRef<'_>>().map(drop),
        Tag::Ia5String => any.decode_as::<Ia5StringRef<'_>>().map(drop),
        Tag::TeletexString => any.decode_as::<TeletexStringRef<'_>>().map(drop),
        Tag::VideotexString => any.decode_as::<VideotexStringRef<'_>>().map(drop),
        Tag::BmpString => any.decode_as::<BmpString>().map(drop),
        Tag::VisibleString => text(any, |b| (0x20..=0x7e).contains(&b)),
        Tag::NumericString => text(any, |b| b.is_ascii_digit() || b == b' '),
        Tag::Application { constructed, .. }
        | Tag::ContextSpecific { constructed, .. }
        | Tag::Private { constructed, .. } => {
            if constructed {
                children(any.value(), depth, false)
            } else {
                // An IMPLICIT primitive: its content is defined by the field, opaque here.
                Ok(())
            }
        }
        other => Err(other.value_error()),
    }
}

/// The elements inside a constructed value; a SET OF must list them in ascending order of
/// their encodings.
fn children(value: &[u8], depth: usize, sorted: bool) -> der::Result<()> {
    let mut reader = SliceReader::new(value)?;
    let mut previous: Option<&[u8]> = None;
    while !reader.is_finished() {
        let start = usize::try_from(reader.position())?;
        let child = AnyRef::decode(&mut reader)?;
        let end = usize::try_from(reader.position())?;
        let encoding = value.get(start..end).ok_or(ErrorKind::Overflow)?;
        if sorted && previous.is_some_and(|before| before > encoding) {
            return Err(ErrorKind::SetOrdering.into());
        }
        previous = Some(encoding);
        element(child, depth + 1)?;
    }
    Ok(())
}

fn bit_string(any: AnyRef<'_>) -> der::Result<()> {
    let bits = any.decode_as::<BitStringRef<'_>>()?;
    let unused = bits.unused_bits();
    match bits.raw_bytes().last() {
        Some(last) if unused > 0 && last & ((1u8 << unused) - 1) != 0 => {
            Err(Tag::BitString.non_canonical_error())
        }
        _ => Ok(()),
    }
}

fn minimal_integer(bytes: &[u8]) -> der::Result<()> {
    match bytes {
        [] => Err(Tag::Integer.length_error()),
        [0x00, next, ..] if *next < 0x80 => Err(Tag::Integer.non_canonical_error()),
        [0xff, next, ..] if *next >= 0x80 => Err(Tag::Integer.non_canonical_error()),
        _ => Ok(()),
    }
}

fn text(any: AnyRef<'_>, allowed: impl Fn(u8) -> bool) -> der::Result<()> {
    if any.value().iter().all(|b| allowed(*b)) {
        Ok(())
    } else {
        Err(any.tag().value_error())
    }
}

fn is_context(tag: Tag, number: TagNumber) -> bool {
    tag == Tag::ContextSpecific {
        constructed: true,
        number,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der_of(hex: &str) -> Vec<u8> {
        hex::decode(hex.replace(' ', "")).unwrap()
    }

    #[test]
    fn elements_follow_the_encoding_rules() {
        let cases = [
            ("30 03 02 01 05", true, "SEQUENCE { INTEGER 5 }"),
            ("30 81 03 02 01 05", false, "long-form length for 3"),
            ("30 80 02 01 05 00 00", false, "indefinite length"),
            (
                "30 04 02 02 00 05",
                false,
                "INTEGER with a redundant leading zero",
            ),
            (
                "30 04 02 02 00 80",
                true,
                "INTEGER with a needed leading zero",
            ),
            ("30 03 01 01 01", false, "BOOLEAN TRUE as 0x01"),
            ("30 03 01 01 ff", true, "BOOLEAN TRUE as 0xFF"),
            (
                "30 04 03 02 01 01",
                false,
                "BIT STRING with a set padding bit",
            ),
            ("30 04 03 02 01 02", true, "BIT STRING with clear padding"),
            ("30 04 24 02 04 00", false, "constructed OCTET STRING"),
            (
                "30 0f 17 0d 32 36 31 32 30 31 30 30 30 30 5a 00 00",
                false,
                "UTCTime without seconds",
            ),
            (
                "30 0f 17 0d 32 36 31 32 30 31 30 30 30 30 30 30 5a",
                true,
                "UTCTime with seconds",
            ),
            ("31 06 02 01 02 02 01 01", false, "SET OF out of order"),
            ("31 06 02 01 01 02 01 02", true, "SET OF in order"),
            ("30 03 1f 01 00", false, "high tag number form"),
            ("30 04 a0 02 05 00", true, "explicit [0] holding NULL"),
            ("30 02 80 00", true, "implicit primitive [0]"),
        ];
        for (hex, ok, name) in cases {
            let bytes = der_of(hex);
            let outcome = AnyRef::from_der(&bytes).and_then(|any| element(any, 0));
            assert_eq!(outcome.is_ok(), ok, "{name}: {outcome:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        // 40 SEQUENCEs around a NULL: 82 bytes, every length in short form.
        let mut bytes = vec![0x05, 0x00];
        for _ in 0..40 {
            let mut wrapped = vec![0x30, u8::try_from(bytes.len()).unwrap()];
            wrapped.extend_from_slice(&bytes);
            bytes = wrapped;
        }
        assert!(
            AnyRef::from_der(&bytes)
                .and_then(|any| element(any, 0))
                .is_err()
        );
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        for bytes in [
            &b""[..],
            b"\x30",
            b"\x30\x00",
            b"junk",
            b"\x30\x03\x02\x01\x05\x00",
        ] {
            assert!(!is_der_certificate(bytes), "{bytes:?}");
        }
    }
}
