// Agents: search, filters, sorting and pages done by the server (a fleet of 100k is never
// loaded whole); one agent's details and what an administrator can do to it.

import { call, query } from "./api.js";
import { badge, field, h, notify, show, table, when } from "./dom.js";

const PAGE = 50;
const STATUSES = ["", "active", "disabled", "expired", "revoked", "ca_removed", "ca_expired", "pending"];
const SORTS = [["-created_at", "Newest first"], ["hostname", "Hostname"], ["not_after", "Expiry, soonest first"], ["-last_seen_at", "Last seen, latest first"]];

export async function render(main, [id], params) {
  if (id) return detail(main, id);
  const filters = {
    q: params.get("q") ?? "",
    status: params.get("status") ?? "",
    tag: params.get("tag") ?? "",
    ca_id: params.get("ca_id") ?? "",
    sort: params.get("sort") ?? "-created_at",
    offset: Number(params.get("offset") ?? 0) || 0,
  };
  const [page, cas] = await Promise.all([
    call("GET", `/agents${query({ ...filters, include_revoked: filters.status ? undefined : true, limit: PAGE })}`),
    call("GET", `/ca${query({ limit: 500, sort: "name" })}`),
  ]);
  const go = (changes) => {
    const next = { ...filters, ...changes };
    location.hash = `#/agents${query(next)}`;
  };
  const search = h("input", { type: "search", name: "q", value: filters.q });
  const status = h("select", { name: "status" }, STATUSES.map((value) =>
    h("option", { value, selected: value === filters.status }, value || "any but pending")));
  const tag = h("input", { type: "text", name: "tag", value: filters.tag });
  const ca = h("select", { name: "ca_id" }, h("option", { value: "" }, "any"),
    cas.items.map((item) => h("option", { value: item.id, selected: item.id === filters.ca_id }, item.name)));
  const sort = h("select", { name: "sort" }, SORTS.map(([value, label]) =>
    h("option", { value, selected: value === filters.sort }, label)));
  const form = h("form", { class: "filters", role: "search", onsubmit: (event) => {
    event.preventDefault();
    go({ q: search.value.trim(), status: status.value, tag: tag.value.trim(), ca_id: ca.value, sort: sort.value, offset: 0 });
  } },
    field("Hostname contains", search), field("Status", status), field("Tag", tag),
    field("CA", ca), field("Sort", sort), h("button", { type: "submit" }, "Apply"));
  const first = page.total ? filters.offset + 1 : 0;
  const last = Math.min(filters.offset + PAGE, page.total);
  show(main,
    h("h1", {}, "Agents"),
    form,
    h("p", { class: "count", "aria-live": "polite" }, `${first}–${last} of ${page.total}`),
    table("Agents", [
      ["Hostname", (agent) => h("a", { href: `#/agents/${encodeURIComponent(agent.id)}` }, agent.hostname)],
      ["Status", (agent) => badge(agent.status)],
      ["Tags", (agent) => (agent.tags ?? []).join(", ")],
      ["Expires", (agent) => when(agent.not_after)],
      ["Last seen", (agent) => agent.last_seen_at ? `${when(agent.last_seen_at)} from ${agent.last_seen_ip ?? "?"}` : "never"],
    ], page.items),
    h("nav", { class: "pages", "aria-label": "Pages" },
      h("button", { type: "button", disabled: filters.offset === 0, onclick: () => go({ offset: Math.max(0, filters.offset - PAGE) }) }, "Previous"),
      h("button", { type: "button", disabled: last >= page.total, onclick: () => go({ offset: filters.offset + PAGE }) }, "Next")));
}

async function detail(main, id) {
  const agent = await call("GET", `/agents/${encodeURIComponent(id)}`);
  const refresh = () => detail(main, id);
  const act = async (what, method, path, body) => {
    try {
      const answer = await call(method, path, body);
      notify(what);
      return answer;
    } catch (error) {
      notify(`${what} failed: ${error.message}`, "error");
      return undefined;
    }
  };
  const description = h("input", { type: "text", value: agent.description ?? "", maxlength: 1024 });
  const tags = h("input", { type: "text", value: (agent.tags ?? []).join(", ") });
  const allowed = h("input", { type: "text", value: (agent.allowed_ips ?? []).join(", ") });
  const list = (text) => text.split(",").map((item) => item.trim()).filter(Boolean);
  const tokenArea = h("div", { class: "token", "aria-live": "polite" });
  const revoked = agent.status === "revoked";
  show(main,
    h("p", {}, h("a", { href: "#/agents" }, "← Agents")),
    h("h1", {}, agent.hostname, " ", badge(agent.status)),
    h("dl", { class: "facts" }, [
      ["Agent id", agent.id], ["Profile", agent.profile], ["Description", agent.description ?? "—"],
      ["Tags", (agent.tags ?? []).join(", ") || "—"], ["Allowed addresses", (agent.allowed_ips ?? []).join(", ") || "any"],
      ["Subject", agent.subject ?? "—"], ["Serial", agent.serial ?? "—"], ["SHA-256", agent.fingerprint ?? "—"],
      ["Valid from", when(agent.not_before)], ["Valid until", when(agent.not_after)],
      ["Last seen", agent.last_seen_at ? `${when(agent.last_seen_at)} from ${agent.last_seen_ip ?? "?"}` : "never"],
      ["CA", agent.ca_id ? h("a", { href: `#/cas/${encodeURIComponent(agent.ca_id)}` }, agent.ca_id) : "—"],
      ["Created", when(agent.created_at)], ["Revoked", when(agent.revoked_at)],
    ].map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    revoked ? h("p", {}, "Revoked agents cannot change.") : h("section", { "aria-labelledby": "actions" },
      h("h2", { id: "actions" }, "Actions"),
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: async () => {
          if (await act(agent.enabled ? "Disabled" : "Enabled", "PUT", `/agents/${encodeURIComponent(id)}/toggle`, { enabled: !agent.enabled })) refresh();
        } }, agent.enabled ? "Disable" : "Enable"),
        h("button", { type: "button", class: "danger", onclick: async () => {
          if (!confirm(`Revoke ${agent.hostname} for good? Its certificate is refused from the next request on.`)) return;
          if (await act(`Revoked ${agent.hostname}`, "DELETE", `/agents/${encodeURIComponent(id)}`) !== undefined) refresh();
        } }, "Revoke"),
        h("button", { type: "button", onclick: async () => {
          const issued = await act("New enrolment token issued", "POST", `/agents/${encodeURIComponent(id)}/token`, {});
          if (issued) showToken(tokenArea, issued.token, agent.hostname);
        } }, "New enrolment token")),
      tokenArea,
      h("form", { class: "edit", onsubmit: async (event) => {
        event.preventDefault();
        const body = { description: description.value.trim() || null, tags: list(tags.value), allowed_ips: list(allowed.value) };
        if (await act("Saved", "PUT", `/agents/${encodeURIComponent(id)}`, body)) refresh();
      } },
        h("h2", {}, "Edit"),
        field("Description", description),
        field("Tags", tags, "Comma-separated."),
        field("Allowed addresses", allowed, "Comma-separated addresses or CIDRs; empty allows any."),
        h("button", { type: "submit" }, "Save"))));
}

/** A one-time token: shown once, with a copy button and the command for the agent host. */
export function showToken(area, token, hostname) {
  const command = `certgate enroll --server https://<proxy> --token ${token} --out /etc/certgate-agent --cacert <proxy-ca.pem>`;
  show(area,
    h("p", {}, `One-time token for ${hostname}, shown once:`),
    h("pre", { class: "secret", "data-token": "" }, token),
    h("button", { type: "button", onclick: () => navigator.clipboard?.writeText(token).then(() => notify("Token copied.")) }, "Copy token"),
    h("p", {}, "On the agent host:"),
    h("pre", { class: "command" }, command));
}
