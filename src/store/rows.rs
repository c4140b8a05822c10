//! Row types as both backends return them, and their conversion to domain types.

use std::str::FromStr;

use time::OffsetDateTime;

use super::{StoreError, StoredAuditEvent};
use crate::domain::agent::{
    Agent, AllowedIps, Hostname, IndexedAgent, SupersededCertificate, Tags,
};
use crate::domain::approval::{HostRequest, HostRequestStatus};
use crate::domain::ca::Ca;
use crate::domain::enrolment::{PendingEnrolment, Profile, TokenDigest};
use crate::domain::policy::Policy;
use crate::domain::verify::AgentFacts;
use crate::domain::{
    AgentId, CaId, Fingerprint, HostRequestId, IssuerSerial, PresentedFingerprint, Sha1Fingerprint,
};

pub const AGENT_COLUMNS: &str = "id, hostname, description, tags, ca_id, fingerprint, \
     fingerprint_sha1, subject, serial, issuer_serial, not_before, not_after, enabled, \
     allowed_ips, created_at, updated_at, revoked_at, ca_removed_at, \
     (SELECT last_seen_at FROM agent_sightings WHERE agent_id = agents.id) AS last_seen_at, \
     (SELECT last_seen_ip FROM agent_sightings WHERE agent_id = agents.id) AS last_seen_ip, \
     version, profile, \
     COALESCE((SELECT not_after FROM cas WHERE cas.id = agents.ca_id), 0) AS ca_not_after";

/// The fields the trust index keeps, packed into one tab-separated line per agent: SQLite
/// copies every value out of a row under its global allocator lock, so loading a million
/// rows of fourteen columns is mostly lock traffic. No packed field can hold a tab or a
/// line break (hostnames, tags and the JSON of allow lists are validated printable text).
macro_rules! index_line {
    () => {
        "id || '\t' || ca_id || '\t' || fingerprint || '\t' \
         || fingerprint_sha1 || '\t' || CAST(not_before AS TEXT) || '\t' \
         || CAST(not_after AS TEXT) || '\t' || CASE WHEN enabled THEN '1' ELSE '0' END || '\t' \
         || CASE WHEN revoked_at IS NULL THEN '0' ELSE '1' END || '\t' \
         || CASE WHEN ca_removed_at IS NULL THEN '0' ELSE '1' END || '\t' \
         || CAST(created_at AS TEXT) || '\t' || CAST(version AS TEXT) || '\t' \
         || COALESCE(issuer_serial, '') || '\t' || hostname \
         || '\t' || tags || '\t' || allowed_ips"
    };
}

/// One index line per agent, as a row each.
pub const INDEX_AGENTS_SQL: &str = concat!("SELECT ", index_line!(), " FROM agents");

/// Up to `$2` index lines, joined by line breaks into one value, of the agents whose rowid
/// follows `$1`, and the last rowid among them (SQLite): a million agents cross from
/// SQLite's thread in a hundred values instead of a million rows.
pub const SQLITE_INDEX_PAGE_SQL: &str = concat!(
    "SELECT group_concat(line, char(10)), max(rowid) FROM (SELECT rowid, ",
    index_line!(),
    " AS line FROM agents WHERE rowid > $1 ORDER BY rowid LIMIT $2)"
);

/// The agents of one page of [`SQLITE_INDEX_PAGE_SQL`].
pub fn indexed_agents(lines: &str) -> Result<Vec<IndexedAgent>, StoreError> {
    lines.split('\n').map(indexed_agent).collect()
}

/// A line of [`INDEX_AGENTS_SQL`]. The fields were validated when they were written, so
/// this only decodes them, allocating the two strings the index keeps.
pub fn indexed_agent(line: &str) -> Result<IndexedAgent, StoreError> {
    let bad = || corrupt("index row");
    let mut fields = line.split('\t');
    let mut next = || fields.next().ok_or_else(bad);
    let number = |text: &str| text.parse::<i64>().map_err(|_| bad());
    let id = AgentId::from_str(next()?).map_err(|_| bad())?;
    let ca_id = CaId::from_str(next()?).map_err(|_| bad())?;
    let fingerprint = Fingerprint::from_bytes(hex_array(next()?)?);
    let fingerprint_sha1 = Sha1Fingerprint::from_bytes(hex_array(next()?)?);
    let not_before = number(next()?)?;
    let not_after = number(next()?)?;
    let enabled = next()? == "1";
    let revoked = next()? == "1";
    let ca_removed = next()? == "1";
    let created_at = number(next()?)? / 1_000_000;
    let version = number(next()?)?;
    let issuer_serial = optional_identity(next()?)?;
    let hostname = next()?.to_owned();
    let tags = serde_json::from_str::<Vec<&str>>(next()?)
        .map_err(|_| corrupt("tags"))?
        .join(",");
    let allowed_ips = match next()? {
        "[]" => AllowedIps::default(),
        list => AllowedIps::parse(&parse_list(list, "allowed_ips")?)
            .map_err(|_| corrupt("allowed_ips"))?,
    };
    Ok(IndexedAgent {
        id,
        hostname,
        tags,
        issuer_serial,
        facts: AgentFacts {
            fingerprint,
            fingerprint_sha1,
            ca_id,
            enabled,
            revoked,
            ca_removed,
            not_before,
            not_after,
            allowed_ips,
        },
        created_at,
        version,
    })
}

/// An identity column: hex, or empty/NULL on a row an older certgate wrote.
fn optional_identity(text: &str) -> Result<Option<IssuerSerial>, StoreError> {
    if text.is_empty() {
        return Ok(None);
    }
    IssuerSerial::parse(text)
        .map(Some)
        .ok_or_else(|| corrupt("issuer_serial"))
}

fn hex_array<const N: usize>(text: &str) -> Result<[u8; N], StoreError> {
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| corrupt("fingerprint"))?;
    Ok(bytes)
}

pub const CA_COLUMNS: &str = "id, name, fingerprint, subject, not_before, not_after, \
     certificate_pem, created_at, removed_at, internal";

/// A CA's agents that are not revoked. It reads every agent of the CA: only the admin
/// API's CA answers show it, never a write path.
pub const CA_AGENT_COUNT: &str =
    "(SELECT COUNT(*) FROM agents a WHERE a.ca_id = cas.id AND a.revoked_at IS NULL)";

#[derive(sqlx::FromRow)]
pub struct AgentRow {
    id: String,
    hostname: String,
    description: Option<String>,
    tags: String,
    ca_id: String,
    fingerprint: String,
    fingerprint_sha1: String,
    subject: String,
    serial: String,
    issuer_serial: Option<String>,
    not_before: i64,
    not_after: i64,
    enabled: bool,
    allowed_ips: String,
    created_at: i64,
    updated_at: i64,
    revoked_at: Option<i64>,
    ca_removed_at: Option<i64>,
    last_seen_at: Option<i64>,
    last_seen_ip: Option<String>,
    version: i64,
    profile: String,
    ca_not_after: i64,
}

#[derive(sqlx::FromRow)]
pub struct CaRow {
    id: String,
    name: String,
    fingerprint: String,
    subject: String,
    not_before: i64,
    not_after: i64,
    certificate_pem: String,
    created_at: i64,
    removed_at: Option<i64>,
    internal: bool,
}

/// A row of `audit_events`.
#[derive(sqlx::FromRow)]
pub struct AuditRow {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    target_type: String,
    target_id: String,
    request_id: Option<String>,
    source_ip: Option<String>,
    details: String,
}

impl TryFrom<AuditRow> for StoredAuditEvent {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<Self, StoreError> {
        Ok(StoredAuditEvent {
            id: row.id,
            at: from_micros(row.at)?,
            actor: row.actor,
            action: row.action,
            target_type: row.target_type,
            target_id: row.target_id,
            request_id: row.request_id,
            source_ip: row.source_ip,
            details: row.details,
        })
    }
}

/// A CA with its count of agents that are not revoked.
#[derive(sqlx::FromRow)]
pub struct CountedCaRow {
    #[sqlx(flatten)]
    pub ca: CaRow,
    pub agent_count: i64,
}

pub const ENROLMENT_COLUMNS: &str = "agent_id, hostname, description, tags, allowed_ips, \
     profile, token_hash, expires_at, created_at, used_at";

#[derive(sqlx::FromRow)]
pub struct EnrolmentRow {
    agent_id: String,
    hostname: String,
    description: Option<String>,
    tags: String,
    allowed_ips: String,
    profile: String,
    token_hash: String,
    expires_at: i64,
    created_at: i64,
    used_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub struct PolicyRow {
    enforcement_enabled: bool,
    reject_unknown_certs: bool,
    auto_enroll: bool,
    updated_at: i64,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

pub fn from_micros(value: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 1000)
        .map_err(|_| corrupt("timestamp"))
}

fn from_seconds(value: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(value).map_err(|_| corrupt("validity"))
}

pub fn hex_of(fp: &Fingerprint) -> String {
    hex::encode(fp.as_bytes())
}

pub fn identity_text(identity: Option<&IssuerSerial>) -> Option<String> {
    identity.map(ToString::to_string)
}

fn sha256(text: &str) -> Result<Fingerprint, StoreError> {
    match PresentedFingerprint::parse(text) {
        Some(PresentedFingerprint::Sha256(fp)) => Ok(fp),
        _ => Err(corrupt("fingerprint")),
    }
}

fn sha1(text: &str) -> Result<Sha1Fingerprint, StoreError> {
    match PresentedFingerprint::parse(text) {
        Some(PresentedFingerprint::Sha1(fp)) => Ok(fp),
        _ => Err(corrupt("fingerprint_sha1")),
    }
}

pub fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_list(text: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|_| corrupt(what))
}

impl TryFrom<AgentRow> for Agent {
    type Error = StoreError;

    fn try_from(row: AgentRow) -> Result<Self, StoreError> {
        Ok(Agent {
            id: AgentId::from_str(&row.id).map_err(|_| corrupt("agent id"))?,
            hostname: Hostname::parse(&row.hostname).map_err(corrupt)?,
            description: row.description,
            tags: Tags::parse(&parse_list(&row.tags, "tags")?).map_err(|_| corrupt("tags"))?,
            ca_id: CaId::from_str(&row.ca_id).map_err(|_| corrupt("ca id"))?,
            fingerprint: sha256(&row.fingerprint)?,
            fingerprint_sha1: sha1(&row.fingerprint_sha1)?,
            subject: row.subject,
            serial: row.serial,
            issuer_serial: optional_identity(row.issuer_serial.as_deref().unwrap_or_default())?,
            not_before: from_seconds(row.not_before)?,
            not_after: from_seconds(row.not_after)?,
            ca_not_after: from_seconds(row.ca_not_after)?,
            enabled: row.enabled,
            allowed_ips: AllowedIps::parse(&parse_list(&row.allowed_ips, "allowed_ips")?)
                .map_err(|_| corrupt("allowed_ips"))?,
            profile: Profile::parse(&row.profile).map_err(corrupt)?,
            created_at: from_micros(row.created_at)?,
            updated_at: from_micros(row.updated_at)?,
            revoked_at: row.revoked_at.map(from_micros).transpose()?,
            ca_removed_at: row.ca_removed_at.map(from_micros).transpose()?,
            last_seen_at: row.last_seen_at.map(from_micros).transpose()?,
            last_seen_ip: row.last_seen_ip,
            version: row.version,
        })
    }
}

impl TryFrom<CaRow> for Ca {
    type Error = StoreError;

    fn try_from(row: CaRow) -> Result<Self, StoreError> {
        Ok(Ca {
            id: CaId::from_str(&row.id).map_err(|_| corrupt("ca id"))?,
            name: row.name,
            fingerprint: sha256(&row.fingerprint)?,
            subject: row.subject,
            not_before: from_seconds(row.not_before)?,
            not_after: from_seconds(row.not_after)?,
            certificate_pem: row.certificate_pem,
            created_at: from_micros(row.created_at)?,
            removed_at: row.removed_at.map(from_micros).transpose()?,
            internal: row.internal,
        })
    }
}

impl TryFrom<EnrolmentRow> for PendingEnrolment {
    type Error = StoreError;

    fn try_from(row: EnrolmentRow) -> Result<Self, StoreError> {
        Ok(PendingEnrolment {
            agent_id: AgentId::from_str(&row.agent_id).map_err(|_| corrupt("agent id"))?,
            hostname: Hostname::parse(&row.hostname).map_err(corrupt)?,
            description: row.description,
            tags: Tags::parse(&parse_list(&row.tags, "tags")?).map_err(|_| corrupt("tags"))?,
            allowed_ips: AllowedIps::parse(&parse_list(&row.allowed_ips, "allowed_ips")?)
                .map_err(|_| corrupt("allowed_ips"))?,
            profile: Profile::parse(&row.profile).map_err(corrupt)?,
            token_digest: TokenDigest::from_stored(row.token_hash),
            expires_at: from_micros(row.expires_at)?,
            created_at: from_micros(row.created_at)?,
            used_at: row.used_at.map(from_micros).transpose()?,
        })
    }
}

pub const REQUEST_COLUMNS: &str = "id, hostname, machine_id, ip_address, os_details, csr_pem, \
     key_sha256, token_hash, status, agent_id, created_at, expires_at, decided_at";

#[derive(sqlx::FromRow)]
pub struct RequestRow {
    id: String,
    hostname: String,
    machine_id: String,
    ip_address: String,
    os_details: String,
    csr_pem: String,
    key_sha256: String,
    token_hash: String,
    status: String,
    agent_id: Option<String>,
    created_at: i64,
    expires_at: i64,
    decided_at: Option<i64>,
}

impl TryFrom<RequestRow> for HostRequest {
    type Error = StoreError;

    fn try_from(row: RequestRow) -> Result<Self, StoreError> {
        Ok(HostRequest {
            id: HostRequestId::from_str(&row.id).map_err(|_| corrupt("request id"))?,
            hostname: Hostname::parse(&row.hostname).map_err(corrupt)?,
            machine_id: row.machine_id,
            ip_address: row.ip_address.parse().map_err(|_| corrupt("ip_address"))?,
            os_details: row.os_details,
            csr_pem: row.csr_pem,
            key_sha256: sha256(&row.key_sha256)?,
            token_digest: TokenDigest::from_stored(row.token_hash),
            status: HostRequestStatus::parse(&row.status)
                .ok_or_else(|| corrupt("request status"))?,
            agent_id: row
                .agent_id
                .map(|id| AgentId::from_str(&id).map_err(|_| corrupt("agent id")))
                .transpose()?,
            created_at: from_micros(row.created_at)?,
            expires_at: from_micros(row.expires_at)?,
            decided_at: row.decided_at.map(from_micros).transpose()?,
        })
    }
}

pub const SUPERSEDED_COLUMNS: &str = "agent_id, ca_id, serial, issuer_serial, fingerprint, \
     fingerprint_sha1, not_before, not_after, revoked";

pub type SupersededRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    i64,
    bool,
);

/// A `superseded_certificates` row, as [`SUPERSEDED_COLUMNS`] lists it.
pub fn superseded_certificate(
    (
        agent_id,
        ca_id,
        serial,
        issuer_serial,
        fingerprint,
        fingerprint_sha1,
        not_before,
        not_after,
        revoked,
    ): SupersededRow,
) -> Result<SupersededCertificate, StoreError> {
    Ok(SupersededCertificate {
        agent_id: AgentId::from_str(&agent_id).map_err(|_| corrupt("agent id"))?,
        ca_id: CaId::from_str(&ca_id).map_err(|_| corrupt("ca id"))?,
        serial,
        issuer_serial: optional_identity(issuer_serial.as_deref().unwrap_or_default())?,
        fingerprint: sha256(&fingerprint)?,
        fingerprint_sha1: sha1(&fingerprint_sha1)?,
        not_before,
        not_after,
        revoked,
    })
}

impl TryFrom<PolicyRow> for Policy {
    type Error = StoreError;

    fn try_from(row: PolicyRow) -> Result<Self, StoreError> {
        Ok(Policy {
            enforcement_enabled: row.enforcement_enabled,
            reject_unknown_certs: row.reject_unknown_certs,
            auto_enroll: row.auto_enroll,
            updated_at: from_micros(row.updated_at)?,
        })
    }
}

/// `tags` holds a JSON array; a tag matches when `"tag"` appears in it. Tags cannot hold
/// quotes or `%`, but `_` is a LIKE wildcard and must be escaped.
pub fn tag_pattern(tag: &str) -> String {
    format!("%\"{}\"%", escape_like(tag))
}

pub fn contains_pattern(text: &str) -> String {
    format!("%{}%", escape_like(&text.to_lowercase()))
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
