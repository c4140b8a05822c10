//! Renewal before expiry, and the internal CA's revocation list: an agent moves to a new
//! certificate while the old one keeps working for a grace window; what no longer counts
//! is listed in the CRL.

use time::OffsetDateTime;

use super::internal_ca::Revoked;
use super::{Error, Issuance, Issued, with_certificate};
use crate::domain::agent::SupersededCertificate;
use crate::domain::audit::{Action, AuditEvent, Caller, Target};
use crate::domain::{AgentId, Fingerprint};
use crate::store::StoreError;
use crate::x509;

impl Issuance {
    /// A new certificate for an enrolled agent that proved it holds its current one (the
    /// proxy's identity headers and the verify secret, checked by the route). The old
    /// certificate keeps verifying for the grace window, or until it expires if sooner.
    pub async fn renew(
        &self,
        agent_id: AgentId,
        presented: &Fingerprint,
        csr_pem: &str,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<Issued, Error> {
        let now = crate::registry::stored_precision(now);
        let request = x509::signing_request(csr_pem).map_err(Error::CsrRefused)?;
        let (ca, ca_row) = self.registered_ca(now).await?;
        let agent = self.registry.store().agent(agent_id).await?;
        if agent.fingerprint != *presented {
            return Err(Error::CertificateSuperseded);
        }
        let (certificate_pem, info) = self.issue(
            ca,
            &ca_row,
            &request.public_key_der,
            agent.id,
            &agent.hostname,
            agent.profile,
            now,
        )?;
        // The last second it is accepted: a grace of 0 ends before this one.
        let until = agent
            .not_after
            .unix_timestamp()
            .min((now + self.policy.renewal_grace).unix_timestamp() - 1);
        let superseded = SupersededCertificate::current_of(&agent, until, false);
        let agent = with_certificate(agent, &info, &ca_row, now);
        let event = AuditEvent::new(
            caller,
            now,
            Action::CertificateRenew,
            Target::Agent(agent.id),
        )
        .with("fingerprint", agent.fingerprint.to_string())
        .with("previous_fingerprint", superseded.fingerprint.to_string())
        .with("not_after", crate::registry::rfc3339(agent.not_after));
        match self
            .registry
            .store()
            .renew_certificate(&agent, &certificate_pem, &superseded, &event)
            .await
        {
            Err(StoreError::Conflict) => return Err(Error::CertificateSuperseded),
            Err(StoreError::NotFound) => return Err(Error::RenewalOfRevokedAgent),
            other => other?,
        }
        self.refresh_superseded(&agent).await?;
        self.registry.index(&agent);
        Ok(Issued {
            agent,
            certificate_pem,
            ca_certificate_pem: ca.certificate_pem().to_owned(),
        })
    }

    /// The internal CA's CRL (PEM), issued now from what the store says is revoked, so it
    /// reflects every revocation up to this call.
    /// Reading it never registers the CA: before the first issue the list is just empty.
    pub async fn crl(&self, now: OffsetDateTime) -> Result<String, Error> {
        let (ca, fingerprint) = self.internal_ca()?;
        let registered = self
            .registry
            .store()
            .internal_ca()
            .await?
            .filter(|row| row.fingerprint == *fingerprint);
        let revoked = match registered {
            Some(row) => {
                self.registry
                    .store()
                    .revoked_certificates(row.id, now)
                    .await?
            }
            None => Vec::new(),
        };
        let revoked = revoked
            .into_iter()
            .map(|entry| Revoked {
                serial: entry.serial,
                revoked_at: entry.revoked_at,
                superseded: entry.superseded,
            })
            .collect::<Vec<_>>();
        ca.crl(&revoked, now)
            .map_err(|e| Error::Internal(format!("could not sign the CRL: {e}")))
    }
}
