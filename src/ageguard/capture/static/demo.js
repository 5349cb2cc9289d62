// The /capture/demo page: a secure session from the demo backend (which signs as the local
// application, server side), the capture module, then the age estimate and liveness verdict.
import { AgeGuardCapture } from "./ageguard-capture.js";

const params = new URLSearchParams(window.location.search);
const autosubmit = params.get("autosubmit") !== "0";
const autoCapture = params.get("auto") !== "0";
const $ = (id) => document.getElementById(id);

// Exposed for the end-to-end tests and for curious developers (it never holds the private key).
const demo = { session: null, capture: null, last: null, lastResult: null, send: sendEstimate };
window.ageguardDemo = demo;

function setPhase(phase) {
  document.body.dataset.phase = phase;
}

function showPageError(text) {
  const node = $("page-error");
  node.textContent = text;
  node.hidden = !text;
}

async function openSession() {
  const response = await fetch("/capture/demo/session", { method: "POST" });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(data.error_message || `The demo could not open a capture session (${response.status}).`);
  }
  return { token: data.token, key: data.key };
}

async function sendEstimate(payload) {
  const response = await fetch("/capture/demo/estimate", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) return { age: { status: response.status, body: data }, antispoofing: null };
  return data;
}

function describeError(body) {
  return body && body.error_code ? `${body.error_code}: ${body.error_message}` : "Unexpected answer.";
}

function render(data) {
  const age = data.age || {};
  const ok = age.status === 200 && age.body && age.body.age;
  $("age").textContent = ok ? age.body.age.age.toFixed(1) : "–";
  $("st-dev").textContent = ok ? age.body.age.st_dev.toFixed(2) : "–";
  $("secure").textContent = ok ? "Verified" : "–";
  const anti = data.antispoofing;
  if (anti && anti.status === 200) {
    $("liveness").textContent = anti.body.antispoofing.prediction;
  } else if (anti) {
    $("liveness").textContent = `Unavailable (${anti.body.error_code || anti.status})`;
  } else {
    $("liveness").textContent = "–";
  }
  const error = $("error");
  error.hidden = ok;
  error.textContent = ok ? "" : describeError(age.body);
  document.body.dataset.ageStatus = String(age.status);
  if (!ok && age.body) document.body.dataset.errorCode = age.body.error_code || "";
}

async function submit(result) {
  $("send").hidden = true;
  $("age").textContent = "…";
  const data = await sendEstimate({ img: result.img, secure: result.secure, device: result.device });
  demo.lastResult = data;
  render(data);
  setPhase("result");
  $("result-title").focus();
}

async function onCapture(result) {
  demo.last = result;
  setPhase("captured");
  $("result").hidden = false;
  for (const id of ["age", "st-dev", "liveness", "secure"]) $(id).textContent = "–";
  $("error").hidden = true;
  if (autosubmit) {
    await submit(result);
  } else {
    $("send").hidden = false;
    $("send").focus();
  }
}

async function run() {
  setPhase("starting");
  showPageError("");
  $("result").hidden = true;
  delete document.body.dataset.ageStatus;
  delete document.body.dataset.errorCode;
  try {
    demo.session = await openSession();
  } catch (error) {
    showPageError(error.message);
    setPhase("error");
    return;
  }
  demo.capture = new AgeGuardCapture($("capture"), { session: demo.session, onCapture, autoCapture });
  await demo.capture.start();
  setPhase(demo.capture.state === "error" ? "camera-error" : "guiding");
}

$("send").addEventListener("click", () => demo.last && submit(demo.last));
$("again").addEventListener("click", () => run());
run();
