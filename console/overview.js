// The fleet at a glance: agents by status, CAs, what waits for an administrator, verify's
// decisions, and what expires in the next 90 days.

import { call, metrics, query } from "./api.js";
import { badge, daysUntil, h, show, table, when } from "./dom.js";

const STATUSES = ["active", "disabled", "expired", "revoked", "ca_removed", "ca_expired", "pending"];
const HORIZON_DAYS = 90;

export async function render(main) {
  const horizon = new Date(Date.now() + HORIZON_DAYS * 86_400_000).toISOString();
  const [counts, values, cas, requests, expiring] = await Promise.all([
    Promise.all(STATUSES.map((status) => call("GET", `/agents${query({ status, limit: 1 })}`))),
    metrics(),
    call("GET", `/ca${query({ limit: 500, sort: "not_after" })}`),
    call("GET", `/enroll/requests${query({ status: "pending", limit: 1 })}`),
    call("GET", `/agents${query({ status: "active", expires_before: horizon, sort: "not_after", limit: 500 })}`),
  ]);
  const label = (series, name) => (series.match(new RegExp(`${name}="([^"]*)"`)) ?? [])[1] ?? "";
  const decisions = Object.entries(values)
    .filter(([series, value]) => series.startsWith("certgate_verify_decisions_total") && value > 0)
    .map(([series, value]) => ({ outcome: label(series, "outcome"), reason: label(series, "reason"), value }))
    .sort((a, b) => b.value - a.value);
  const soonCas = cas.items.filter((ca) => daysUntil(ca.not_after) < HORIZON_DAYS);
  const within = (days) => expiring.items.filter((agent) => daysUntil(agent.not_after) < days);
  show(main,
    h("h1", {}, "Overview"),
    h("section", { "aria-labelledby": "fleet" },
      h("h2", { id: "fleet" }, "Agents"),
      h("ul", { class: "tiles" }, STATUSES.map((status, index) =>
        h("li", {}, h("a", { href: `#/agents?status=${status}` },
          h("strong", { "data-count": status }, counts[index].total), " ", badge(status)))))),
    h("section", { "aria-labelledby": "waiting" },
      h("h2", { id: "waiting" }, "Waiting for you"),
      h("ul", { class: "tiles" },
        h("li", {}, h("a", { href: "#/enrolment" }, h("strong", {}, requests.total), " self-enrolment requests")),
        h("li", {}, h("a", { href: "#/agents?status=pending" }, h("strong", {}, counts[STATUSES.indexOf("pending")].total), " enrolments not redeemed")),
        h("li", {}, h("a", { href: "#/cas" }, h("strong", {}, cas.total), " trusted CAs")))),
    h("section", { "aria-labelledby": "expiry" },
      h("h2", { id: "expiry" }, `Expiring in the next ${HORIZON_DAYS} days`),
      timeline(expiring.items, soonCas),
      table("Agents expiring within 7 days", columns(), within(7)),
      table("Agents expiring within 30 days", columns(), within(30))),
    h("section", { "aria-labelledby": "decisions" },
      h("h2", { id: "decisions" }, "Verify decisions since certgate started"),
      decisions.length
        ? table("Decisions by outcome and reason", [
          ["Outcome", (row) => row.outcome],
          ["Reason", (row) => row.reason],
          ["Count", (row) => row.value],
        ], decisions)
        : h("p", {}, "No verify call yet.")));
}

function columns() {
  return [
    ["Hostname", (agent) => h("a", { href: `#/agents/${encodeURIComponent(agent.id)}` }, agent.hostname)],
    ["Expires", (agent) => when(agent.not_after)],
    ["Days left", (agent) => Math.max(0, Math.floor(daysUntil(agent.not_after)))],
  ];
}

/** Agents (dots) and CAs (diamonds) on a 90-day axis, each with its name as a tooltip. */
function timeline(agents, cas) {
  const width = 900;
  const height = 120;
  const x = (item) => 20 + (Math.max(0, daysUntil(item.not_after)) / HORIZON_DAYS) * (width - 40);
  return h("figure", { class: "timeline" },
    h("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "timeline-caption" },
      h("line", { x1: 20, y1: 60, x2: width - 20, y2: 60, class: "axis" }),
      [0, 7, 30, 60, 90].map((day) => {
        const at = 20 + (day / HORIZON_DAYS) * (width - 40);
        return h("g", {},
          h("line", { x1: at, y1: 52, x2: at, y2: 68, class: "tick" }),
          h("text", { x: at, y: 90, "text-anchor": "middle" }, day === 0 ? "today" : `${day} d`));
      }),
      agents.map((agent) => h("circle", { cx: x(agent), cy: 45, r: 5, class: daysUntil(agent.not_after) < 7 ? "urgent" : "agent", "data-agent": agent.id },
        h("title", {}, `${agent.hostname}: ${when(agent.not_after)}`))),
      cas.map((ca) => h("rect", { x: x(ca) - 5, y: 70, width: 10, height: 10, class: "ca" },
        h("title", {}, `CA ${ca.name}: ${when(ca.not_after)}`)))),
    h("figcaption", { id: "timeline-caption" },
      `${agents.length} agents and ${cas.length} CAs expire within ${HORIZON_DAYS} days (dots: agents, red within 7 days; squares: CAs).`));
}
