//! Host self-enrolment with administrator approval: the host sends its signing request and
//! a description of itself, gets a polling token, and collects its certificate once an
//! administrator approved. Unlike flows that ship a private key back, the key never leaves
//! the host.

use std::net::IpAddr;

use time::OffsetDateTime;

use super::{Error, Issuance};
use crate::domain::agent::{Agent, AllowedIps, Hostname, Tags};
use crate::domain::approval::{HostRequest, HostRequestStatus, PollingToken};
use crate::domain::audit::{Action, AuditEvent, Caller, Target};
use crate::domain::enrolment::{PendingEnrolment, Profile, TokenDigest};
use crate::domain::{AgentId, Fingerprint, HostRequestId};
use crate::store::StoreError;
use crate::x509;

/// A validated `POST B/enroll/requests`.
pub struct NewHostRequest {
    pub hostname: Hostname,
    pub machine_id: String,
    pub ip_address: IpAddr,
    pub os_details: String,
    pub csr_pem: String,
}

/// What an administrator decides besides "yes": the agent's fields.
pub struct Approval {
    pub description: Option<String>,
    pub tags: Tags,
    pub allowed_ips: AllowedIps,
    pub profile: Profile,
    /// Several hosts legitimately share the request's address (NAT, shared egress).
    pub allow_shared_ip: bool,
}

/// What the host learns when it polls.
pub enum Poll {
    Pending,
    Approved {
        agent_id: AgentId,
        certificate_pem: String,
        ca_certificate_pem: String,
        not_after: OffsetDateTime,
    },
    Denied,
    NotFound,
}

impl Issuance {
    /// Stores a host's request (its signing request checked first) and hands out the
    /// polling token, once.
    pub async fn submit_request(
        &self,
        request: NewHostRequest,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<(HostRequest, PollingToken), Error> {
        let now = crate::registry::stored_precision(now);
        let signing_request = x509::signing_request(&request.csr_pem).map_err(Error::CsrRefused)?;
        // Refuse now what approval could not issue, rather than after an administrator's
        // work (registering the CA is left to the approval).
        self.internal_ca()?;
        let token = PollingToken::generate(|n| rand::Rng::gen_range(&mut rand::thread_rng(), 0..n));
        let stored = HostRequest {
            id: HostRequestId::new_random(),
            hostname: request.hostname,
            machine_id: request.machine_id,
            ip_address: request.ip_address,
            os_details: request.os_details,
            csr_pem: request.csr_pem,
            key_sha256: Fingerprint::of_der(&signing_request.public_key_der),
            token_digest: token.digest(),
            status: HostRequestStatus::Pending,
            agent_id: None,
            created_at: now,
            expires_at: now + self.policy.token_ttl,
            decided_at: None,
        };
        let event = AuditEvent::new(
            caller,
            now,
            Action::RequestSubmit,
            Target::Request(stored.id),
        )
        .with("hostname", stored.hostname.as_str())
        .with("machine_id", stored.machine_id.as_str())
        .with("ip_address", stored.ip_address.to_string())
        .with("key_sha256", stored.key_sha256.to_string());
        self.registry
            .store()
            .insert_request(&stored, &event)
            .await?;
        Ok((stored, token))
    }

    /// The state of the request a polling token belongs to. Unknown and expired tokens
    /// look the same.
    pub async fn poll(&self, token: &str, now: OffsetDateTime) -> Result<Poll, Error> {
        let request = match self
            .registry
            .store()
            .request_by_token(&TokenDigest::of(token))
            .await
        {
            Err(StoreError::NotFound) => return Ok(Poll::NotFound),
            other => other?,
        };
        if request.expired(now) {
            return Ok(Poll::NotFound);
        }
        Ok(match (request.status, request.agent_id) {
            (HostRequestStatus::Pending, _) => Poll::Pending,
            (HostRequestStatus::Denied, _) => Poll::Denied,
            (HostRequestStatus::Approved, Some(agent_id)) => {
                let store = self.registry.store();
                let agent = store.agent(agent_id).await?;
                let certificate_pem = store.certificate_pem(agent_id).await?;
                let ca_certificate_pem = self.internal_ca()?.0.certificate_pem().to_owned();
                Poll::Approved {
                    agent_id,
                    certificate_pem,
                    ca_certificate_pem,
                    not_after: agent.not_after,
                }
            }
            (HostRequestStatus::Approved, None) => {
                return Err(Error::Internal("approved request without an agent".into()));
            }
        })
    }

    /// Issues the host's certificate and creates its agent. 409 when the hostname belongs
    /// to an agent, or the IP address to an active one (unless the approval accepts a
    /// shared address).
    pub async fn approve(
        &self,
        id: HostRequestId,
        approval: Approval,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<(HostRequest, Agent), Error> {
        let now = crate::registry::stored_precision(now);
        let store = self.registry.store();
        let request = self.undecided(id, now).await?;
        let ip_address = request.ip_address.to_string();
        let shared_ip = (!approval.allow_shared_ip).then_some(ip_address.as_str());
        if let Some((agent, by_name)) = store
            .conflicting_agent(request.hostname.as_str(), shared_ip, now)
            .await?
        {
            return Err(if by_name {
                Error::HostnameTaken(agent)
            } else {
                Error::IpAddressTaken(agent)
            });
        }
        let signing_request = x509::signing_request(&request.csr_pem).map_err(Error::CsrRefused)?;
        let (ca, ca_row) = self.registered_ca(now).await?;
        let agent_id = AgentId::new_random();
        let (certificate_pem, info) = self.issue(
            ca,
            &ca_row,
            &signing_request.public_key_der,
            agent_id,
            &request.hostname,
            approval.profile,
            now,
        )?;
        let fields = PendingEnrolment {
            agent_id,
            hostname: request.hostname.clone(),
            description: approval.description.or_else(|| {
                Some(format!(
                    "approved enrolment request {} (machine-id {})",
                    request.id, request.machine_id
                ))
            }),
            tags: approval.tags,
            allowed_ips: approval.allowed_ips,
            profile: approval.profile,
            token_digest: request.token_digest.clone(),
            expires_at: request.expires_at,
            created_at: now,
            used_at: None,
        };
        let agent = crate::registry::agent_from_enrolment(&info, &ca_row, &fields, now);
        let event = AuditEvent::new(caller, now, Action::RequestApprove, Target::Request(id))
            .with("agent_id", agent.id.to_string())
            .with("hostname", agent.hostname.as_str())
            .with("fingerprint", agent.fingerprint.to_string());
        match store
            .approve_request(id, &agent, &certificate_pem, &event)
            .await
        {
            Err(StoreError::Conflict) => return Err(Error::RequestDecided),
            other => other?,
        }
        self.registry.index(&agent);
        let request = store.request(id).await?;
        Ok((request, agent))
    }

    pub async fn deny(
        &self,
        id: HostRequestId,
        caller: &Caller,
        now: OffsetDateTime,
    ) -> Result<HostRequest, Error> {
        let now = crate::registry::stored_precision(now);
        let request = self.undecided(id, now).await?;
        let store = self.registry.store();
        let event = AuditEvent::new(caller, now, Action::RequestDeny, Target::Request(id))
            .with("hostname", request.hostname.as_str());
        match store.deny_request(id, now, &event).await {
            Err(StoreError::Conflict) => return Err(Error::RequestDecided),
            other => other?,
        }
        Ok(store.request(id).await?)
    }

    async fn undecided(
        &self,
        id: HostRequestId,
        now: OffsetDateTime,
    ) -> Result<HostRequest, Error> {
        let request = self.registry.store().request(id).await?;
        if request.status != HostRequestStatus::Pending {
            return Err(Error::RequestDecided);
        }
        if request.expired(now) {
            return Err(Error::RequestExpired);
        }
        Ok(request)
    }
}
