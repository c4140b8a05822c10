//! External CAs' revocation lists: checked against the CA, kept, and applied to the
//! enrolled agents and to verify.

use time::OffsetDateTime;

use super::{Registry, stored_precision};
use crate::domain::{AgentId, CaId};
use crate::error::ApiError;
use crate::store::{StoreError, StoredCrl};
use crate::x509;

impl Registry {
    /// Takes an external CA's CRL (PEM or DER, signed by that CA): the agents it lists are
    /// revoked, and verify denies its serials from the next call on. Answers the list and
    /// the agents it revoked.
    pub async fn import_crl(
        &self,
        ca_id: CaId,
        input: &[u8],
        now: OffsetDateTime,
    ) -> Result<(StoredCrl, Vec<AgentId>), ApiError> {
        let now = stored_precision(now);
        let ca = self.store.ca(ca_id).await?;
        if ca.internal {
            return Err(ApiError::conflict(
                "internal_ca",
                "certgate keeps the internal CA's revocation list itself (GET B/crl)",
            ));
        }
        let ca_der = x509::pem_certificates(&ca.certificate_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal(&"stored CA has no certificate"))?;
        let list = x509::revocation_list(input, &ca_der).map_err(|error| {
            let code = match error {
                x509::CrlError::Malformed(_) => "invalid_crl",
                x509::CrlError::WrongIssuer => "issuer_mismatch",
                x509::CrlError::BadSignature => "crl_signature_invalid",
            };
            ApiError::bad_request(code, error.to_string())
        })?;
        let crl = StoredCrl {
            pem: pem::encode(&pem::Pem::new("X509 CRL", list.der)).replace("\r\n", "\n"),
            serials: list.serials,
            this_update: list.this_update,
            next_update: list.next_update,
        };
        let revoked = match self.store.put_crl(ca_id, &crl, now).await {
            Err(StoreError::Conflict) => {
                return Err(ApiError::conflict(
                    "crl_outdated",
                    "a newer CRL of this CA is already stored",
                ));
            }
            other => other?,
        };
        self.trust
            .set_revoked_serials(self.store.crl_serials().await?);
        for id in &revoked {
            self.trust.upsert(&self.store.agent(*id).await?);
        }
        Ok((crl, revoked))
    }
}
