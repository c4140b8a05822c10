// The three switches of the verify policy, with what each one opens.

import { call } from "./api.js";
import { h, notify, show, when } from "./dom.js";

const SWITCHES = [
  ["enforcement_enabled", "Enforcement", "Off is audit mode: every certificate passes and denials are only counted. Turn it off only to observe a new deployment."],
  ["reject_unknown_certs", "Refuse unknown certificates", "Off lets certificates nobody enrolled through."],
  ["auto_enroll", "Enrol on first sight", "On enrols, at its first request, any certificate that chains to a trusted CA: whoever holds one gets in."],
];

export async function render(main) {
  const config = await call("GET", "/config");
  const boxes = Object.fromEntries(SWITCHES.map(([key]) => [key, h("input", { type: "checkbox", id: `policy-${key}`, checked: Boolean(config[key]) })]));
  show(main,
    h("h1", {}, "Policy"),
    config.enforcement_enabled ? null : h("p", { class: "warning", role: "alert" }, "Audit mode: certgate lets every certificate through."),
    config.auto_enroll ? h("p", { class: "warning", role: "alert" }, "Auto-enrolment is on: any certificate from a trusted CA enrols itself.") : null,
    h("form", { class: "policy", onsubmit: async (event) => {
      event.preventDefault();
      const body = Object.fromEntries(SWITCHES.map(([key]) => [key, boxes[key].checked]));
      const weaker = (!body.enforcement_enabled && config.enforcement_enabled) || (body.auto_enroll && !config.auto_enroll) ||
        (!body.reject_unknown_certs && config.reject_unknown_certs);
      if (weaker && !confirm("This lets more certificates through. Save?")) return;
      try {
        await call("PUT", "/config", body);
        notify("Policy saved.");
        render(main);
      } catch (error) {
        notify(`Refused: ${error.message}`, "error");
      }
    } },
      SWITCHES.map(([key, label, explanation]) => h("div", { class: "switch" },
        boxes[key], h("label", { for: `policy-${key}` }, label), h("small", {}, explanation))),
      h("p", {}, `Last changed ${when(config.updated_at)}.`),
      h("button", { type: "submit" }, "Save")));
}
