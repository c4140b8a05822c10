//! Enrolled agents and the rules for their fields.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;
use time::OffsetDateTime;

use super::enrolment::Profile;
use super::verify::AgentFacts;
use super::{AgentId, CaId, Fingerprint, IssuerSerial, Sha1Fingerprint};

pub const MAX_TAGS: usize = 32;

/// An agent as stored.
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: AgentId,
    pub hostname: Hostname,
    pub description: Option<String>,
    pub tags: Tags,
    pub ca_id: CaId,
    pub fingerprint: Fingerprint,
    pub fingerprint_sha1: Sha1Fingerprint,
    pub subject: String,
    pub serial: String,
    /// What the certificate is, whatever its encoding. `None` only on a row an older
    /// certgate wrote, until the next start fills it in.
    pub issuer_serial: Option<IssuerSerial>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// When the agent's CA expires (its status turns `ca_expired`).
    pub ca_not_after: OffsetDateTime,
    pub enabled: bool,
    pub allowed_ips: AllowedIps,
    pub profile: Profile,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub ca_removed_at: Option<OffsetDateTime>,
    pub last_seen_at: Option<OffsetDateTime>,
    pub last_seen_ip: Option<String>,
    /// Bumped on every change, so replicas apply updates in order.
    pub version: i64,
}

/// A certificate the agent no longer uses. One it renewed away from is still accepted for
/// it until `not_after` (unix seconds: the certificate's own expiry or the end of the grace
/// window, whichever comes first); one a re-enrolment replaced is `revoked`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupersededCertificate {
    pub agent_id: AgentId,
    /// The CA that issued it (the agent may have moved to another since).
    pub ca_id: CaId,
    pub serial: String,
    pub issuer_serial: Option<IssuerSerial>,
    pub fingerprint: Fingerprint,
    pub fingerprint_sha1: Sha1Fingerprint,
    pub not_before: i64,
    pub not_after: i64,
    pub revoked: bool,
}

impl SupersededCertificate {
    /// The certificate `agent` holds now, accepted until `not_after` unless `revoked`.
    pub fn current_of(agent: &Agent, not_after: i64, revoked: bool) -> Self {
        Self {
            agent_id: agent.id,
            ca_id: agent.ca_id,
            serial: agent.serial.clone(),
            issuer_serial: agent.issuer_serial,
            fingerprint: agent.fingerprint,
            fingerprint_sha1: agent.fingerprint_sha1,
            not_before: agent.not_before.unix_timestamp(),
            not_after,
            revoked,
        }
    }
}

impl IndexedAgent {
    /// The same agent as verify should see it when it presents `certificate`.
    pub fn presenting(mut self, certificate: &SupersededCertificate) -> Self {
        self.issuer_serial = certificate.issuer_serial;
        self.facts.fingerprint = certificate.fingerprint;
        self.facts.fingerprint_sha1 = certificate.fingerprint_sha1;
        self.facts.not_before = certificate.not_before;
        self.facts.not_after = certificate.not_after;
        self.facts.revoked |= certificate.revoked;
        self
    }
}

/// What the trust index keeps of an agent: what verify decides by and answers with.
#[derive(Debug)]
pub struct IndexedAgent {
    pub id: AgentId,
    pub hostname: String,
    /// Tags joined by `,`, as `X-Agent-Tags` carries them.
    pub tags: String,
    /// The certificate's issuer and serial, by which its other encodings are recognised.
    pub issuer_serial: Option<IssuerSerial>,
    pub facts: AgentFacts,
    /// Unix seconds; with `version`, decides which of two rows for one certificate counts.
    pub created_at: i64,
    pub version: i64,
}

impl From<&Agent> for IndexedAgent {
    fn from(agent: &Agent) -> Self {
        Self {
            id: agent.id,
            hostname: agent.hostname.as_str().to_owned(),
            tags: agent.tags.joined(),
            issuer_serial: agent.issuer_serial,
            facts: agent.facts(),
            created_at: agent.created_at.unix_timestamp(),
            version: agent.version,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Active,
    Disabled,
    Revoked,
    Expired,
    CaRemoved,
    CaExpired,
}

impl AgentStatus {
    pub const ALL: [AgentStatus; 6] = [
        Self::Active,
        Self::Disabled,
        Self::Revoked,
        Self::Expired,
        Self::CaRemoved,
        Self::CaExpired,
    ];

    /// The first condition verify would refuse the certificate for, in verify's order: a
    /// revoked agent reads `revoked` even if also disabled, a disabled one `disabled` even if
    /// expired. `ca_not_after` is `None` once the CA is no longer live. Unix seconds.
    pub fn of(facts: &AgentFacts, ca_not_after: Option<i64>, now: i64) -> Self {
        match ca_not_after {
            _ if facts.revoked => Self::Revoked,
            None => Self::CaRemoved,
            _ if facts.ca_removed => Self::CaRemoved,
            Some(ca_not_after) if now > ca_not_after => Self::CaExpired,
            _ if !facts.enabled => Self::Disabled,
            _ if now > facts.not_after => Self::Expired,
            _ => Self::Active,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::CaRemoved => "ca_removed",
            Self::CaExpired => "ca_expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

impl Agent {
    /// What verify judges the agent by.
    pub fn facts(&self) -> AgentFacts {
        AgentFacts {
            fingerprint: self.fingerprint,
            fingerprint_sha1: self.fingerprint_sha1,
            ca_id: self.ca_id,
            enabled: self.enabled,
            revoked: self.revoked_at.is_some(),
            ca_removed: self.ca_removed_at.is_some(),
            not_before: self.not_before.unix_timestamp(),
            not_after: self.not_after.unix_timestamp(),
            allowed_ips: self.allowed_ips.clone(),
        }
    }

    /// As verify would judge the agent at `now`, to the second (see [`AgentStatus::of`]).
    pub fn status(&self, now: OffsetDateTime) -> AgentStatus {
        AgentStatus::of(
            &self.facts(),
            Some(self.ca_not_after.unix_timestamp()),
            now.unix_timestamp(),
        )
    }
}

/// 1–253 printable ASCII characters without spaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Hostname(String);

impl Hostname {
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        if text.is_empty() || text.len() > 253 {
            return Err("hostname must be 1 to 253 characters");
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("hostname must be printable ASCII without spaces");
        }
        Ok(Self(text.to_owned()))
    }

    /// Turns a certificate name (DNS SAN or CN) into a hostname, if it is one.
    pub fn from_certificate_name(name: &str) -> Option<Self> {
        Self::parse(name).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At most 32 tags, each 1–64 characters of letters, digits, `.`, `_`, `-`, `:`.
/// No commas: tags travel comma-separated in `X-Agent-Tags`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Tags(Vec<String>);

impl Tags {
    pub fn parse(tags: &[String]) -> Result<Self, String> {
        if tags.len() > MAX_TAGS {
            return Err(format!("at most {MAX_TAGS} tags"));
        }
        let mut out: Vec<String> = Vec::with_capacity(tags.len());
        for tag in tags {
            if !is_valid_tag(tag) {
                return Err(format!(
                    "tag `{}` must be 1 to 64 characters of letters, digits, '.', '_', '-', ':'",
                    tag.chars().take(64).collect::<String>()
                ));
            }
            if !out.contains(tag) {
                out.push(tag.clone());
            }
        }
        Ok(Self(out))
    }

    pub fn single(tag: &str) -> Self {
        Self(vec![tag.to_owned()])
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn joined(&self) -> String {
        self.0.join(",")
    }
}

pub fn is_valid_tag(tag: &str) -> bool {
    (1..=64).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// Up to 1024 characters.
pub fn parse_description(text: &str) -> Result<String, &'static str> {
    if text.chars().count() > 1024 {
        return Err("description must be at most 1024 characters");
    }
    Ok(text.to_owned())
}

/// Networks an agent may call from. Empty means no restriction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedIps(Vec<IpNet>);

/// More entries than any sane allow list; keeps one request from storing megabytes.
const MAX_ALLOWED_IPS: usize = 256;

impl AllowedIps {
    /// Accepts IPv4/IPv6 addresses and CIDRs. Addresses become host networks.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        if items.len() > MAX_ALLOWED_IPS {
            return Err(format!("at most {MAX_ALLOWED_IPS} allowed_ips entries"));
        }
        items
            .iter()
            .map(|item| {
                let item = item.trim();
                item.parse::<IpNet>()
                    .map(|net| net.trunc())
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "`{}` is not an IP address or CIDR",
                            item.chars().take(64).collect::<String>()
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn from_networks(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }

    pub fn is_unrestricted(&self) -> bool {
        self.0.is_empty()
    }

    /// An IPv4-mapped IPv6 address is compared as the IPv4 address it carries.
    pub fn allows(&self, ip: Option<IpAddr>) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(ip) = ip.map(canonical_ip) else {
            return false;
        };
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn hostname_rules() {
        assert!(Hostname::parse("worker-01.internal").is_ok());
        assert!(Hostname::parse(&"a".repeat(253)).is_ok());
        for bad in ["", "has space", "tab\there", "ünïcode", &"a".repeat(254)] {
            assert!(Hostname::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tag_rules() {
        assert!(Tags::parse(&strings(&["prod", "a.b_c-d:e", &"x".repeat(64)])).is_ok());
        for bad in ["", "with,comma", "with space", "é", &"x".repeat(65)] {
            assert!(Tags::parse(&strings(&[bad])).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(&many).is_err());
        assert_eq!(
            Tags::parse(&strings(&["a", "a"])).unwrap().as_slice(),
            ["a"]
        );
    }

    #[test]
    fn allowed_ips_match_v4_v6_and_mapped_addresses() {
        let allow =
            AllowedIps::parse(&strings(&["10.0.0.0/8", "2001:db8::/32", "192.168.1.7"])).unwrap();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(allow.allows(ip("10.1.2.3")));
        assert!(allow.allows(ip("::ffff:10.1.2.3")));
        assert!(allow.allows(ip("2001:db8::1")));
        assert!(allow.allows(ip("192.168.1.7")));
        assert!(!allow.allows(ip("192.168.1.8")));
        assert!(!allow.allows(None), "unknown client IP fails closed");
        assert!(AllowedIps::default().allows(None));
        assert!(AllowedIps::parse(&strings(&["10.0.0.0/33"])).is_err());
        assert!(AllowedIps::parse(&strings(&["example.com"])).is_err());
    }
}
