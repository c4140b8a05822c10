//! PKCS#12 bundles for clients that want one file (curl `--cert-type P12`, Java, Windows,
//! browsers): the key, the certificate and its CA, encrypted with PBES2 (PBKDF2-HMAC-SHA-256,
//! AES-256-CBC) and an HMAC-SHA-256 MAC, which OpenSSL 3 and current JDKs read without any
//! legacy algorithm.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey,
    PrivateKeyChain,
};
use secrecy::{ExposeSecret, SecretString};

/// PBKDF2 rounds for the key and the MAC: OpenSSL 3's default for `pkcs12 -export`.
const ITERATIONS: u32 = 2048;
/// The name the key is listed under (Java's alias, OpenSSL's friendlyName).
const ALIAS: &str = "certgate-agent";

/// Where to write a bundle and the passphrase that protects it.
pub struct P12Output {
    pub path: PathBuf,
    pub passphrase: SecretString,
}

/// The bundle's bytes: `key_pkcs8_der`, then the certificate and the CA chain of
/// `certificate_pem` and `ca_pem` (leaf first, root last).
pub fn bundle(
    key_pkcs8_der: &[u8],
    certificate_pem: &str,
    ca_pem: Option<&str>,
    passphrase: &SecretString,
) -> anyhow::Result<Vec<u8>> {
    let key = PrivateKey::from_der(key_pkcs8_der)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context(
            "the private key is not PKCS#8 (convert it with `openssl pkcs8 -topk8 -nocrypt`)",
        )?;
    let mut certificates = Vec::new();
    for pem_text in std::iter::once(certificate_pem).chain(ca_pem) {
        for der in crate::x509::pem_certificates(pem_text).context("reading the certificates")? {
            certificates.push(
                Certificate::from_der(&der)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .context("an unreadable certificate")?,
            );
        }
    }
    if certificates.is_empty() {
        bail!("no certificate to bundle");
    }
    let key_id = crate::domain::Fingerprint::of_der(certificates[0].as_der()).to_string();
    let mut store = KeyStore::new();
    store.add_entry(
        ALIAS,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
            key_id.into_bytes(),
            key,
            certificates,
        )),
    );
    store
        .writer(passphrase.expose_secret())
        .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(ITERATIONS)
        .mac_algorithm(MacAlgorithm::HmacSha256)
        .mac_iterations(ITERATIONS)
        .write()
        .map_err(|e| anyhow::anyhow!("writing the PKCS#12 bundle: {e}"))
}

/// A PEM private key file's PKCS#8 bytes.
pub fn pkcs8_from_pem(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let block = pem::parse(&text).with_context(|| format!("{} is not PEM", path.display()))?;
    if block.tag() != "PRIVATE KEY" {
        bail!(
            "{} holds a `{}`, not a PKCS#8 `PRIVATE KEY` (convert it with `openssl pkcs8 -topk8 \
             -nocrypt -in {} -out key.pem`)",
            path.display(),
            block.tag(),
            path.display()
        );
    }
    Ok(block.into_contents())
}

/// The passphrase: the first line of `pass_file`, or typed twice at the terminal.
pub fn passphrase(pass_file: Option<&Path>) -> anyhow::Result<SecretString> {
    let passphrase = match pass_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            text.lines().next().unwrap_or_default().to_owned()
        }
        None => {
            let first = rpassword::prompt_password("PKCS#12 passphrase: ")
                .context("no terminal to ask for the PKCS#12 passphrase: pass --p12-pass-file")?;
            let again = rpassword::prompt_password("again: ")?;
            if first != again {
                bail!("the two passphrases differ");
            }
            first
        }
    };
    if passphrase.is_empty() {
        bail!("the PKCS#12 passphrase is empty");
    }
    Ok(SecretString::from(passphrase))
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair};

    use super::*;

    #[test]
    fn a_bundle_reads_back_with_its_key_and_chain_and_not_without_the_passphrase() {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["agent.test".to_owned()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let passphrase = SecretString::from("correct horse");

        let bytes = bundle(
            &key.serialize_der(),
            &leaf.pem(),
            Some(&ca.pem()),
            &passphrase,
        )
        .unwrap();

        let read = KeyStore::from_pkcs12(
            &bytes,
            "correct horse",
            p12_keystore::Pkcs12ImportPolicy::Raw,
        )
        .unwrap();
        let (_, chain) = read.private_key_chain().unwrap();
        assert_eq!(chain.key().as_der(), key.serialize_der());
        let mut ders: Vec<&[u8]> = read
            .entries()
            .flat_map(|(_, entry)| match entry {
                KeyStoreEntry::PrivateKeyChain(chain) => chain.certs().iter().collect(),
                KeyStoreEntry::Certificate(certificate) => vec![certificate],
                KeyStoreEntry::Secret(_) => vec![],
            })
            .map(Certificate::as_der)
            .collect();
        ders.sort();
        ders.dedup();
        let mut expected = [leaf.der().as_ref(), ca.der().as_ref()];
        expected.sort();
        assert_eq!(ders, expected, "the leaf and its CA");
        assert!(
            KeyStore::from_pkcs12(&bytes, "wrong", p12_keystore::Pkcs12ImportPolicy::Relaxed)
                .is_err()
        );
    }
}
