// The audit trail, newest first, filtered and paged by the server.

import { call, query } from "./api.js";
import { field, h, show, table, when } from "./dom.js";

const PAGE = 50;

export async function render(main, _path, params) {
  const filters = {
    actor: params.get("actor") ?? "", action: params.get("action") ?? "",
    target_id: params.get("target_id") ?? "", offset: Number(params.get("offset") ?? 0) || 0,
  };
  const page = await call("GET", `/audit${query({ ...filters, limit: PAGE })}`);
  const go = (changes) => { location.hash = `#/audit${query({ ...filters, ...changes })}`; };
  const actor = h("input", { type: "text", value: filters.actor });
  const action = h("input", { type: "text", value: filters.action, placeholder: "agent.revoke" });
  const target = h("input", { type: "text", value: filters.target_id });
  show(main,
    h("h1", {}, "Audit trail"),
    h("form", { class: "filters", onsubmit: (event) => {
      event.preventDefault();
      go({ actor: actor.value.trim(), action: action.value.trim(), target_id: target.value.trim(), offset: 0 });
    } }, field("Actor", actor), field("Action", action), field("Target id", target), h("button", { type: "submit" }, "Apply")),
    h("p", { class: "count" }, `${page.total} events`),
    table("Audit events", [
      ["When", (event) => when(event.at)], ["Actor", (event) => event.actor], ["Action", (event) => event.action],
      ["Target", (event) => `${event.target_type ?? ""} ${event.target_id ?? ""}`.trim()],
      ["From", (event) => event.source_ip ?? "—"], ["Details", (event) => (event.details ? JSON.stringify(event.details) : "")],
    ], page.items),
    h("nav", { class: "pages", "aria-label": "Pages" },
      h("button", { type: "button", disabled: filters.offset === 0, onclick: () => go({ offset: Math.max(0, filters.offset - PAGE) }) }, "Previous"),
      h("button", { type: "button", disabled: filters.offset + PAGE >= page.total, onclick: () => go({ offset: filters.offset + PAGE }) }, "Next")));
}
