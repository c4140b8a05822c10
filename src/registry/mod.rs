//! The operations behind the admin API (and auto-enrolment): each writes the store, then
//! applies the change to the trust index before returning, so the very next verify call on
//! this replica sees it.

mod crl;
mod error;
mod identities;

use std::sync::Arc;

use time::OffsetDateTime;

use crate::domain::agent::{Agent, AllowedIps, Hostname, SupersededCertificate, Tags};
use crate::domain::audit::{Action, AuditEvent, Caller, Target};
use crate::domain::ca::Ca;
use crate::domain::enrolment::{PendingEnrolment, Profile};
use crate::domain::policy::{Policy, PolicyChange};
use crate::domain::verify::{ChainInfo, PresentedCertificate};
use crate::domain::{AgentId, CaId};
use crate::store::{Store, StoreError};
use crate::trust::TrustIndex;
use crate::x509::{self, Anchors, CertificateInfo};

pub use error::Error;
pub use identities::record_missing_identities;

/// Optimistic updates retry this often when another writer got there first.
const UPDATE_ATTEMPTS: usize = 3;

pub const AUTO_ENROLLED_TAG: &str = "auto-enrolled";

pub struct Registry {
    store: Arc<dyn Store>,
    trust: Arc<TrustIndex>,
}

/// An administrator enrolling a certificate the agent already has (`POST B/agents`),
/// validated.
pub struct ManualEnrolment {
    pub hostname: Hostname,
    pub description: Option<String>,
    pub certificate_pem: String,
    pub ca_id: CaId,
    pub tags: Tags,
    pub allowed_ips: AllowedIps,
}

/// A validated partial update; `description: Some(None)` clears it.
#[derive(Default)]
pub struct AgentUpdate {
    pub hostname: Option<Hostname>,
    pub description: Option<Option<String>>,
    pub tags: Option<Tags>,
    pub allowed_ips: Option<AllowedIps>,
}

impl Registry {
    pub fn new(store: Arc<dyn Store>, trust: Arc<TrustIndex>) -> Self {
        Self { store, trust }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    async fn refresh_cas(&self) -> Result<(), Error> {
        self.trust.set_cas(&self.store.live_cas().await?);
        Ok(())
    }

    pub async fn add_ca(
        &self,
        name: String,
        certificate_pem: &str,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<Ca, Error> {
        self.insert_ca(name, certificate_pem, false, caller, now)
            .await
    }

    /// Registers certgate's own CA as a trusted CA (`internal: true`).
    pub async fn add_internal_ca(
        &self,
        certificate_pem: &str,
        now: OffsetDateTime,
    ) -> Result<Ca, Error> {
        let name = crate::domain::ca::INTERNAL_CA_NAME.to_owned();
        match self
            .insert_ca(name, certificate_pem, true, &Caller::system(), now)
            .await
        {
            // Either another replica registered the internal CA first, or an operator
            // uploaded this very certificate as an ordinary CA.
            Err(Error::CaExists) => match self.store.internal_ca().await? {
                Some(_) => Err(Error::InternalCaExists),
                None => Err(Error::InternalCaTrustedAsExternal),
            },
            other => other,
        }
    }

    async fn insert_ca(
        &self,
        name: String,
        certificate_pem: &str,
        internal: bool,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<Ca, Error> {
        let now = stored_precision(now);
        let info = x509::single_pem_certificate(certificate_pem)?;
        x509::check_ca_certificate(&info, now.unix_timestamp()).map_err(Error::CaRefused)?;
        let ca = Ca {
            id: CaId::new_random(),
            name,
            fingerprint: info.fingerprint,
            subject: info.subject.clone(),
            not_before: info.not_before,
            not_after: info.not_after,
            certificate_pem: info.to_pem(),
            created_at: now,
            removed_at: None,
            internal,
        };
        let event = AuditEvent::new(caller, now, Action::CaAdd, Target::Ca(ca.id))
            .with("name", ca.name.as_str())
            .with("fingerprint", ca.fingerprint.to_string())
            .with("subject", ca.subject.as_str())
            .with("not_after", rfc3339(ca.not_after))
            .with("internal", internal);
        match self.store.insert_ca(&ca, &event).await {
            Err(StoreError::Conflict) => return Err(Error::CaExists),
            other => other?,
        }
        self.refresh_cas().await?;
        Ok(ca)
    }

    pub async fn remove_ca(
        &self,
        id: CaId,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let now = stored_precision(now);
        let event = AuditEvent::new(caller, now, Action::CaRemove, Target::Ca(id));
        self.store.remove_ca(id, now, &event).await?;
        self.refresh_cas().await
    }

    pub async fn enrol(
        &self,
        request: ManualEnrolment,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<Agent, Error> {
        let now = stored_precision(now);
        let ca = self.live_ca(request.ca_id).await?;
        let info = x509::single_pem_certificate(&request.certificate_pem)?;
        let ca_der = x509::pem_certificates(&ca.certificate_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt("stored CA has no certificate".into()))?;
        let anchors = Anchors::new([(ca.id, ca_der.as_slice())]);
        if anchors.is_empty() {
            return Err(StoreError::Corrupt("stored CA cannot anchor a path".into()).into());
        }
        x509::validate(&info.der, &[], &anchors, now.unix_timestamp())
            .outcome
            .map_err(Error::PathRefused)?;
        if self.trust.serial_revoked(request.ca_id, &info.serial) {
            return Err(Error::ListedAsRevoked);
        }
        let agent = new_agent(
            &info,
            ca.as_ref(),
            now,
            AgentFields {
                hostname: request.hostname,
                description: request.description,
                tags: request.tags,
                allowed_ips: request.allowed_ips,
                profile: Profile::Agent,
            },
        );
        let event = enrolment_event(caller, Action::AgentEnrol, &agent, now);
        match self
            .store
            .insert_agent(&agent, &info.to_pem(), &event)
            .await
        {
            Err(StoreError::Conflict) => return Err(self.enrolment_conflict(&info, ca.id).await),
            other => other?,
        }
        self.trust.upsert(&agent);
        Ok(agent)
    }

    /// A live CA, from the index when this replica knows it (enrolment then needs no read
    /// of the store before its insert, which checks again that the CA is live).
    async fn live_ca(&self, id: CaId) -> Result<Arc<Ca>, Error> {
        if let Some(ca) = self.trust.live_ca(id) {
            return Ok(ca);
        }
        match self.store.ca(id).await {
            Ok(ca) => Ok(Arc::new(ca)),
            Err(StoreError::NotFound) => Err(Error::UnknownCa),
            Err(other) => Err(other.into()),
        }
    }

    /// Makes an agent the store already holds visible to verify.
    pub fn index(&self, agent: &Agent) {
        self.trust.upsert(agent);
    }

    /// The certificates an agent no longer uses, as read at its `version`.
    pub fn set_superseded(
        &self,
        agent_id: AgentId,
        version: i64,
        certificates: Vec<SupersededCertificate>,
    ) {
        self.trust.set_superseded(agent_id, version, certificates);
    }

    /// Why the store turned an enrolment down: a certificate is its issuer and serial
    /// number, so once an agent holds it (in any encoding) it cannot be enrolled again
    /// unless that agent's CA was removed, and never once revoked; or the CA was removed
    /// since this replica last read it; or a concurrent enrolment of it won.
    async fn enrolment_conflict(&self, info: &CertificateInfo, ca: CaId) -> Error {
        let holders = match self.store.identity_holders(&info.issuer_serial).await {
            Ok(holders) => holders,
            Err(error) => return error.into(),
        };
        if let Some(refusal) = refusal_for(&holders, info) {
            return refusal;
        }
        match self.store.ca(ca).await {
            Err(StoreError::NotFound) => Error::UnknownCa,
            Err(error) => error.into(),
            Ok(_) => Error::AlreadyEnrolled,
        }
    }

    /// Enrols a certificate that verify found chaining to a trusted CA (`auto_enroll`).
    /// Losing a race against another enrolment of the same certificate returns that agent.
    pub async fn auto_enrol(
        &self,
        certificate: &PresentedCertificate,
        chain: ChainInfo,
        now: OffsetDateTime,
    ) -> Result<Agent, Error> {
        let now = stored_precision(now);
        let info = x509::parse(certificate.der.to_vec())?;
        let ca_not_after = OffsetDateTime::from_unix_timestamp(chain.ca_not_after)
            .map_err(|e| Error::Internal(format!("CA expiry out of range: {e}")))?;
        let hostname = info
            .preferred_hostname()
            .and_then(Hostname::from_certificate_name)
            .or_else(|| Hostname::parse(&format!("agent-{}", &info.sha1.to_string()[..12])).ok())
            .ok_or_else(|| Error::Internal("cannot name auto-enrolled agent".into()))?;
        let agent = new_agent(
            &info,
            CaOfAgent {
                id: chain.ca_id,
                not_after: ca_not_after,
            },
            now,
            AgentFields {
                hostname,
                description: Some("enrolled automatically on first verify".to_owned()),
                tags: Tags::single(AUTO_ENROLLED_TAG),
                allowed_ips: AllowedIps::default(),
                profile: Profile::Agent,
            },
        );
        let event = enrolment_event(&Caller::system(), Action::AgentAutoEnrol, &agent, now);
        match self
            .store
            .insert_agent(&agent, &info.to_pem(), &event)
            .await
        {
            Ok(()) => {
                self.trust.upsert(&agent);
                Ok(agent)
            }
            Err(StoreError::Conflict) => {
                // Another verify enrolled it first; a different certificate with its identity
                // is no winner (verify refuses it as that agent's from now on).
                let existing = self.store.agents_by_fingerprint(&info.fingerprint).await?;
                let winner = existing
                    .into_iter()
                    .find(|a| a.ca_removed_at.is_none())
                    .ok_or_else(|| self_conflict(&info))?;
                self.trust.upsert(&winner);
                Ok(winner)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Reads, changes and writes an agent, retrying when another writer interleaves.
    /// `audit` describes the change made to the agent it is given.
    async fn modify(
        &self,
        id: AgentId,
        now: OffsetDateTime,
        change: impl Fn(&mut Agent) -> Result<(), Error>,
        audit: impl Fn(&Agent, OffsetDateTime) -> AuditEvent,
    ) -> Result<Agent, Error> {
        let now = stored_precision(now);
        for _ in 0..UPDATE_ATTEMPTS {
            let mut agent = self.store.agent(id).await?;
            change(&mut agent)?;
            agent.updated_at = now;
            let event = audit(&agent, now);
            match self.store.update_agent(&agent, &event).await {
                Err(StoreError::Concurrent) => continue,
                other => other?,
            }
            agent.version += 1;
            self.trust.upsert(&agent);
            return Ok(agent);
        }
        Err(StoreError::Concurrent.into())
    }

    pub async fn update(
        &self,
        id: AgentId,
        update: AgentUpdate,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<Agent, Error> {
        let audit = |agent: &Agent, now| {
            let mut event = AuditEvent::new(caller, now, Action::AgentUpdate, Target::Agent(id));
            if update.hostname.is_some() {
                event = event.with("hostname", agent.hostname.as_str());
            }
            if update.description.is_some() {
                event = event.with("description", agent.description.clone());
            }
            if update.tags.is_some() {
                event = event.with("tags", agent.tags.as_slice().to_vec());
            }
            if update.allowed_ips.is_some() {
                event = event.with("allowed_ips", agent.allowed_ips.to_strings());
            }
            event
        };
        self.modify(
            id,
            now,
            |agent| {
                refuse_if_revoked(agent)?;
                if let Some(hostname) = &update.hostname {
                    agent.hostname = hostname.clone();
                }
                if let Some(description) = &update.description {
                    agent.description = description.clone();
                }
                if let Some(tags) = &update.tags {
                    agent.tags = tags.clone();
                }
                if let Some(allowed_ips) = &update.allowed_ips {
                    agent.allowed_ips = allowed_ips.clone();
                }
                Ok(())
            },
            audit,
        )
        .await
    }

    /// `enabled: None` flips the flag; `Some(value)` sets it (idempotent, for automation).
    pub async fn toggle(
        &self,
        id: AgentId,
        enabled: Option<bool>,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<Agent, Error> {
        let change = |agent: &mut Agent| {
            refuse_if_revoked(agent)?;
            agent.enabled = enabled.unwrap_or(!agent.enabled);
            Ok(())
        };
        let audit = |agent: &Agent, now| {
            let action = if agent.enabled {
                Action::AgentEnable
            } else {
                Action::AgentDisable
            };
            AuditEvent::new(caller, now, action, Target::Agent(id))
                .with("hostname", agent.hostname.as_str())
        };
        self.modify(id, now, change, audit).await
    }

    /// Revoking twice is not an error: the first revocation time is kept.
    pub async fn revoke(
        &self,
        id: AgentId,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<Agent, Error> {
        let now = stored_precision(now);
        let change = |agent: &mut Agent| {
            agent.revoked_at.get_or_insert(now);
            Ok(())
        };
        let audit = |agent: &Agent, now| {
            AuditEvent::new(caller, now, Action::AgentRevoke, Target::Agent(id))
                .with("hostname", agent.hostname.as_str())
                .with("fingerprint", agent.fingerprint.to_string())
        };
        self.modify(id, now, change, audit).await
    }

    pub async fn set_policy(
        &self,
        change: PolicyChange,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<Policy, Error> {
        let now = stored_precision(now);
        let policy = change.apply(self.store.policy().await?, now);
        let event = AuditEvent::new(caller, now, Action::ConfigUpdate, Target::Config)
            .with("enforcement_enabled", policy.enforcement_enabled)
            .with("reject_unknown_certs", policy.reject_unknown_certs)
            .with("auto_enroll", policy.auto_enroll);
        self.store.update_policy(&policy, &event).await?;
        self.trust.set_policy(policy);
        Ok(policy)
    }
}

/// The audit event of a new agent.
fn enrolment_event(
    caller: &Caller,
    action: Action,
    agent: &Agent,
    now: OffsetDateTime,
) -> AuditEvent {
    AuditEvent::new(caller, now, action, Target::Agent(agent.id))
        .with("hostname", agent.hostname.as_str())
        .with("fingerprint", agent.fingerprint.to_string())
        .with("ca_id", agent.ca_id.to_string())
        .with("profile", agent.profile.as_str())
}

/// A time as the API writes it, for audit details.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Timestamps are stored in microseconds; answering with the same precision keeps a write's
/// answer equal to what a later read of the same resource returns.
pub fn stored_precision(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

fn refuse_if_revoked(agent: &Agent) -> Result<(), Error> {
    if agent.revoked_at.is_some() {
        return Err(Error::AgentRevoked);
    }
    Ok(())
}

/// The refusal of a certificate whose identity `holders` hold, if one applies: a revoked
/// certificate stays revoked, and a live agent's certificate is that agent's.
fn refusal_for(holders: &[crate::store::IdentityHolder], info: &CertificateInfo) -> Option<Error> {
    if holders.iter().any(|h| h.revoked) {
        return Some(Error::CertificateRevoked);
    }
    let holder = holders.iter().find(|h| !h.ca_removed)?;
    Some(if holder.fingerprint == info.fingerprint {
        Error::AlreadyEnrolled
    } else {
        Error::SerialInUse(holder.agent_id)
    })
}

fn self_conflict(info: &CertificateInfo) -> Error {
    Error::Internal(format!(
        "auto-enrolment of {} conflicted with another certificate of the same identity",
        info.fingerprint
    ))
}

/// The agent a redeemed enrolment token becomes, with the certificate just issued to it.
pub fn agent_from_enrolment(
    info: &CertificateInfo,
    ca: &Ca,
    enrolment: &PendingEnrolment,
    now: OffsetDateTime,
) -> Agent {
    let mut agent = new_agent(
        info,
        ca,
        now,
        AgentFields {
            hostname: enrolment.hostname.clone(),
            description: enrolment.description.clone(),
            tags: enrolment.tags.clone(),
            allowed_ips: enrolment.allowed_ips.clone(),
            profile: enrolment.profile,
        },
    );
    agent.id = enrolment.agent_id;
    agent
}

struct AgentFields {
    hostname: Hostname,
    description: Option<String>,
    tags: Tags,
    allowed_ips: AllowedIps,
    profile: Profile,
}

/// The CA an agent is enrolled under, as its row records it.
pub struct CaOfAgent {
    pub id: CaId,
    pub not_after: OffsetDateTime,
}

impl From<&Ca> for CaOfAgent {
    fn from(ca: &Ca) -> Self {
        Self {
            id: ca.id,
            not_after: ca.not_after,
        }
    }
}

fn new_agent(
    info: &CertificateInfo,
    ca: impl Into<CaOfAgent>,
    now: OffsetDateTime,
    fields: AgentFields,
) -> Agent {
    let ca = ca.into();
    Agent {
        id: AgentId::new_random(),
        hostname: fields.hostname,
        description: fields.description,
        tags: fields.tags,
        ca_id: ca.id,
        fingerprint: info.fingerprint,
        fingerprint_sha1: info.sha1,
        subject: info.subject.clone(),
        serial: info.serial.clone(),
        issuer_serial: Some(info.issuer_serial),
        not_before: info.not_before,
        not_after: info.not_after,
        ca_not_after: ca.not_after,
        enabled: true,
        allowed_ips: fields.allowed_ips,
        profile: fields.profile,
        created_at: now,
        updated_at: now,
        revoked_at: None,
        ca_removed_at: None,
        last_seen_at: None,
        last_seen_ip: None,
        version: 1,
    }
}

#[cfg(test)]
mod tests;
