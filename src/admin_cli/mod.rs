//! `certgate admin`: the admin API for people at a terminal and for scripts. Each command
//! is one or a few API calls; tables by default, the API's own JSON with `--output json`.
//! Exit codes: 0 done, 1 refused by certgate or certgate unreachable, 2 a usage error.

mod client;
mod table;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{
    AdminArgs, AdminCommand, AgentFieldArgs, AgentsAdmin, AuditArgs, CaAdmin, ConfigAdmin,
    EnrollmentsAdmin, Output, PageArgs, RequestsAdmin,
};
use crate::config::{DEFAULT_BASE_PATH, named_token};
use client::{AdminClient, List, Paging};
use table::Column;

pub use client::Failure;

impl Failure {
    /// 2 for a usage error, 1 for anything else that went wrong.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Refused { .. } | Failure::Failed(_) => ExitCode::FAILURE,
        }
    }
}

/// Runs the command and answers what to print.
pub async fn execute(args: AdminArgs) -> Result<String, Failure> {
    let token = admin_token(args.token.as_deref())?;
    let client = AdminClient::new(&args.url, &args.base_path, token, args.cacert.as_deref())?;
    let session = Session {
        client,
        output: args.output,
        agent_url: args.agent_url.unwrap_or(args.url),
        base_path: args.base_path,
        cacert: args.cacert.map(|path| path.display().to_string()),
    };
    match args.command {
        AdminCommand::Ca { command } => session.ca(command).await,
        AdminCommand::Agents { command } => session.agents(command).await,
        AdminCommand::Enrollments { command } => session.enrollments(command).await,
        AdminCommand::Requests { command } => session.requests(command).await,
        AdminCommand::Config { command } => session.config(command).await,
        AdminCommand::Audit(audit) => session.audit(audit).await,
        AdminCommand::Expiring { within } => session.expiring(within).await,
    }
}

/// The token to send: `--token` or `CERTGATE_ADMIN_TOKEN` (the server's variable: its first
/// entry, without a `name:`), else the file `CERTGATE_ADMIN_TOKEN_FILE` names.
fn admin_token(given: Option<&str>) -> Result<String, Failure> {
    let from_file;
    let entries = match given {
        Some(given) => given,
        None => {
            let Some(path) = std::env::var_os("CERTGATE_ADMIN_TOKEN_FILE") else {
                return Err(Failure::Usage(
                    "no admin token: pass --token, or set CERTGATE_ADMIN_TOKEN or \
                     CERTGATE_ADMIN_TOKEN_FILE"
                        .to_owned(),
                ));
            };
            from_file = std::fs::read_to_string(&path).map_err(|e| {
                Failure::Usage(format!(
                    "CERTGATE_ADMIN_TOKEN_FILE {}: {e}",
                    Path::new(&path).display()
                ))
            })?;
            from_file.as_str()
        }
    };
    let first = entries.split(',').next().unwrap_or_default().trim();
    let token = named_token(first).map_or(first, |(_, token)| token);
    if token.is_empty() {
        return Err(Failure::Usage("the admin token is empty".to_owned()));
    }
    Ok(token.to_owned())
}

struct Session {
    client: AdminClient,
    output: Output,
    /// For the commands printed for an agent host: where it reaches certgate, under which
    /// base path, trusting which CA.
    agent_url: String,
    base_path: String,
    cacert: Option<String>,
}

impl Session {
    async fn ca(&self, command: CaAdmin) -> Result<String, Failure> {
        match command {
            CaAdmin::List(list) => {
                let query = optional([("sort", list.sort)]);
                let cas = self.client.list("/ca", &query, paging(&list.page)).await?;
                Ok(self.list(table::CAS, &cas, "CAs"))
            }
            CaAdmin::Show { id } => {
                let ca = self
                    .client
                    .get(&format!("/ca/{}", segment(&id)?), &[])
                    .await?;
                Ok(self.item(&ca, &["certificate"], |ca| {
                    ca["certificate"].as_str().map(str::to_owned)
                }))
            }
            CaAdmin::Add { name, certificate } => {
                let pem = read_input(&certificate)?;
                let body = json!({"name": name, "certificate": pem});
                let ca = self.created(Method::POST, "/ca", &body).await?;
                Ok(self.item(&ca, &["certificate"], |_| None))
            }
            CaAdmin::Remove { id } => {
                self.client
                    .call(Method::DELETE, &format!("/ca/{}", segment(&id)?), None)
                    .await?;
                Ok(self.done(
                    json!({"removed": id}),
                    format!("CA {id} removed: its agents are denied (ca_removed) from now on"),
                ))
            }
        }
    }

    async fn agents(&self, command: AgentsAdmin) -> Result<String, Failure> {
        match command {
            AgentsAdmin::List(list) => {
                let pending = list.status.as_deref() == Some("pending");
                let mut query = optional([
                    ("status", list.status),
                    ("tag", list.tag),
                    ("ca_id", list.ca),
                    ("q", list.query),
                    ("sort", list.sort),
                ]);
                if list.include_revoked {
                    query.push(("include_revoked", "true".to_owned()));
                }
                let agents = self
                    .client
                    .list("/agents", &query, paging(&list.page))
                    .await?;
                let columns = if pending {
                    table::PENDING
                } else {
                    table::AGENTS
                };
                Ok(self.list(columns, &agents, "agents"))
            }
            AgentsAdmin::Show { id } => {
                let agent = self.client.get(&agent_path(&id, "")?, &[]).await?;
                Ok(self.item(&agent, &[], |_| None))
            }
            AgentsAdmin::Enrol {
                hostname,
                ca,
                certificate,
                fields,
            } => {
                let mut body = field_body(&fields);
                body.insert("hostname".into(), hostname.into());
                body.insert("ca_id".into(), ca.into());
                body.insert("certificate".into(), read_input(&certificate)?.into());
                let agent = self.created(Method::POST, "/agents", &body.into()).await?;
                Ok(self.item(&agent, &[], |_| None))
            }
            AgentsAdmin::Update {
                id,
                hostname,
                fields,
                clear_description,
                any_ip,
            } => {
                let mut body = field_body(&fields);
                if let Some(hostname) = hostname {
                    body.insert("hostname".into(), hostname.into());
                }
                if clear_description {
                    body.insert("description".into(), Value::Null);
                }
                if any_ip {
                    body.insert("allowed_ips".into(), Value::Null);
                }
                if body.is_empty() {
                    return Err(Failure::Usage(
                        "nothing to change: give --hostname, --description, --tag, \
                         --allowed-ip, --clear-description or --any-ip"
                            .to_owned(),
                    ));
                }
                let path = agent_path(&id, "")?;
                let agent = self.created(Method::PUT, &path, &body.into()).await?;
                Ok(self.item(&agent, &[], |_| None))
            }
            AgentsAdmin::Enable { id } => self.toggle(&id, true).await,
            AgentsAdmin::Disable { id } => self.toggle(&id, false).await,
            AgentsAdmin::Revoke { id } => {
                self.client
                    .call(Method::DELETE, &agent_path(&id, "")?, None)
                    .await?;
                Ok(self.done(
                    json!({"revoked": id}),
                    format!("agent {id} revoked: refused from the next request on"),
                ))
            }
            AgentsAdmin::Token { id, ttl } => {
                let body = json!({"ttl_seconds": ttl.map(|ttl| ttl.as_secs())});
                let issued = self
                    .created(Method::POST, &agent_path(&id, "/token")?, &body)
                    .await?;
                Ok(self.token_issued(&issued))
            }
        }
    }

    async fn toggle(&self, id: &str, enabled: bool) -> Result<String, Failure> {
        let body = json!({ "enabled": enabled });
        let agent = self
            .created(Method::PUT, &agent_path(id, "/toggle")?, &body)
            .await?;
        let word = if enabled { "enabled" } else { "disabled" };
        let hostname = agent["hostname"].as_str().unwrap_or_default().to_owned();
        Ok(self.done(agent, format!("agent {id} ({hostname}) {word}")))
    }

    async fn enrollments(&self, command: EnrollmentsAdmin) -> Result<String, Failure> {
        match command {
            EnrollmentsAdmin::Create {
                hostname,
                profile,
                ttl,
                fields,
            } => {
                let mut body = field_body(&fields);
                body.insert("hostname".into(), hostname.into());
                if let Some(profile) = profile {
                    body.insert("profile".into(), profile.into());
                }
                if let Some(ttl) = ttl {
                    body.insert("ttl_seconds".into(), ttl.as_secs().into());
                }
                let issued = self
                    .created(Method::POST, "/enrollments", &body.into())
                    .await?;
                Ok(self.token_issued(&issued))
            }
            EnrollmentsAdmin::List(page) => {
                let pending = self.client.list("/enrollments", &[], paging(&page)).await?;
                Ok(self.list(table::PENDING, &pending, "pending agents"))
            }
        }
    }

    async fn requests(&self, command: RequestsAdmin) -> Result<String, Failure> {
        match command {
            RequestsAdmin::List { status, page } => {
                let query = [("status", status)];
                let requests = self
                    .client
                    .list("/enroll/requests", &query, paging(&page))
                    .await?;
                Ok(self.list(table::REQUESTS, &requests, "requests"))
            }
            RequestsAdmin::Approve {
                id,
                profile,
                fields,
                allow_shared_ip,
            } => {
                let mut body = field_body(&fields);
                if let Some(profile) = profile {
                    body.insert("profile".into(), profile.into());
                }
                if allow_shared_ip {
                    body.insert("allow_shared_ip".into(), true.into());
                }
                let path = format!("/enroll/requests/{}/approve", segment(&id)?);
                let request = self.created(Method::POST, &path, &body.into()).await?;
                Ok(self.item(&request, &["os_details"], |_| None))
            }
            RequestsAdmin::Deny { id } => {
                let path = format!("/enroll/requests/{}/deny", segment(&id)?);
                let request = self.created(Method::POST, &path, &json!({})).await?;
                Ok(self.item(&request, &["os_details"], |_| None))
            }
        }
    }

    async fn config(&self, command: ConfigAdmin) -> Result<String, Failure> {
        let policy = match command {
            ConfigAdmin::Show => self.client.get("/config", &[]).await?,
            ConfigAdmin::Set {
                enforcement,
                reject_unknown,
                auto_enroll,
            } => {
                let mut body = Map::new();
                let switches = [
                    ("enforcement_enabled", enforcement),
                    ("reject_unknown_certs", reject_unknown),
                    ("auto_enroll", auto_enroll),
                ];
                for (name, value) in switches {
                    if let Some(value) = value {
                        body.insert(name.into(), value.into());
                    }
                }
                if body.is_empty() {
                    return Err(Failure::Usage(
                        "nothing to change: give --enforcement, --reject-unknown or \
                         --auto-enroll"
                            .to_owned(),
                    ));
                }
                self.created(Method::PUT, "/config", &body.into()).await?
            }
        };
        let mut printed = self.item(&policy, &[], |_| None);
        if self.output == Output::Table {
            if policy["enforcement_enabled"] == false {
                printed.push_str("warning: audit mode: every certificate passes\n");
            }
            if policy["auto_enroll"] == true {
                printed.push_str(
                    "warning: auto-enrolment: any certificate of a trusted CA enrols itself\n",
                );
            }
        }
        Ok(printed)
    }

    async fn audit(&self, audit: AuditArgs) -> Result<String, Failure> {
        let mut query = optional([
            ("actor", audit.actor),
            ("action", audit.action),
            ("target_id", audit.target),
        ]);
        if let Some(since) = audit.since {
            query.push(("since", point_in_time("--since", &since)?));
        }
        if let Some(until) = audit.until {
            query.push(("until", point_in_time("--until", &until)?));
        }
        let events = self
            .client
            .list("/audit", &query, paging(&audit.page))
            .await?;
        Ok(self.list(table::AUDIT, &events, "events"))
    }

    async fn expiring(&self, within: Duration) -> Result<String, Failure> {
        let before = OffsetDateTime::now_utc() + within;
        let before = before
            .format(&Rfc3339)
            .map_err(|e| Failure::Usage(format!("--within: {e}")))?;
        let agents_query = [
            ("status", "active".to_owned()),
            ("expires_before", before.clone()),
            ("sort", "not_after".to_owned()),
        ];
        let agents = self
            .client
            .list("/agents", &agents_query, Paging::All)
            .await?;
        let cas_query = [
            ("expires_before", before.clone()),
            ("sort", "not_after".to_owned()),
        ];
        let cas = self.client.list("/ca", &cas_query, Paging::All).await?;
        if self.output == Output::Json {
            return Ok(pretty(
                &json!({"expires_before": before, "agents": agents.items, "cas": cas.items}),
            ));
        }
        let window = match within.as_secs() {
            seconds if seconds % 86_400 == 0 => format!("{} days", seconds / 86_400),
            _ => humantime::format_duration(within).to_string(),
        };
        let mut printed = format!("Expiring within {window} (before {before}):\n\n");
        for (title, columns, list) in [
            ("CAs", table::CAS, &cas),
            ("Agents", table::AGENTS, &agents),
        ] {
            if list.items.is_empty() {
                printed.push_str(&format!("{title}: none\n\n"));
            } else {
                printed.push_str(&format!("{title}: {}\n", list.items.len()));
                printed.push_str(&table::rows(columns, &list.items));
                printed.push_str("\n\n");
            }
        }
        Ok(printed)
    }

    /// A write's JSON answer (certgate answers every write but a delete with the item).
    async fn created(&self, method: Method, path: &str, body: &Value) -> Result<Value, Failure> {
        self.client
            .call(method, path, Some(body))
            .await?
            .ok_or_else(|| Failure::Failed(anyhow::anyhow!("{path} answered nothing")))
    }

    fn list(&self, columns: &[Column], list: &List, what: &str) -> String {
        match self.output {
            Output::Json => pretty(&json!({"items": list.items, "total": list.total})),
            Output::Table if list.items.is_empty() => format!("no {what}\n"),
            Output::Table => {
                let mut printed = table::rows(columns, &list.items);
                printed.push('\n');
                if (list.items.len() as u64) < list.total {
                    printed.push_str(&format!(
                        "{} of {} {what} (--all for every one, or --limit/--offset)\n",
                        list.items.len(),
                        list.total
                    ));
                }
                printed
            }
        }
    }

    /// One item: its fields (without `skip`), then whatever `tail` adds (a PEM).
    fn item(&self, item: &Value, skip: &[&str], tail: impl Fn(&Value) -> Option<String>) -> String {
        match self.output {
            Output::Json => pretty(item),
            Output::Table => {
                let mut printed = table::fields(item, skip);
                printed.push('\n');
                if let Some(tail) = tail(item) {
                    printed.push('\n');
                    printed.push_str(&tail);
                    if !tail.ends_with('\n') {
                        printed.push('\n');
                    }
                }
                printed
            }
        }
    }

    fn done(&self, answer: Value, sentence: String) -> String {
        match self.output {
            Output::Json => pretty(&answer),
            Output::Table => format!("{sentence}\n"),
        }
    }

    /// A one-time token, shown this once, with what to run on the agent host.
    fn token_issued(&self, issued: &Value) -> String {
        if self.output == Output::Json {
            return pretty(issued);
        }
        let field = |name: &str| issued[name].as_str().unwrap_or_default().to_owned();
        let cacert = self
            .cacert
            .as_ref()
            .map(|path| format!(" --cacert {path}"))
            .unwrap_or_default();
        let base_path = if self.base_path.trim_end_matches('/') == DEFAULT_BASE_PATH {
            String::new()
        } else {
            format!(" --base-path {}", self.base_path)
        };
        format!(
            "agent    {}\nhostname {}\nprofile  {}\ntoken    {}\nexpires  {}\n\n\
             The token is shown this once. On the agent host:\n  \
             certgate enroll --server {}{base_path}{cacert} --token {}\n",
            field("agent_id"),
            field("hostname"),
            field("profile"),
            field("token"),
            field("expires_at"),
            self.agent_url,
            field("token"),
        )
    }
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

fn paging(page: &PageArgs) -> Paging {
    if page.all {
        Paging::All
    } else {
        Paging::One {
            limit: page.limit,
            offset: page.offset,
        }
    }
}

/// The query pairs whose value was given.
fn optional<const N: usize>(
    pairs: [(&'static str, Option<String>); N],
) -> Vec<(&'static str, String)> {
    pairs
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value)))
        .collect()
}

/// The optional agent fields as a JSON body: given ones only.
fn field_body(fields: &AgentFieldArgs) -> Map<String, Value> {
    let mut body = Map::new();
    if let Some(description) = &fields.description {
        body.insert("description".into(), description.clone().into());
    }
    if !fields.tags.is_empty() {
        body.insert("tags".into(), fields.tags.clone().into());
    }
    if !fields.allowed_ip.is_empty() {
        body.insert("allowed_ips".into(), fields.allowed_ip.clone().into());
    }
    body
}

/// An id as one path segment: anything that could change the path is refused here.
fn segment(id: &str) -> Result<&str, Failure> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(Failure::Usage(format!("{id:?} is not an id")));
    }
    Ok(id)
}

fn agent_path(id: &str, rest: &str) -> Result<String, Failure> {
    Ok(format!("/agents/{}{rest}", segment(id)?))
}

/// A file's text, or standard input for `-`.
fn read_input(path: &Path) -> Result<String, Failure> {
    let read = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))
}

/// An RFC 3339 time as given, or a duration (`24h`, `7d`) meaning that long ago.
fn point_in_time(flag: &str, text: &str) -> Result<String, Failure> {
    if OffsetDateTime::parse(text, &Rfc3339).is_ok() {
        return Ok(text.to_owned());
    }
    let ago = humantime::parse_duration(text).map_err(|_| {
        Failure::Usage(format!(
            "{flag} {text}: give an RFC 3339 time (2026-01-31T00:00:00Z) or a duration (24h, 7d)"
        ))
    })?;
    (OffsetDateTime::now_utc() - ago)
        .format(&Rfc3339)
        .map_err(|e| Failure::Usage(format!("{flag}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_the_first_entry_without_its_name() {
        assert_eq!(admin_token(Some("ops:s3cret,ci:other")).unwrap(), "s3cret");
        assert_eq!(admin_token(Some(" bare-token ")).unwrap(), "bare-token");
        assert_eq!(admin_token(Some("token:x")).unwrap(), "token:x");
        assert!(matches!(admin_token(Some("")), Err(Failure::Usage(_))));
    }

    #[test]
    fn ids_cannot_steer_the_path() {
        assert!(segment("0b5e4b0e-3c1f-4d7a-9a51-0a1b2c3d4e5f").is_ok());
        for bad in ["", "../config", "a/b", "a?b", "a%2f"] {
            assert!(matches!(segment(bad), Err(Failure::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn times_are_rfc3339_or_a_duration_ago() {
        assert_eq!(
            point_in_time("--since", "2026-01-31T00:00:00Z").unwrap(),
            "2026-01-31T00:00:00Z"
        );
        let ago = point_in_time("--since", "1h").unwrap();
        let parsed = OffsetDateTime::parse(&ago, &Rfc3339).unwrap();
        let hour = OffsetDateTime::now_utc() - parsed;
        assert!(hour > time::Duration::minutes(59) && hour < time::Duration::minutes(61));
        assert!(point_in_time("--since", "yesterday").is_err());
    }
}
