// Drives Debian's Chromium (playwright-core, no browser download) through the /capture/demo page of a
// live AgeGuard server, with a fake camera fed from a .y4m file. Called by test_capture_browser.py:
//
//   node browser.mjs PLAN.json      (prints one JSON object: the outcome of every step)
//
// PLAN: {url, chromium, y4m|null, camera: "granted"|"denied"|"absent", screenshots, steps: [...]}, where
// a step is {name, viewport: {width, height}, query, waitFor: "guidance:KEY[|KEY]"|"phase:NAME", shot,
// keyboard: bool, tamper: bool, timeoutMs}.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function cameraFlags() {
  const flags = [];
  if (plan.camera !== "absent") flags.push("--use-fake-device-for-media-stream");
  if (plan.y4m) flags.push(`--use-file-for-fake-video-capture=${plan.y4m}`);
  if (plan.camera === "denied") flags.push("--deny-permission-prompts");
  else flags.push("--use-fake-ui-for-media-stream");
  return flags;
}

async function pageState(page) {
  return page.evaluate(() => {
    const root = document.querySelector(".agc");
    const alert = document.querySelector(".agc-alert");
    return {
      phase: document.body.dataset.phase || null,
      state: root ? root.dataset.state : null,
      guidance: root ? root.dataset.guidance || null : null,
      status: (document.querySelector(".agc-status") || {}).textContent || "",
      statusRole: (document.querySelector(".agc-status") || { getAttribute: () => null }).getAttribute("role"),
      statusLive: (document.querySelector(".agc-status") || { getAttribute: () => null }).getAttribute("aria-live"),
      alert: alert && !alert.hidden ? document.querySelector(".agc-alert-text").textContent : "",
      ageStatus: document.body.dataset.ageStatus || null,
      errorCode: document.body.dataset.errorCode || null,
      age: (document.getElementById("age") || {}).textContent || "",
      stDev: (document.getElementById("st-dev") || {}).textContent || "",
      liveness: (document.getElementById("liveness") || {}).textContent || "",
      result: window.ageguardDemo ? window.ageguardDemo.lastResult : null,
      capture: window.ageguardDemo && window.ageguardDemo.last
        ? {
            width: window.ageguardDemo.last.width,
            height: window.ageguardDemo.last.height,
            mimeType: window.ageguardDemo.last.mimeType,
            auto: window.ageguardDemo.last.auto,
            bytes: Math.floor((window.ageguardDemo.last.img.length * 3) / 4),
            secure: window.ageguardDemo.last.secure ? Object.keys(window.ageguardDemo.last.secure).sort() : null,
          }
        : null,
    };
  });
}

async function waitFor(page, condition, timeoutMs) {
  const [kind, value] = condition.split(":");
  const wanted = value.split("|");
  await page.waitForFunction(
    ({ kind, wanted }) => {
      if (kind === "phase") return wanted.includes(document.body.dataset.phase);
      const root = document.querySelector(".agc");
      return !!root && wanted.includes(root.dataset.guidance);
    },
    { kind, wanted },
    { timeout: timeoutMs, polling: 100 },
  );
}

// Tampered copies of the capture, sent through the demo backend (which signs the API request).
async function tamper(page) {
  return page.evaluate(async () => {
    const demo = window.ageguardDemo;
    const { img, secure, device } = demo.last;
    const flip = (s, i) => s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
    const mid = Math.floor(img.length / 2);
    const cases = {
      signature: { img, secure: { ...secure, signature: flip(secure.signature, 5) } },
      image: { img: flip(img, mid - (mid % 4)), secure },
      verification: { img, secure: { ...secure, verification: flip(secure.verification, 10) } },
      version: { img, secure: { token: secure.token, signature: secure.signature, verification: secure.verification } },
      token: { img, secure: { ...secure, token: "x".repeat(43) } },
      genuine: { img, secure, device },
      replay: { img, secure, device },
    };
    const out = {};
    for (const [name, payload] of Object.entries(cases)) {
      const answer = await demo.send(payload);
      out[name] = { status: answer.age.status, code: answer.age.body.error_code || null, age: answer.age.body.age || null };
    }
    return out;
  });
}

async function runStep(context, step) {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  await page.setViewportSize(step.viewport);
  const started = Date.now();
  const outcome = { name: step.name, ok: true, errors };
  try {
    await page.goto(plan.url + (step.query || ""), { waitUntil: "load" });
    if (step.keyboard) {
      // Manual capture from the keyboard: Tab to the "Take photo" button once the camera runs.
      await page.waitForFunction(() => {
        const b = document.querySelector(".agc-shutter");
        return b && !b.disabled && document.querySelector(".agc").dataset.guidance === "good";
      }, null, { timeout: step.timeoutMs });
      for (let i = 0; i < 6; i += 1) {
        await page.keyboard.press("Tab");
        const focused = await page.evaluate(() => document.activeElement && document.activeElement.className);
        if (String(focused).includes("agc-shutter")) break;
      }
      outcome.focused = await page.evaluate(() => document.activeElement.textContent);
      await page.keyboard.press("Enter");
    }
    await waitFor(page, step.waitFor, step.timeoutMs);
    if (step.settleMs) await page.waitForTimeout(step.settleMs);
    if (step.shot) {
      const path = join(plan.screenshots, step.shot);
      await page.screenshot({ path, fullPage: true });
      outcome.screenshot = path;
    }
    outcome.state = await pageState(page);
    if (step.tamper) outcome.tamper = await tamper(page);
  } catch (error) {
    outcome.ok = false;
    outcome.error = String(error).slice(0, 2000);
    outcome.state = await pageState(page).catch(() => null);
  }
  outcome.ms = Date.now() - started;
  await page.close();
  return outcome;
}

const userDataDir = mkdtempSync(join(tmpdir(), "ageguard-chromium-"));
const result = { steps: [] };
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: plan.chromium,
    headless: true,
    chromiumSandbox: false,
    args: [...FLAGS, ...cameraFlags()],
    viewport: { width: 1280, height: 800 },
  });
  for (const step of plan.steps) result.steps.push(await runStep(context, step));
} catch (error) {
  result.error = String(error).slice(0, 4000);
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + "\n");
