// Trusted CAs: the list with expiry and agent counts, one CA's certificate, upload by
// paste or file, removal (saying how many agents it locks out) and CRL import.

import { call, query } from "./api.js";
import { field, h, notify, show, table, when } from "./dom.js";

export async function render(main, [id]) {
  if (id) return detail(main, id);
  const page = await call("GET", `/ca${query({ limit: 500, sort: "not_after" })}`);
  const name = h("input", { type: "text", required: true, maxlength: 256 });
  const pem = h("textarea", { rows: 8, required: true, spellcheck: "false", placeholder: "-----BEGIN CERTIFICATE-----" });
  const file = h("input", { type: "file", accept: ".pem,.crt,.cer", onchange: async () => {
    if (file.files[0]) pem.value = await file.files[0].text();
  } });
  show(main,
    h("h1", {}, "CAs"),
    table("Trusted CAs", [
      ["Name", (ca) => h("a", { href: `#/cas/${encodeURIComponent(ca.id)}` }, ca.name)],
      ["Subject", (ca) => ca.subject],
      ["Expires", (ca) => when(ca.not_after)],
      ["Agents", (ca) => ca.agent_count ?? "—"],
      ["Internal", (ca) => (ca.internal ? "yes" : "")],
    ], page.items),
    h("form", { class: "upload", onsubmit: async (event) => {
      event.preventDefault();
      try {
        const ca = await call("POST", "/ca", { name: name.value.trim(), certificate: pem.value });
        notify(`Trusted ${ca.name}.`);
        location.hash = `#/cas/${encodeURIComponent(ca.id)}`;
      } catch (error) {
        notify(`Upload refused: ${error.message} (${error.code})`, "error");
      }
    } },
      h("h2", {}, "Trust a CA"),
      field("Name", name), field("Certificate (PEM)", pem), field("Or read it from a file", file),
      h("button", { type: "submit" }, "Upload")));
}

async function detail(main, id) {
  const ca = await call("GET", `/ca/${encodeURIComponent(id)}`);
  const crl = h("textarea", { rows: 6, spellcheck: "false", placeholder: "-----BEGIN X509 CRL-----" });
  show(main,
    h("p", {}, h("a", { href: "#/cas" }, "← CAs")),
    h("h1", {}, ca.name),
    h("dl", { class: "facts" }, [
      ["Id", ca.id], ["Subject", ca.subject], ["SHA-256", ca.fingerprint],
      ["Valid from", when(ca.not_before)], ["Valid until", when(ca.not_after)],
      ["Agents", ca.agent_count ?? "—"], ["Internal", ca.internal ? "yes" : "no"], ["Added", when(ca.created_at)],
    ].map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    h("details", {}, h("summary", {}, "Certificate"), h("pre", {}, ca.certificate)),
    h("div", { class: "actions" },
      h("a", { href: `#/agents?ca_id=${encodeURIComponent(ca.id)}` }, "Its agents"),
      h("button", { type: "button", class: "danger", onclick: async () => {
        const count = ca.agent_count ?? 0;
        if (!confirm(`Stop trusting ${ca.name}? Its ${count} agent${count === 1 ? "" : "s"} will be refused from the next request on.`)) return;
        try {
          await call("DELETE", `/ca/${encodeURIComponent(ca.id)}`);
          notify(`${ca.name} removed.`);
          location.hash = "#/cas";
        } catch (error) {
          notify(`Removal failed: ${error.message}`, "error");
        }
      } }, "Remove")),
    h("form", { class: "crl", onsubmit: async (event) => {
      event.preventDefault();
      try {
        const answer = await call("PUT", `/ca/${encodeURIComponent(ca.id)}/crl`, { crl: crl.value });
        notify(`CRL imported: ${answer.serials} serials, ${answer.revoked_agents.length} agents revoked.`);
      } catch (error) {
        notify(`CRL refused: ${error.message}`, "error");
      }
    } },
      h("h2", {}, "Import a CRL"), field("CRL (PEM)", crl), h("button", { type: "submit" }, "Import")));
}
