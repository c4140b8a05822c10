//! The audit trail: who changed what, recorded with the change itself.

use std::fmt;
use std::net::IpAddr;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{AgentId, CaId, HostRequestId};

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An admin token, by its configured name (`name:token`) or `token:<8 hex>` of its
    /// SHA-256 when it has none.
    Token(String),
    /// An enrolled agent: its admin-profile certificate, or renewing its own certificate.
    Agent(AgentId),
    /// A holder of an enrolment token, redeeming it for the agent it names.
    TokenHolder(AgentId),
    /// A host asking to be enrolled, unauthenticated by design.
    Anonymous,
    /// certgate itself: auto-enrolment, start-up.
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Token(name) => f.write_str(name),
            Actor::Agent(id) | Actor::TokenHolder(id) => write!(f, "agent:{id}"),
            Actor::Anonymous => f.write_str("anonymous"),
            Actor::System => f.write_str("system"),
        }
    }
}

/// Who made a change, and through which request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub request_id: Option<String>,
    pub source_ip: Option<IpAddr>,
}

impl Caller {
    /// certgate acting on its own, outside any request.
    pub fn system() -> Self {
        Self {
            actor: Actor::System,
            request_id: None,
            source_ip: None,
        }
    }
}

/// What was done. The names are the `action` of `GET B/audit` and its filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CaAdd,
    CaRemove,
    CrlImport,
    AgentEnrol,
    AgentAutoEnrol,
    AgentUpdate,
    AgentEnable,
    AgentDisable,
    AgentRevoke,
    TokenIssue,
    TokenRedeem,
    EnrolmentCancel,
    CertificateRenew,
    RequestSubmit,
    RequestApprove,
    RequestDeny,
    ConfigUpdate,
}

impl Action {
    pub const ALL: [Action; 17] = [
        Action::CaAdd,
        Action::CaRemove,
        Action::CrlImport,
        Action::AgentEnrol,
        Action::AgentAutoEnrol,
        Action::AgentUpdate,
        Action::AgentEnable,
        Action::AgentDisable,
        Action::AgentRevoke,
        Action::TokenIssue,
        Action::TokenRedeem,
        Action::EnrolmentCancel,
        Action::CertificateRenew,
        Action::RequestSubmit,
        Action::RequestApprove,
        Action::RequestDeny,
        Action::ConfigUpdate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::CaAdd => "ca.add",
            Action::CaRemove => "ca.remove",
            Action::CrlImport => "ca.crl_import",
            Action::AgentEnrol => "agent.enrol",
            Action::AgentAutoEnrol => "agent.auto_enrol",
            Action::AgentUpdate => "agent.update",
            Action::AgentEnable => "agent.enable",
            Action::AgentDisable => "agent.disable",
            Action::AgentRevoke => "agent.revoke",
            Action::TokenIssue => "token.issue",
            Action::TokenRedeem => "token.redeem",
            Action::EnrolmentCancel => "enrolment.cancel",
            Action::CertificateRenew => "certificate.renew",
            Action::RequestSubmit => "request.submit",
            Action::RequestApprove => "request.approve",
            Action::RequestDeny => "request.deny",
            Action::ConfigUpdate => "config.update",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == text)
    }
}

/// What a change was made to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Ca(CaId),
    Agent(AgentId),
    Request(HostRequestId),
    Config,
}

impl Target {
    pub fn kind(self) -> &'static str {
        match self {
            Target::Ca(_) => "ca",
            Target::Agent(_) => "agent",
            Target::Request(_) => "request",
            Target::Config => "config",
        }
    }

    pub fn id(self) -> String {
        match self {
            Target::Ca(id) => id.to_string(),
            Target::Agent(id) => id.to_string(),
            Target::Request(id) => id.to_string(),
            Target::Config => "policy".to_owned(),
        }
    }
}

/// One change as the audit trail records it. `details` says what changed, never a secret,
/// token, key or certificate.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: Action,
    pub target: Target,
    pub request_id: Option<String>,
    pub source_ip: Option<IpAddr>,
    pub details: Map<String, Value>,
}

impl AuditEvent {
    pub fn new(caller: &Caller, at: OffsetDateTime, action: Action, target: Target) -> Self {
        Self {
            at,
            actor: caller.actor.to_string(),
            action,
            target,
            request_id: caller.request_id.clone(),
            source_ip: caller.source_ip,
            details: Map::new(),
        }
    }

    /// Adds one detail.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    pub fn details_json(&self) -> String {
        serde_json::to_string(&self.details).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_named_once_and_parses_back() {
        let names: std::collections::BTreeSet<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), Action::ALL.len());
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("agent.delete"), None);
    }

    #[test]
    fn actors_are_written_as_the_audit_trail_names_them() {
        let id = AgentId::new_random();
        assert_eq!(Actor::Token("ops".into()).to_string(), "ops");
        assert_eq!(Actor::Agent(id).to_string(), format!("agent:{id}"));
        assert_eq!(Actor::TokenHolder(id).to_string(), format!("agent:{id}"));
        assert_eq!(Actor::System.to_string(), "system");
        assert_eq!(Actor::Anonymous.to_string(), "anonymous");
    }
}
