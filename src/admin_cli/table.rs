//! Tables for people: one row per item, the columns an operator scans for, times shortened
//! to the minute and shown in UTC.

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;

/// A column: its heading and how to show an item's value.
pub struct Column {
    pub heading: &'static str,
    pub show: fn(&Value) -> String,
}

pub const CAS: &[Column] = &[
    Column {
        heading: "ID",
        show: |ca| text(&ca["id"]),
    },
    Column {
        heading: "NAME",
        show: |ca| text(&ca["name"]),
    },
    Column {
        heading: "EXPIRES",
        show: |ca| time(&ca["not_after"]),
    },
    Column {
        heading: "AGENTS",
        show: |ca| text(&ca["agent_count"]),
    },
    Column {
        heading: "INTERNAL",
        show: |ca| yes_no(&ca["internal"]),
    },
];

pub const AGENTS: &[Column] = &[
    Column {
        heading: "ID",
        show: |agent| text(&agent["id"]),
    },
    Column {
        heading: "HOSTNAME",
        show: |agent| text(&agent["hostname"]),
    },
    Column {
        heading: "STATUS",
        show: |agent| text(&agent["status"]),
    },
    Column {
        heading: "EXPIRES",
        show: |agent| time(&agent["not_after"]),
    },
    Column {
        heading: "LAST SEEN",
        show: |agent| seen(agent),
    },
    Column {
        heading: "TAGS",
        show: |agent| list(&agent["tags"]),
    },
];

pub const PENDING: &[Column] = &[
    Column {
        heading: "AGENT ID",
        show: |p| text(&p["id"]),
    },
    Column {
        heading: "HOSTNAME",
        show: |p| text(&p["hostname"]),
    },
    Column {
        heading: "PROFILE",
        show: |p| text(&p["profile"]),
    },
    Column {
        heading: "TOKEN EXPIRES",
        show: |p| time(&p["token_expires_at"]),
    },
];

pub const REQUESTS: &[Column] = &[
    Column {
        heading: "ID",
        show: |r| text(&r["id"]),
    },
    Column {
        heading: "HOSTNAME",
        show: |r| text(&r["hostname"]),
    },
    Column {
        heading: "ADDRESS",
        show: |r| text(&r["ip_address"]),
    },
    Column {
        heading: "KEY SHA-256",
        show: |r| text(&r["key_sha256"]),
    },
    Column {
        heading: "STATUS",
        show: |r| request_status(r),
    },
    Column {
        heading: "CREATED",
        show: |r| time(&r["created_at"]),
    },
];

pub const AUDIT: &[Column] = &[
    Column {
        heading: "AT",
        show: |e| time_seconds(&e["at"]),
    },
    Column {
        heading: "ACTOR",
        show: |e| text(&e["actor"]),
    },
    Column {
        heading: "ACTION",
        show: |e| text(&e["action"]),
    },
    Column {
        heading: "TARGET",
        show: |e| format!("{} {}", text(&e["target_type"]), text(&e["target_id"])),
    },
    Column {
        heading: "FROM",
        show: |e| text(&e["source_ip"]),
    },
    Column {
        heading: "DETAILS",
        show: |e| details(&e["details"]),
    },
];

/// Items as rows under `columns`.
pub fn rows(columns: &[Column], items: &[Value]) -> String {
    let mut table = plain_table();
    table.set_header(columns.iter().map(|c| c.heading));
    for item in items {
        table.add_row(columns.iter().map(|c| (c.show)(item)));
    }
    tidy(&table)
}

/// One item as `field  value` lines, leaving out `skip`.
pub fn fields(item: &Value, skip: &[&str]) -> String {
    let mut table = plain_table();
    if let Some(object) = item.as_object() {
        for (name, value) in object {
            if !skip.contains(&name.as_str()) {
                table.add_row([name.clone(), shown(value)]);
            }
        }
    }
    tidy(&table)
}

/// The table's lines without the padding before the first column and after the last.
fn tidy(table: &Table) -> String {
    table
        .lines()
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(&line)
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn plain_table() -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    table
}

/// A value as a person reads it: strings bare, lists comma-separated, nothing as `-`.
fn shown(value: &Value) -> String {
    match value {
        Value::Array(_) => list(value),
        Value::Bool(_) => yes_no(value),
        Value::Object(_) => value.to_string(),
        _ => text(value),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn list(value: &Value) -> String {
    let items: Vec<String> = value
        .as_array()
        .map(|items| items.iter().map(text).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(",")
    }
}

fn yes_no(value: &Value) -> String {
    match value.as_bool() {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => text(value),
    }
}

/// `2026-12-06T23:04:44Z` as `2026-12-06 23:04`.
fn time(value: &Value) -> String {
    match value.as_str() {
        Some(at) if at.len() >= 16 => at[..16].replacen('T', " ", 1),
        _ => text(value),
    }
}

/// `2026-12-06T23:04:44.123456Z` as `2026-12-06 23:04:44`.
fn time_seconds(value: &Value) -> String {
    match value.as_str() {
        Some(at) if at.len() >= 19 => at[..19].replacen('T', " ", 1),
        _ => text(value),
    }
}

fn seen(agent: &Value) -> String {
    match (
        agent["last_seen_at"].as_str(),
        agent["last_seen_ip"].as_str(),
    ) {
        (Some(_), Some(ip)) => format!("{} {ip}", time(&agent["last_seen_at"])),
        (Some(_), None) => time(&agent["last_seen_at"]),
        _ => "never".to_owned(),
    }
}

fn request_status(request: &Value) -> String {
    if request["expired"].as_bool() == Some(true) && request["status"] == "pending" {
        "expired".to_owned()
    } else {
        text(&request["status"])
    }
}

/// An audit event's details as `key=value` pairs, by key.
fn details(value: &Value) -> String {
    let mut pairs: Vec<String> = value
        .as_object()
        .map(|object| {
            object
                .iter()
                .map(|(key, value)| format!("{key}={}", shown(value)))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    pairs.join(" ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rows_line_up_under_their_headings_and_show_nothing_as_a_dash() {
        let agents = [
            json!({"id": "a1", "hostname": "db-1", "status": "active",
                   "not_after": "2027-01-31T12:00:00Z", "last_seen_at": null, "tags": ["db", "eu"]}),
            json!({"id": "a2", "hostname": "web-10.example", "status": "revoked",
                   "not_after": null, "last_seen_at": "2026-12-06T23:04:44Z",
                   "last_seen_ip": "10.0.0.7", "tags": []}),
        ];
        let printed = rows(AGENTS, &agents);
        let lines: Vec<&str> = printed.lines().collect();
        assert_eq!(lines.len(), 3, "{printed}");
        let column = |line: &str, text: &str| line.find(text);
        assert_eq!(column(lines[0], "HOSTNAME"), column(lines[1], "db-1"));
        assert_eq!(
            column(lines[0], "HOSTNAME"),
            column(lines[2], "web-10.example")
        );
        assert!(lines[1].contains("2027-01-31 12:00") && lines[1].contains("never"));
        assert!(lines[1].contains("db,eu"));
        assert!(lines[2].contains("2026-12-06 23:04 10.0.0.7"));
        assert!(lines[2].contains(" - "), "{printed}");
    }

    #[test]
    fn one_item_is_field_and_value_without_the_skipped_ones() {
        let ca = json!({"id": "c1", "name": "Team", "internal": false, "certificate": "PEM"});
        let printed = fields(&ca, &["certificate"]);
        assert!(printed.contains("name") && printed.contains("Team"));
        assert!(printed.contains("internal") && printed.contains("no"));
        assert!(!printed.contains("PEM"));
    }

    #[test]
    fn audit_details_read_as_pairs() {
        let event =
            json!({"details": {"hostname": "db-1", "tags": ["a", "b"], "auto_enroll": true}});
        assert_eq!(
            details(&event["details"]),
            "auto_enroll=yes hostname=db-1 tags=a,b"
        );
    }
}
