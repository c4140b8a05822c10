//! Cryptography too weak to trust: signatures over SHA-1 or MD5 (collisions can be bought),
//! RSA keys under 2048 bits, elliptic curves under 256 bits, and DSA.

use x509_parser::certificate::X509Certificate;
use x509_parser::public_key::PublicKey;

/// Signature algorithms over MD2, MD4, MD5 or SHA-1, in every registered spelling.
const WEAK_SIGNATURES: [&str; 8] = [
    "1.2.840.113549.1.1.2", // md2WithRSAEncryption
    "1.2.840.113549.1.1.3", // md4WithRSAEncryption
    "1.2.840.113549.1.1.4", // md5WithRSAEncryption
    "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
    "1.3.14.3.2.29",        // sha1WithRSASignature (OIW)
    "1.2.840.10045.4.1",    // ecdsa-with-SHA1
    "1.2.840.10040.4.3",    // dsa-with-sha1
    "1.3.14.3.2.27",        // dsaWithSHA1 (OIW)
];

pub const MIN_RSA_BITS: usize = 2048;
const MIN_EC_BITS: usize = 256;

/// True when the certificate was signed with a broken digest.
pub fn weak_signature(certificate: &X509Certificate<'_>) -> bool {
    let algorithm = certificate.signature_algorithm.algorithm.to_id_string();
    WEAK_SIGNATURES.contains(&algorithm.as_str())
}

/// True when the certificate's own key is too weak (or, being RSA or EC, does not parse).
pub fn weak_key(certificate: &X509Certificate<'_>) -> bool {
    match certificate.public_key().parsed() {
        Ok(PublicKey::RSA(key)) => significant_bits(key.modulus) < MIN_RSA_BITS,
        Ok(PublicKey::EC(point)) => point.key_size() < MIN_EC_BITS,
        Ok(PublicKey::DSA(_)) => true,
        Ok(_) => false,
        Err(_) => true,
    }
}

/// Bits in a big-endian unsigned integer, leading zeros aside.
fn significant_bits(bytes: &[u8]) -> usize {
    let Some(first) = bytes.iter().position(|b| *b != 0) else {
        return 0;
    };
    (bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_ignore_sign_padding() {
        assert_eq!(significant_bits(&[]), 0);
        assert_eq!(significant_bits(&[0, 0]), 0);
        assert_eq!(significant_bits(&[0x01]), 1);
        assert_eq!(significant_bits(&[0x00, 0x80, 0x00]), 16);
        let mut modulus = vec![0x00, 0xc1];
        modulus.extend([0u8; 255]);
        assert_eq!(significant_bits(&modulus), 2048);
        assert_eq!(significant_bits(&modulus[1..129]), 1024);
    }
}
