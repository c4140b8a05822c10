// Enrolment: a pending agent with its one-time token and the command to run, and hosts'
// self-enrolment requests to approve or deny.

import { call, query } from "./api.js";
import { field, h, notify, show, table, when } from "./dom.js";
import { showToken } from "./agents.js";

export async function render(main) {
  const requests = await call("GET", `/enroll/requests${query({ status: "pending", limit: 100 })}`);
  const hostname = h("input", { type: "text", required: true, maxlength: 253, spellcheck: "false" });
  const profile = h("select", {}, ["agent", "server", "admin"].map((value) => h("option", { value }, value)));
  const tags = h("input", { type: "text" });
  const tokenArea = h("div", { class: "token", "aria-live": "polite" });
  const decide = (request, decision) => async () => {
    const what = `${decision === "approve" ? "Approve" : "Deny"} ${request.hostname} (${request.ip_address})?`;
    if (!confirm(what)) return;
    const path = `/enroll/requests/${encodeURIComponent(request.id)}/${decision}`;
    try {
      await call("POST", path, {});
      notify(`${request.hostname}: ${decision === "approve" ? "approved" : "denied"}.`);
    } catch (error) {
      if (error.code === "ip_address_conflict" && confirm(`${error.message}\n\nApprove anyway, sharing the address?`)) {
        await call("POST", path, { allow_shared_ip: true });
        notify(`${request.hostname}: approved, sharing its address.`);
      } else {
        notify(`${request.hostname}: ${error.message}`, "error");
      }
    }
    render(main);
  };
  show(main,
    h("h1", {}, "Enrolment"),
    h("form", { class: "enrol", onsubmit: async (event) => {
      event.preventDefault();
      const list = tags.value.split(",").map((tag) => tag.trim()).filter(Boolean);
      try {
        const created = await call("POST", "/enrollments", { hostname: hostname.value.trim(), profile: profile.value, tags: list });
        notify(`Pending agent ${created.hostname} created.`);
        showToken(tokenArea, created.token, created.hostname);
      } catch (error) {
        notify(`Refused: ${error.message} (${error.code})`, "error");
      }
    } },
      h("h2", {}, "Enrol a host with a token"),
      field("Hostname", hostname), field("Profile", profile), field("Tags", tags, "Comma-separated."),
      h("button", { type: "submit" }, "Create")),
    tokenArea,
    h("section", { "aria-labelledby": "requests" },
      h("h2", { id: "requests" }, "Self-enrolment requests"),
      requests.items.length ? table("Pending requests", [
        ["Hostname", (r) => r.hostname],
        ["Address", (r) => r.ip_address],
        ["Machine id", (r) => r.machine_id],
        ["Key SHA-256", (r) => h("code", {}, r.key_sha256)],
        ["OS", (r) => (r.os_details ? [r.os_details.name, r.os_details.version_id, r.os_details.kernel].filter(Boolean).join(" ") : "—")],
        ["Asked", (r) => when(r.created_at)],
        ["Decision", (r) => h("span", { class: "actions" },
          h("button", { type: "button", onclick: decide(r, "approve") }, "Approve"),
          h("button", { type: "button", class: "danger", onclick: decide(r, "deny") }, "Deny"))],
      ], requests.items) : h("p", {}, "No request waits.")));
}
