// The console: sign-in with an admin token, then one page per section, chosen by the URL's
// fragment (#/agents, #/agents/<id>, …) so the browser's back button works.

import { ApiError, call, token } from "./api.js";
import { field, h, notify, show } from "./dom.js";
import * as overview from "./overview.js";
import * as agents from "./agents.js";
import * as cas from "./cas.js";
import * as enrolment from "./enrolment.js";
import * as policy from "./policy.js";
import * as audit from "./audit.js";

const pages = { overview, agents, cas, enrolment, policy, audit };
const main = document.getElementById("main");

function signIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  const input = h("input", { type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h("form", { class: "sign-in", onsubmit: async (event) => {
    event.preventDefault();
    token.set(input.value.trim());
    try {
      await call("GET", "/config");
      location.hash = location.hash && location.hash !== "#/" ? location.hash : "#/overview";
      render();
    } catch (error) {
      token.clear();
      signIn(error instanceof ApiError && error.status === 401
        ? "That token was refused."
        : `certgate could not be asked: ${error.message}`);
    }
  } },
    h("h1", {}, "Sign in"),
    h("p", {}, "An admin token, as set in CERTGATE_ADMIN_TOKEN. It is kept for this tab only."),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
    field("Admin token", input),
    h("button", { type: "submit" }, "Sign in"));
  show(main, form);
  input.focus();
}

async function render() {
  if (!token.get()) return signIn();
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  const [path, search = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name = "overview", ...rest] = path.split("/");
  const page = pages[name] ?? overview;
  for (const link of document.querySelectorAll("#nav a")) {
    link.toggleAttribute("aria-current", link.getAttribute("href") === `#/${name || "overview"}`);
  }
  show(main, h("p", {}, "Loading…"));
  try {
    await page.render(main, rest.map(decodeURIComponent), new URLSearchParams(search));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      token.clear();
      return signIn("The token is no longer accepted.");
    }
    show(main, h("p", { class: "error", role: "alert" }, `Could not load this page: ${error.message}`));
  }
  main.focus();
}

document.getElementById("sign-out").addEventListener("click", () => {
  token.clear();
  notify("Signed out.");
  location.hash = "#/";
  signIn();
});
window.addEventListener("hashchange", render);
render();
