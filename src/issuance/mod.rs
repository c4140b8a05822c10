//! certgate as its own CA: one-time enrolment tokens, and certificates issued from the
//! agent's own signing request, so a private key never leaves the host that uses it.

mod approval;
mod error;
pub mod internal_ca;
mod renewal;

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::config::IssuanceSettings;
use crate::domain::agent::{Agent, AllowedIps, Hostname, SupersededCertificate, Tags};
use crate::domain::audit::{Action, Actor, AuditEvent, Caller, Target};
use crate::domain::ca::Ca;
use crate::domain::enrolment::{
    EnrolmentToken, PendingEnrolment, Profile, TokenDigest, TokenRefusal,
};
use crate::domain::{AgentId, Fingerprint};
use crate::registry::{self, Registry};
use crate::store::StoreError;
use crate::x509::{self, Anchors, CertificateInfo, PathError};
pub use error::Error;
use internal_ca::{InternalCa, IssueSpec};

/// A validated `POST B/enrollments`: a pending agent that will redeem a one-time token.
pub struct NewPendingEnrolment {
    pub hostname: Hostname,
    pub description: Option<String>,
    pub tags: Tags,
    pub allowed_ips: AllowedIps,
    pub profile: Profile,
    pub ttl: Option<Duration>,
}

pub use approval::{Approval, NewHostRequest, Poll};

/// A certificate just issued, with the CA that signed it.
pub struct Issued {
    pub agent: Agent,
    pub certificate_pem: String,
    pub ca_certificate_pem: String,
}

pub struct Issuance {
    registry: Arc<Registry>,
    /// The reason, when the internal CA is switched off or could not be opened.
    ca: Result<(InternalCa, Fingerprint), String>,
    policy: IssuanceSettings,
}

impl Issuance {
    pub fn new(
        registry: Arc<Registry>,
        ca: Result<InternalCa, String>,
        policy: IssuanceSettings,
    ) -> Self {
        let ca = ca.and_then(|ca| {
            x509::single_pem_certificate(ca.certificate_pem())
                .map(|info| (ca, info.fingerprint))
                .map_err(|e| e.to_string())
        });
        Self {
            registry,
            ca,
            policy,
        }
    }

    /// The internal CA with its fingerprint, or the reason it is unavailable.
    fn internal_ca(&self) -> Result<&(InternalCa, Fingerprint), Error> {
        self.ca
            .as_ref()
            .map_err(|reason| Error::InternalCaUnavailable(reason.clone()))
    }

    /// The internal CA and its id in the store, registering it as a trusted CA the first
    /// time it is needed. Fresh installs that never issue keep an empty CA list.
    pub async fn registered_ca(&self, now: OffsetDateTime) -> Result<(&InternalCa, Ca), Error> {
        let (ca, fingerprint) = self.internal_ca()?;
        for _ in 0..2 {
            match self.registry.store().internal_ca().await? {
                Some(row) if row.fingerprint == *fingerprint => return Ok((ca, row)),
                Some(_) => return Err(Error::InternalCaMismatch),
                None => match self
                    .registry
                    .add_internal_ca(ca.certificate_pem(), now)
                    .await
                {
                    Ok(row) => return Ok((ca, row)),
                    // Another replica registered one meanwhile: look again.
                    Err(registry::Error::InternalCaExists) => continue,
                    Err(error) => return Err(error.into()),
                },
            }
        }
        Err(StoreError::Concurrent.into())
    }

    /// Creates a pending agent and its one-time token (`POST B/enrollments`).
    pub async fn create_enrolment(
        &self,
        request: NewPendingEnrolment,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<(PendingEnrolment, EnrolmentToken), Error> {
        self.registered_ca(now).await?;
        let token = new_token();
        let enrolment = PendingEnrolment {
            agent_id: AgentId::new_random(),
            hostname: request.hostname,
            description: request.description,
            tags: request.tags,
            allowed_ips: request.allowed_ips,
            profile: request.profile,
            token_digest: token.digest(),
            expires_at: now + request.ttl.unwrap_or(self.policy.token_ttl),
            created_at: now,
            used_at: None,
        };
        let event = token_event(caller, &enrolment, false);
        self.registry
            .store()
            .put_enrolment(&enrolment, &event)
            .await?;
        Ok((enrolment, token))
    }

    /// A new token for an agent: a pending one (the old token stops working), or an active
    /// one that needs a new certificate (re-enrolment, e.g. after losing its key).
    pub async fn rotate_token(
        &self,
        agent_id: AgentId,
        ttl: Option<Duration>,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<(PendingEnrolment, EnrolmentToken), Error> {
        self.registered_ca(now).await?;
        let store = self.registry.store();
        let mut enrolment = match store.agent(agent_id).await {
            Ok(agent) => {
                if agent.revoked_at.is_some() {
                    return Err(Error::TokenForRevokedAgent);
                }
                if agent.ca_removed_at.is_some() {
                    return Err(Error::TokenForAgentOfRemovedCa);
                }
                from_agent(&agent)
            }
            Err(StoreError::NotFound) => match store.enrolment(agent_id).await? {
                pending if pending.used_at.is_none() => pending,
                _ => return Err(StoreError::NotFound.into()),
            },
            Err(other) => return Err(other.into()),
        };
        let token = new_token();
        enrolment.token_digest = token.digest();
        enrolment.created_at = now;
        enrolment.expires_at = now + ttl.unwrap_or(self.policy.token_ttl);
        enrolment.used_at = None;
        let event = token_event(caller, &enrolment, true);
        store.put_enrolment(&enrolment, &event).await?;
        Ok((enrolment, token))
    }

    /// Redeems a token for a certificate over the key in `csr_pem` (`POST B/enroll`). The
    /// audit trail names the token's agent as the actor, from the `origin` request.
    pub async fn enrol(
        &self,
        token: &str,
        csr_pem: &str,
        origin: &Caller,
        now: OffsetDateTime,
    ) -> Result<Issued, Error> {
        let now = crate::registry::stored_precision(now);
        let digest = TokenDigest::of(token);
        let enrolment = match self.registry.store().enrolment_by_token(&digest).await {
            Err(StoreError::NotFound) => return Err(Error::TokenRefused(TokenRefusal::Unknown)),
            other => other?,
        };
        enrolment.check_usable(now).map_err(Error::TokenRefused)?;
        let request = x509::signing_request(csr_pem).map_err(Error::CsrRefused)?;
        let (ca, ca_row) = self.registered_ca(now).await?;
        let existing = match self.registry.store().agent(enrolment.agent_id).await {
            Ok(agent) => Some(agent),
            Err(StoreError::NotFound) => None,
            Err(other) => return Err(other.into()),
        };
        let (certificate_pem, info) = self.issue(
            ca,
            &ca_row,
            &request.public_key_der,
            enrolment.agent_id,
            &enrolment.hostname,
            enrolment.profile,
            now,
        )?;
        let renewal = existing.is_some();
        let caller = Caller {
            actor: Actor::TokenHolder(enrolment.agent_id),
            ..origin.clone()
        };
        let event = AuditEvent::new(
            &caller,
            now,
            Action::TokenRedeem,
            Target::Agent(enrolment.agent_id),
        )
        .with("hostname", enrolment.hostname.as_str())
        .with("fingerprint", info.fingerprint.to_string())
        .with("re_enrolment", renewal);
        let agent = match existing {
            Some(agent) => {
                // A re-enrolment: the key may be lost or stolen, so the certificate it
                // replaces is revoked, with no grace window.
                let replaced = SupersededCertificate::current_of(
                    &agent,
                    agent.not_after.unix_timestamp(),
                    true,
                );
                let agent = with_certificate(agent, &info, &ca_row, now);
                self.store_issued(&digest, &agent, &certificate_pem, Some(&replaced), &event)
                    .await?;
                self.refresh_superseded(&agent).await?;
                agent
            }
            None => {
                let agent = crate::registry::agent_from_enrolment(&info, &ca_row, &enrolment, now);
                self.store_issued(&digest, &agent, &certificate_pem, None, &event)
                    .await?;
                agent
            }
        };
        self.registry.index(&agent);
        Ok(Issued {
            agent,
            certificate_pem,
            ca_certificate_pem: ca.certificate_pem().to_owned(),
        })
    }

    /// Signs a certificate for the agent: CN = its id, SANs from its hostname (when it is
    /// DNS-shaped) and the configured extra names. The certificate must pass the path
    /// validation verify applies to certificates it judges itself: a weak key is refused.
    #[allow(clippy::too_many_arguments)]
    fn issue(
        &self,
        ca: &InternalCa,
        ca_row: &Ca,
        public_key_der: &[u8],
        agent_id: AgentId,
        hostname: &Hostname,
        profile: Profile,
        now: OffsetDateTime,
    ) -> Result<(String, CertificateInfo), Error> {
        let mut names = vec![];
        if looks_like_a_dns_name(hostname.as_str()) {
            names.push(hostname.as_str().to_owned());
        }
        names.extend(self.policy.extra_sans.iter().cloned());
        let spec = IssueSpec {
            agent_id,
            names: &names,
            profile,
            validity: self.policy.certificate_validity,
        };
        let certificate_pem = ca
            .issue(public_key_der, &spec, now)
            .map_err(|e| Error::CannotIssue(e.to_string()))?;
        let info = x509::single_pem_certificate(&certificate_pem)
            .map_err(|e| Error::Internal(format!("the internal CA issued unreadable PEM: {e}")))?;
        let ca_der = x509::pem_certificates(ca.certificate_pem())?;
        let anchors = Anchors::new(ca_der.iter().map(|der| (ca_row.id, der.as_slice())));
        match x509::validate(&info.der, &[], &anchors, now.unix_timestamp()).outcome {
            Ok(_) => Ok((certificate_pem, info)),
            Err(PathError::WeakCrypto(_)) => Err(Error::WeakKey),
            Err(error) => Err(Error::IssuedCertificateInvalid(error)),
        }
    }

    /// Reads the agent's superseded certificates back, so the index judges them as stored.
    async fn refresh_superseded(&self, agent: &Agent) -> Result<(), Error> {
        let superseded = self
            .registry
            .store()
            .superseded_certificates(Some(agent.id))
            .await?;
        self.registry
            .set_superseded(agent.id, agent.version, superseded);
        Ok(())
    }

    async fn store_issued(
        &self,
        digest: &TokenDigest,
        agent: &Agent,
        certificate_pem: &str,
        replaced: Option<&SupersededCertificate>,
        event: &AuditEvent,
    ) -> Result<(), Error> {
        match self
            .registry
            .store()
            .complete_enrolment(digest, agent, certificate_pem, replaced, event)
            .await
        {
            Err(StoreError::Conflict) => Err(Error::TokenRefused(TokenRefusal::Used)),
            Err(StoreError::NotFound) => Err(Error::EnrolmentOfRevokedAgent),
            other => Ok(other?),
        }
    }

    /// Withdraws a pending agent's enrolment (`DELETE B/agents/:id` before it enrolled).
    pub async fn cancel(
        &self,
        agent_id: AgentId,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let now = crate::registry::stored_precision(now);
        let event = AuditEvent::new(
            caller,
            now,
            Action::EnrolmentCancel,
            Target::Agent(agent_id),
        );
        Ok(self
            .registry
            .store()
            .cancel_enrolment(agent_id, &event)
            .await?)
    }
}

/// The audit event of a token handed out: never the token, only what it enrols.
fn token_event(caller: &Caller, enrolment: &PendingEnrolment, rotated: bool) -> AuditEvent {
    AuditEvent::new(
        caller,
        enrolment.created_at,
        Action::TokenIssue,
        Target::Agent(enrolment.agent_id),
    )
    .with("hostname", enrolment.hostname.as_str())
    .with("profile", enrolment.profile.as_str())
    .with("expires_at", crate::registry::rfc3339(enrolment.expires_at))
    .with("rotated", rotated)
}

/// The agent moved to the certificate `info` describes.
fn with_certificate(
    mut agent: Agent,
    info: &CertificateInfo,
    ca: &Ca,
    now: OffsetDateTime,
) -> Agent {
    agent.fingerprint = info.fingerprint;
    agent.fingerprint_sha1 = info.sha1;
    agent.subject = info.subject.clone();
    agent.serial = info.serial.clone();
    agent.issuer_serial = Some(info.issuer_serial);
    agent.not_before = info.not_before;
    agent.not_after = info.not_after;
    agent.ca_id = ca.id;
    agent.ca_not_after = ca.not_after;
    agent.updated_at = now;
    agent.version += 1;
    agent
}

fn new_token() -> EnrolmentToken {
    EnrolmentToken::from_random_bytes(rand::random())
}

fn from_agent(agent: &Agent) -> PendingEnrolment {
    PendingEnrolment {
        agent_id: agent.id,
        hostname: agent.hostname.clone(),
        description: agent.description.clone(),
        tags: agent.tags.clone(),
        allowed_ips: agent.allowed_ips.clone(),
        profile: agent.profile,
        token_digest: TokenDigest::of(""),
        expires_at: agent.updated_at,
        created_at: agent.updated_at,
        used_at: None,
    }
}

/// Hostnames are free text (1–253 printable characters); only DNS-shaped ones become SANs.
fn looks_like_a_dns_name(hostname: &str) -> bool {
    hostname
        .split('.')
        .all(|label| !label.is_empty() && label.len() <= 63)
        && hostname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '*')
}

#[cfg(test)]
mod tests {
    use super::looks_like_a_dns_name;

    #[test]
    fn only_dns_shaped_hostnames_become_names() {
        assert!(looks_like_a_dns_name("agent-1.example.test"));
        assert!(looks_like_a_dns_name("web01"));
        assert!(!looks_like_a_dns_name("agent/1"));
        assert!(!looks_like_a_dns_name("a..b"));
        assert!(!looks_like_a_dns_name(&"a".repeat(64)));
    }
}
