//! External CAs' revocation lists: checked against the CA, kept, and applied to the
//! enrolled agents and to verify.

use time::OffsetDateTime;

use super::{Error, Registry, stored_precision};
use crate::domain::audit::{Action, AuditEvent, Caller, Target};
use crate::domain::{AgentId, CaId};
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
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<(StoredCrl, Vec<AgentId>), Error> {
        let now = stored_precision(now);
        let ca = self.store.ca(ca_id).await?;
        if ca.internal {
            return Err(Error::InternalCaCrl);
        }
        let ca_der = x509::pem_certificates(&ca.certificate_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt("stored CA has no certificate".into()))?;
        let list = x509::revocation_list(input, &ca_der).map_err(Error::CrlRefused)?;
        let crl = StoredCrl {
            pem: pem::encode(&pem::Pem::new("X509 CRL", list.der)).replace("\r\n", "\n"),
            serials: list.serials,
            this_update: list.this_update,
            next_update: list.next_update,
        };
        let event = AuditEvent::new(caller, now, Action::CrlImport, Target::Ca(ca_id))
            .with("listed_serials", crl.serials.len())
            .with("this_update", super::rfc3339(crl.this_update));
        let revoked = match self.store.put_crl(ca_id, &crl, now, &event).await {
            Err(StoreError::Conflict) => return Err(Error::CrlOutdated),
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
