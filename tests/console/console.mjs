// The web console as an operator uses it, in Debian's Chromium driven by playwright-core.
// Started by tests/e2e/console.rs, which runs certgate with a scripted fleet and passes
// what it made in the environment. Every check is on the page (or on certgate's answers);
// the screenshots are artefacts for people.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const CONSOLE = env("CONSOLE_URL");
const API = env("API_URL");
const TOKEN = env("ADMIN_TOKEN");
const SECRET = env("VERIFY_SECRET");
const SHOTS = env("SCREENSHOTS");
const HOSTILE = env("HOSTILE_HOSTNAME");
mkdirSync(SHOTS, { recursive: true });

const step = (name) => console.log(`step: ${name}`);
const verify = async (escapedPem) => {
  const answer = await fetch(`${API}/verify`, { headers: { "X-Verify-Secret": SECRET, "X-Client-Cert": escapedPem } });
  return { status: answer.status, reason: answer.headers.get("x-certgate-reason") };
};
const api = async (path) => (await fetch(`${API}${path}`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const consoleFiles = new Map();
  page.on("response", (response) => {
    if (new URL(response.url()).pathname.startsWith(new URL(CONSOLE).pathname)) {
      consoleFiles.set(response.url(), response.headers()["content-security-policy"]);
    }
  });
  const dialogs = [];
  page.on("dialog", async (dialog) => {
    dialogs.push(dialog.message());
    await dialog.accept();
  });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  // Refused calls (the wrong token's 401) show up as failed loads; anything else is a fault.
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) errors.push(message.text());
  });

  step("a wrong token is refused");
  await page.goto(CONSOLE);
  await page.getByLabel("Admin token").fill("not-the-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("That token was refused.").waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("certgate-admin-token")), null);
  assert.equal((await context.cookies()).length, 0, "no cookie, ever");

  step("the right token signs in and stays out of the URL");
  await page.getByLabel("Admin token").fill(TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  assert.ok(!page.url().includes(TOKEN));

  step("overview: counts and an agent that expires in 5 days on the timeline");
  const soonId = env("SOON_AGENT_ID");
  await page.locator(`circle[data-agent="${soonId}"]`).waitFor({ state: "attached" });
  assert.equal(await page.locator(`circle[data-agent="${soonId}"]`).getAttribute("class"), "urgent");
  const week = page.getByRole("table", { name: "Agents expiring within 7 days" });
  assert.ok((await week.innerText()).includes("soon.fleet.test"));
  assert.ok(Number(await page.locator('[data-count="pending"]').innerText()) >= 300);
  await page.screenshot({ path: `${SHOTS}/overview.png`, fullPage: true });

  step("agents: server-side pages over a few hundred agents");
  await page.goto(`${CONSOLE}#/agents?status=pending`);
  const count = page.locator("p.count");
  await count.filter({ hasText: "1–50 of" }).waitFor();
  const total = Number((await count.innerText()).split(" of ")[1]);
  assert.ok(total >= 300, `${total} pending agents`);
  await page.getByRole("button", { name: "Next" }).click();
  await count.filter({ hasText: "51–100 of" }).waitFor();
  assert.equal(await page.locator("table tbody tr").count(), 50);
  await page.screenshot({ path: `${SHOTS}/agents.png`, fullPage: true });

  step("a hostile hostname is shown as text");
  await page.goto(`${CONSOLE}#/agents?q=${encodeURIComponent("<script>")}`);
  const cell = page.locator("table tbody tr td a").first();
  await cell.waitFor();
  assert.equal(await cell.innerText(), HOSTILE);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.equal(await page.locator("main script, main svg[onload]").count(), 0);
  await cell.click();
  await page.getByRole("heading", { name: HOSTILE }).waitFor();
  assert.equal(await page.evaluate(() => window.__xss), undefined);

  step("revoke an agent; verify refuses it from then on");
  const escaped = env("REVOKE_ESCAPED_PEM");
  assert.equal((await verify(escaped)).status, 200);
  await page.goto(`${CONSOLE}#/agents/${env("REVOKE_AGENT_ID")}`);
  await page.getByRole("button", { name: "Revoke" }).click();
  await page.locator("h1 .badge", { hasText: "revoked" }).waitFor();
  assert.ok(dialogs.at(-1).includes("revoke.fleet.test"), "the confirmation names the host");
  assert.deepEqual(await verify(escaped), { status: 403, reason: "agent_revoked" });
  await page.screenshot({ path: `${SHOTS}/agent.png`, fullPage: true });

  step("enrol: a pending agent and its one-time token with the command");
  await page.goto(`${CONSOLE}#/enrolment`);
  await page.getByLabel("Hostname").fill("new.fleet.test");
  await page.getByRole("button", { name: "Create" }).click();
  const issued = page.locator("pre[data-token]");
  await issued.waitFor();
  const token = await issued.innerText();
  assert.match(token, /^cgt_/);
  assert.ok((await page.locator("pre.command").innerText()).includes(`--token ${token}`));
  await page.screenshot({ path: `${SHOTS}/enrolment.png`, fullPage: true });

  step("approve a self-enrolment request");
  const requestHost = env("REQUEST_HOSTNAME");
  const row = page.locator("tr", { hasText: requestHost });
  await row.getByRole("button", { name: "Approve" }).click();
  await page.getByText(`${requestHost}: approved`).waitFor();
  const decided = await api(`/enroll/requests?status=approved`);
  assert.ok(decided.items.some((request) => request.hostname === requestHost));

  step("upload a CA by paste, then remove it");
  await page.goto(`${CONSOLE}#/cas`);
  await page.getByLabel("Name").fill("uploaded by the console");
  await page.getByLabel("Certificate (PEM)").fill(env("UPLOAD_CA_PEM"));
  await page.getByRole("button", { name: "Upload" }).click();
  await page.getByRole("heading", { name: "uploaded by the console" }).waitFor();
  await page.screenshot({ path: `${SHOTS}/ca.png`, fullPage: true });
  await page.getByRole("button", { name: "Remove" }).click();
  await page.getByRole("heading", { name: "CAs" }).waitFor();
  assert.ok(dialogs.at(-1).includes("0 agents"), dialogs.at(-1));
  await page.getByRole("table", { name: "Trusted CAs" }).waitFor();
  assert.ok(!(await page.getByRole("table", { name: "Trusted CAs" }).innerText()).includes("uploaded by the console"));
  await page.screenshot({ path: `${SHOTS}/cas.png`, fullPage: true });

  step("policy and audit pages");
  await page.goto(`${CONSOLE}#/policy`);
  await page.getByLabel("Enforcement").waitFor();
  assert.ok(await page.getByLabel("Enforcement").isChecked());
  await page.screenshot({ path: `${SHOTS}/policy.png`, fullPage: true });
  await page.goto(`${CONSOLE}#/audit?action=agent.revoke`);
  await page.getByRole("table", { name: "Audit events" }).getByText("agent.revoke").first().waitFor();
  await page.screenshot({ path: `${SHOTS}/audit.png`, fullPage: true });

  step("a narrow screen");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${CONSOLE}#/agents`);
  await page.locator("p.count").waitFor();
  await page.screenshot({ path: `${SHOTS}/agents-narrow.png`, fullPage: true });

  step("every console file carried the content security policy");
  assert.ok(consoleFiles.size >= 10, `${consoleFiles.size} console files loaded`);
  for (const [url, policy] of consoleFiles) {
    assert.ok(policy?.includes("script-src 'self'") && !policy.includes("unsafe-inline"), `${url}: ${policy}`);
  }
  assert.deepEqual(errors, [], "no script error or policy violation on any page");
  console.log("console: all steps passed");
} finally {
  await browser.close();
}
