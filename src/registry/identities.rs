//! Certificates stored before certgate recorded their issuer and serial number get them at
//! start, before the trust index is read: verify recognises a certificate's other encodings
//! by them. Agents an older certgate enrolled twice under one identity (another encoding, an
//! ECDSA twin, auto-enrolled) are named, so an operator can revoke the extra ones.

use crate::store::{Store, StoreError};
use crate::x509;

/// Fills in the identity of every certificate stored without one; logs how many.
pub async fn record_missing_identities(store: &dyn Store) -> Result<(), StoreError> {
    let of_certificate = |pem: &str| {
        let der = x509::pem_certificates(pem).ok()?.into_iter().next()?;
        x509::issuer_serial(&der)
    };
    let under_ca = |ca_pem: &str, serial: &str| {
        let der = x509::pem_certificates(ca_pem).ok()?.into_iter().next()?;
        x509::issuer_serial_under(&der, serial)
    };
    let filled = store.fill_identities(&of_certificate, &under_ca).await?;
    if filled > 0 {
        tracing::info!(
            certificates = filled,
            "recorded the issuer and serial number of certificates stored by an older certgate"
        );
    }
    for agents in store.shared_identities().await? {
        let agents: Vec<String> = agents.iter().map(ToString::to_string).collect();
        tracing::warn!(
            agents = agents.join(","),
            "these agents hold one certificate in different encodings (enrolled before \
             certgate compared issuers and serial numbers): keep one, revoke the others"
        );
    }
    Ok(())
}
