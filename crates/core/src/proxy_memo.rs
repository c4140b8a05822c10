//! A per-thread memo of decoded certificate headers.
//!
//! A proxy sends the same certificate header on every request of a client, and decoding it
//! (percent-decoding, base64, SHA-256 of the DER) is most of what a full-certificate verify
//! costs. Each worker thread keeps what it decoded recently, keyed by the exact bytes of
//! every identity header present, so a hit is the same answer [`proxy::read_headers`]
//! would give for those bytes. Only successful decodes of a whole certificate are kept:
//! fingerprints are cheap to read, and a refusal is not worth memory. Trust is never
//! memoised here: the decision is made afresh on every call.
//!
//! A value is kept the second time it is decoded, not the first: in front of a fleet much
//! larger than the memo, most certificates are not seen again before the memo starts over,
//! and copying each of them in, only to free it unread, cost more than the memo saved.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use crate::domain::verify::{Presented, Rejection};
use crate::proxy::{self, IdentityHeader, IdentityHeaders};

/// Bounds per worker thread; when either is reached the memo starts over.
const MAX_ENTRIES: usize = 4096;
const MAX_KEY_BYTES: usize = 4 * 1024 * 1024;

/// `proxy::read_headers` over the identity header values present (in the order of
/// [`IdentityHeaders::enabled`]), answered from this thread's memo when the same values
/// were decoded before.
pub fn read_headers(
    enabled: IdentityHeaders,
    present: &[(IdentityHeader, &[u8])],
) -> Result<Option<Presented>, Rejection> {
    let decode = || proxy::read_headers(enabled, present);
    if !present
        .iter()
        .any(|(header, _)| header.carries_certificate())
    {
        return decode();
    }
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        let hash = memo.hash(present);
        if let Some(presented) = memo.get(hash, present) {
            return Ok(Some(presented.clone()));
        }
        let decoded = decode()?;
        if let Some(presented) = &decoded
            && presented.certificate.is_some()
            && memo.seen_before(hash)
        {
            memo.insert(hash, present, presented.clone());
        }
        Ok(decoded)
    })
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

struct Entry {
    values: Vec<(IdentityHeader, Box<[u8]>)>,
    presented: Presented,
}

impl Entry {
    fn matches(&self, present: &[(IdentityHeader, &[u8])]) -> bool {
        self.values.len() == present.len()
            && self
                .values
                .iter()
                .zip(present)
                .all(|((h1, v1), (h2, v2))| h1 == h2 && **v1 == **v2)
    }
}

/// Keys are already hashes: the map must not hash them again.
#[derive(Default)]
struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

#[derive(Default)]
struct Memo {
    /// One entry per hash: a colliding newcomer replaces the old entry, and a lookup
    /// compares the bytes, so a collision can only cost a decode, never give a wrong answer.
    entries: HashMap<u64, Entry, BuildHasherDefault<PrehashedKey>>,
    key_bytes: usize,
    /// Hashes of values decoded once and not kept yet; a collision only keeps a value early.
    decoded_once: HashSet<u64, BuildHasherDefault<PrehashedKey>>,
    /// Randomly seeded per thread, so nobody can aim requests at one slot.
    seed: foldhash::fast::RandomState,
}

impl Memo {
    fn hash(&self, present: &[(IdentityHeader, &[u8])]) -> u64 {
        let mut hasher = self.seed.build_hasher();
        for (header, value) in present {
            hasher.write_usize(header.index());
            hasher.write_usize(value.len());
            hasher.write(value);
        }
        hasher.finish()
    }

    /// True when a value with this hash was decoded before (and forgets it); otherwise
    /// remembers the hash for next time.
    fn seen_before(&mut self, hash: u64) -> bool {
        if self.decoded_once.remove(&hash) {
            return true;
        }
        if self.decoded_once.len() >= MAX_ENTRIES {
            self.decoded_once.clear();
        }
        self.decoded_once.insert(hash);
        false
    }

    fn get(&self, hash: u64, present: &[(IdentityHeader, &[u8])]) -> Option<&Presented> {
        self.entries
            .get(&hash)
            .filter(|entry| entry.matches(present))
            .map(|entry| &entry.presented)
    }

    fn insert(&mut self, hash: u64, present: &[(IdentityHeader, &[u8])], presented: Presented) {
        let bytes: usize = present.iter().map(|(_, value)| value.len()).sum();
        if self.entries.len() >= MAX_ENTRIES || self.key_bytes + bytes > MAX_KEY_BYTES {
            self.entries.clear();
            self.key_bytes = 0;
        }
        let values = present
            .iter()
            .map(|(header, value)| (*header, Box::from(*value)))
            .collect();
        if let Some(old) = self.entries.insert(hash, Entry { values, presented }) {
            self.key_bytes -= old.values.iter().map(|(_, v)| v.len()).sum::<usize>();
        }
        self.key_bytes += bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped_pem(hostname: &str) -> (String, crate::domain::Fingerprint) {
        let cert = rcgen::generate_simple_self_signed(vec![hostname.to_owned()])
            .expect("certificate")
            .cert;
        let escaped = cert
            .pem()
            .replace('/', "%2F")
            .replace('+', "%2B")
            .replace('=', "%3D")
            .replace(' ', "%20")
            .replace('\n', "%0A");
        (escaped, crate::domain::Fingerprint::of_der(cert.der()))
    }

    fn read(values: &[(IdentityHeader, &str)]) -> Result<Option<Presented>, Rejection> {
        let present: Vec<(IdentityHeader, &[u8])> = values
            .iter()
            .map(|(header, value)| (*header, value.as_bytes()))
            .collect();
        read_headers(IdentityHeaders::all(), &present)
    }

    fn fingerprint(result: Result<Option<Presented>, Rejection>) -> crate::domain::Fingerprint {
        result
            .expect("decoded")
            .and_then(|presented| presented.sha256())
            .expect("a certificate")
    }

    #[test]
    fn a_repeated_header_decodes_to_the_same_certificate() {
        let (first, first_sha256) = escaped_pem("first.example.test");
        let (second, second_sha256) = escaped_pem("second.example.test");
        for _ in 0..3 {
            assert_eq!(
                fingerprint(read(&[(IdentityHeader::ClientCert, &first)])),
                first_sha256
            );
            assert_eq!(
                fingerprint(read(&[(IdentityHeader::ClientCert, &second)])),
                second_sha256
            );
        }
    }

    #[test]
    fn the_key_is_every_identity_header_present() {
        let (cert, _) = escaped_pem("agent.example.test");
        let (_, other_sha256) = escaped_pem("other.example.test");
        assert!(read(&[(IdentityHeader::ClientCert, &cert)]).is_ok());
        // The same certificate with a fingerprint of another one: refused, memo or not.
        let mismatch = other_sha256.to_string();
        for _ in 0..2 {
            assert_eq!(
                read(&[
                    (IdentityHeader::ClientCert, &cert),
                    (IdentityHeader::ClientCertFingerprint, &mismatch),
                ])
                .err(),
                Some(Rejection::FingerprintMismatch)
            );
        }
    }

    #[test]
    fn refusals_are_decided_afresh() {
        let (cert, _) = escaped_pem("agent.example.test");
        let truncated = &cert[..cert.len() / 2];
        for _ in 0..2 {
            assert!(read(&[(IdentityHeader::ClientCert, truncated)]).is_err());
        }
    }

    fn kept_in_this_thread() -> usize {
        MEMO.with(|memo| memo.borrow().entries.len())
    }

    #[test]
    fn a_certificate_is_kept_from_its_second_decode_on() {
        let (cert, sha256) = escaped_pem("agent.example.test");
        assert_eq!(
            fingerprint(read(&[(IdentityHeader::ClientCert, &cert)])),
            sha256
        );
        assert_eq!(kept_in_this_thread(), 0, "kept at the first decode");
        assert_eq!(
            fingerprint(read(&[(IdentityHeader::ClientCert, &cert)])),
            sha256
        );
        assert_eq!(kept_in_this_thread(), 1, "not kept at the second decode");
        assert_eq!(
            fingerprint(read(&[(IdentityHeader::ClientCert, &cert)])),
            sha256
        );
        assert_eq!(kept_in_this_thread(), 1);
    }

    #[test]
    fn what_was_decoded_once_stays_within_its_bound() {
        let mut memo = Memo::default();
        for hash in 0..(MAX_ENTRIES * 2) as u64 {
            assert!(!memo.seen_before(hash));
            assert!(memo.decoded_once.len() <= MAX_ENTRIES);
        }
        let last = (MAX_ENTRIES * 2 - 1) as u64;
        assert!(memo.seen_before(last));
        assert!(!memo.seen_before(last), "forgotten once kept");
    }

    #[test]
    fn the_memo_stays_within_its_bounds() {
        let mut memo = Memo::default();
        let value = vec![b'x'; 1000];
        for n in 0..MAX_ENTRIES * 2 {
            let mut key = value.clone();
            key.extend_from_slice(&n.to_le_bytes());
            let present = [(IdentityHeader::ClientCert, key.as_slice())];
            let hash = memo.hash(&present);
            memo.insert(hash, &present, Presented::default());
            assert!(memo.entries.len() <= MAX_ENTRIES);
            assert!(memo.key_bytes <= MAX_KEY_BYTES);
            assert!(memo.get(hash, &present).is_some());
        }
    }
}
