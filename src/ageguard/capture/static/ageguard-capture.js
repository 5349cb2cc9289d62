// AgeGuard face capture: a dependency-free ES module.
//
//   import { AgeGuardCapture } from "https://ageguard.example/capture/ageguard-capture.js";
//   const capture = new AgeGuardCapture(document.getElementById("capture"), {
//     session: { token, key },              // from your backend (POST /ai/v1/capture/sessions)
//     onCapture: ({ img, secure }) => { ... },   // send both to your backend
//   });
//   capture.start();
//
// It opens the camera (the front one on phones), shows the live view with a face guide, sends small
// preview frames to the AgeGuard server's /capture/check (the server's own image and face rules,
// no estimation, nothing stored) and says in plain words what to fix. When the frame has been good
// for a short steady moment it captures at the camera's best resolution as JPEG (quality 0.95+),
// has the server check that capture, signs it for the secure session and hands it to the page.
// See docs/capture.md (integration) and docs/secure-capture.md (what the signature proves).

const MODULE_URL = new URL(import.meta.url);
const DEFAULT_SERVER = MODULE_URL.origin;
const SECURE_DOMAIN = "ageguard-secure-capture/1";

export const DEFAULT_MESSAGES = Object.freeze({
  starting: "Starting the camera…",
  loading: "Getting ready…",
  no_face: "We can't see a face. Look straight at the camera.",
  several_faces: "More than one face is in view. Make sure only you are in the picture.",
  move_closer: "Move closer to the camera.",
  move_back: "Move back a little.",
  centre: "Centre your face in the oval.",
  centre_left: "Centre your face in the oval: move a little to your left.",
  centre_right: "Centre your face in the oval: move a little to your right.",
  centre_up: "Centre your face in the oval: move up a little.",
  centre_down: "Centre your face in the oval: move down a little.",
  too_dark: "It's too dark. Move somewhere brighter or face a light.",
  too_bright: "It's too bright. Move out of direct light.",
  colour: "The picture has no colour. Turn off any black-and-white filter.",
  camera_resolution: "This camera's resolution is not suitable. Try another camera or device.",
  capture_problem: "That photo could not be used. Let's try again.",
  hold_still: "Hold still…",
  good: "That's good. Hold still…",
  capturing: "Taking the photo…",
  captured: "Photo taken.",
  camera_denied:
    "Camera access was refused. To continue, allow the camera for this site in your browser's settings, then select Try again.",
  camera_absent: "No camera was found. Connect a camera or use a device that has one, then select Try again.",
  camera_busy: "The camera is in use by another app. Close that app, then select Try again.",
  camera_insecure: "The camera can only be used on a secure (https) page.",
  camera_unsupported: "This browser cannot use the camera. Please use an up-to-date browser.",
  camera_error: "The camera could not be started. Select Try again.",
  server_unavailable: "We can't check the picture right now. You can still take the photo with the button.",
  session_ended: "This capture session has ended. Please reload the page to start again.",
  take_photo: "Take photo",
  try_again: "Try again",
  region_label: "Face capture",
  video_label: "Camera view",
});

// Error names from getUserMedia -> message keys.
const CAMERA_ERRORS = {
  NotAllowedError: "camera_denied",
  PermissionDeniedError: "camera_denied",
  SecurityError: "camera_denied",
  NotFoundError: "camera_absent",
  DevicesNotFoundError: "camera_absent",
  OverconstrainedError: "camera_absent",
  NotReadableError: "camera_busy",
  TrackStartError: "camera_busy",
  AbortError: "camera_busy",
};

const SVG_NS = "http://www.w3.org/2000/svg";

function el(tag, className, attrs = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function blobFromCanvas(canvas, type, quality) {
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("encoding failed"))), type, quality),
  );
}

function base64FromBytes(bytes) {
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

function base64url(bytes) {
  return base64FromBytes(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function bytesFromBase64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) out[i] = binary.charCodeAt(i);
  return out;
}

function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Fit (w, h) inside the server's capture limits, keeping the aspect ratio. */
export function fitCaptureSize(width, height, limits) {
  let scale = 1;
  if (limits.max_width) scale = Math.min(scale, limits.max_width / width);
  if (limits.max_height) scale = Math.min(scale, limits.max_height / height);
  if (limits.max_pixels) scale = Math.min(scale, Math.sqrt(limits.max_pixels / (width * height)));
  return { width: Math.floor(width * scale), height: Math.floor(height * scale) };
}

/** What to say for a check result: the message key, with a direction for "centre". */
export function messageKey(result, mirrored) {
  if (!result || result.ok) return "good";
  const key = result.guidance || "capture_problem";
  if (key !== "centre" || !result.face) return key;
  const f = result.face;
  let cx = (f.left + f.right) / 2;
  const cy = (f.top + f.bottom) / 2;
  if (mirrored) cx = 1 - cx;
  const dx = cx - 0.5;
  const dy = cy - 0.5;
  if (Math.abs(dx) >= Math.abs(dy)) {
    // On a mirrored view the person moves the way they want their image to move.
    if (mirrored) return dx < 0 ? "centre_right" : "centre_left";
    return "centre";
  }
  return dy < 0 ? "centre_down" : "centre_up";
}

export class AgeGuardCapture {
  /**
   * @param {HTMLElement} container where the capture view is built
   * @param {object} options
   *   server: AgeGuard base URL (default: where this module was loaded from)
   *   session: {token, key} from your backend; needed for checks (unless the server allows open
   *            checks) and for secure capture
   *   onCapture({img, secure, width, height, mimeType, auto, device}): the capture (img is base64)
   *   onGuidance({key, message, result}), onError({key, message, error}): optional
   *   level: "normal" (default) or "low", the server's validation level
   *   autoCapture (true), mirror (true for the front camera), stopAfterCapture (true),
   *   facingMode ("user"), messages: overrides of DEFAULT_MESSAGES, stylesheet (true)
   */
  constructor(container, options = {}) {
    if (!container) throw new Error("AgeGuardCapture needs a container element");
    this.container = container;
    this.options = {
      server: DEFAULT_SERVER,
      level: "normal",
      autoCapture: true,
      mirror: true,
      stopAfterCapture: true,
      facingMode: "user",
      stylesheet: true,
      ...options,
    };
    this.server = String(this.options.server).replace(/\/+$/, "");
    this.messages = { ...DEFAULT_MESSAGES, ...(options.messages || {}) };
    this.session = options.session || null;
    this.state = "idle";
    this.stream = null;
    this.config = null;
    this.running = false;
    this.busy = false;
    this.lastKey = null;
    this.stats = { frames: 0, good: 0, startedAt: 0 };
    this._resetSteady();
    this._build();
  }

  // ----------------------------------------------------------------------------------------- view

  _build() {
    if (this.options.stylesheet && !document.querySelector("link[data-ageguard-capture]")) {
      const link = el("link", "", { rel: "stylesheet", href: new URL("ageguard-capture.css", MODULE_URL).href });
      link.dataset.ageguardCapture = "";
      document.head.appendChild(link);
    }
    const m = this.messages;
    const root = el("section", "agc", { "aria-label": m.region_label, "data-state": "idle" });
    const stage = el("div", "agc-stage");
    const video = el("video", "agc-video", { playsinline: "", muted: "", autoplay: "", "aria-label": m.video_label });
    video.muted = true;
    video.playsInline = true;
    if (this.options.mirror) video.classList.add("agc-mirrored");
    const guide = document.createElementNS(SVG_NS, "svg");
    guide.setAttribute("class", "agc-guide");
    guide.setAttribute("aria-hidden", "true");
    guide.setAttribute("focusable", "false");
    guide.setAttribute("preserveAspectRatio", "xMidYMid slice");
    const mask = document.createElementNS(SVG_NS, "path");
    mask.setAttribute("class", "agc-mask");
    mask.setAttribute("fill-rule", "evenodd");
    const oval = document.createElementNS(SVG_NS, "ellipse");
    oval.setAttribute("class", "agc-oval");
    const progress = document.createElementNS(SVG_NS, "ellipse");
    progress.setAttribute("class", "agc-progress");
    progress.setAttribute("pathLength", "100");
    guide.append(mask, oval, progress);
    const still = el("img", "agc-still", { alt: "" });
    still.hidden = true;
    if (this.options.mirror) still.classList.add("agc-mirrored");
    stage.append(video, still, guide);

    const status = el("p", "agc-status", { role: "status", "aria-live": "polite", "aria-atomic": "true" });
    const alert = el("div", "agc-alert", { role: "alert" });
    alert.hidden = true;
    const alertText = el("p", "agc-alert-text");
    const retry = el("button", "agc-button agc-retry", { type: "button" });
    retry.textContent = m.try_again;
    retry.addEventListener("click", () => this.start());
    alert.append(alertText, retry);

    const controls = el("div", "agc-controls");
    const shutter = el("button", "agc-button agc-shutter", { type: "button" });
    shutter.textContent = m.take_photo;
    shutter.disabled = true;
    shutter.addEventListener("click", () => this.capture({ auto: false }));
    controls.append(shutter);

    root.append(stage, status, alert, controls);
    this.container.replaceChildren(root);
    Object.assign(this, { root, stage, video, still, guide, mask, oval, progress, status, alert, alertText, retry, shutter });
  }

  _setState(state) {
    this.state = state;
    this.root.dataset.state = state;
  }

  _say(key, result = null) {
    const message = this.messages[key] || this.messages.capture_problem;
    this.root.dataset.guidance = key;
    if (key !== this.lastKey) {
      // Only changes are written, so a screen reader announces each new instruction once.
      this.status.textContent = message;
      this.lastKey = key;
    }
    if (this.options.onGuidance) this.options.onGuidance({ key, message, result });
  }

  _fail(key, error) {
    const message = this.messages[key] || this.messages.camera_error;
    this._setState("error");
    this.root.dataset.guidance = key;
    this.alertText.textContent = message;
    this.alert.hidden = false;
    this.status.textContent = "";
    this.lastKey = null;
    this.shutter.disabled = true;
    this.retry.hidden = key === "camera_insecure" || key === "camera_unsupported" || key === "session_ended";
    if (!this.retry.hidden) this.retry.focus();
    if (this.options.onError) this.options.onError({ key, message, error });
  }

  _layoutGuide() {
    const w = this.video.videoWidth || 1280;
    const h = this.video.videoHeight || 720;
    const guide = (this.config && this.config.guide) || { face_ratio: 0.45 };
    // The head outline is about 1.3x the detector's face box (forehead to chin).
    let ry = (guide.face_ratio * h * 1.3) / 2;
    let rx = ry * 0.78;
    if (rx > w * 0.45) {
      rx = w * 0.45;
      ry = rx / 0.78;
    }
    const cx = w / 2;
    const cy = h / 2;
    this.guide.setAttribute("viewBox", `0 0 ${w} ${h}`);
    for (const e of [this.oval, this.progress]) {
      e.setAttribute("cx", cx);
      e.setAttribute("cy", cy);
      e.setAttribute("rx", rx);
      e.setAttribute("ry", ry);
    }
    this.mask.setAttribute(
      "d",
      `M0 0H${w}V${h}H0Z M${cx - rx} ${cy}a${rx} ${ry} 0 1 0 ${2 * rx} 0a${rx} ${ry} 0 1 0 ${-2 * rx} 0Z`,
    );
    this.root.style.setProperty("--agc-aspect", `${w} / ${h}`);
    this.root.style.setProperty("--agc-aspect-num", String(w / h));
  }

  _setProgress(fraction) {
    const f = Math.max(0, Math.min(1, fraction));
    this.progress.style.strokeDasharray = `${(f * 100).toFixed(1)} 100`;
    this.progress.style.visibility = f > 0 ? "visible" : "hidden";
  }

  // ------------------------------------------------------------------------------------ lifecycle

  /** Open the camera and start guiding. Resolves once the camera runs (or its error is shown). */
  async start() {
    this.stop();
    this._hideStill();
    this.alert.hidden = true;
    this._setState("starting");
    this.lastKey = null;
    this._say("starting");
    if (!window.isSecureContext) return this._fail("camera_insecure");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return this._fail("camera_unsupported");
    try {
      this.config = this.config || (await this._fetchConfig());
    } catch (error) {
      this.config = null; // checks will report the server as unavailable; manual capture still works
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: {
          facingMode: this.options.facingMode,
          width: { ideal: 1920 },
          height: { ideal: 1080 },
          frameRate: { ideal: 30 },
        },
      });
    } catch (error) {
      return this._fail(CAMERA_ERRORS[error && error.name] || "camera_error", error);
    }
    this.video.srcObject = this.stream;
    try {
      await this.video.play();
    } catch (error) {
      // Autoplay of a muted inline video is allowed everywhere; carry on when play() is merely late.
    }
    if (!this.video.videoWidth) {
      await new Promise((resolve) => this.video.addEventListener("loadedmetadata", resolve, { once: true }));
    }
    this._layoutGuide();
    this.stats = { frames: 0, good: 0, startedAt: Date.now() };
    this._resetSteady();
    this.running = true;
    this.shutter.disabled = false;
    this._setState("guiding");
    this._say("loading");
    this._loop();
    return undefined;
  }

  _showStill(blob) {
    this._hideStill();
    this.stillUrl = URL.createObjectURL(blob);
    this.still.src = this.stillUrl;
    this.still.alt = this.messages.captured;
    this.still.hidden = false;
  }

  _hideStill() {
    if (this.stillUrl) URL.revokeObjectURL(this.stillUrl);
    this.stillUrl = null;
    this.still.removeAttribute("src");
    this.still.hidden = true;
  }

  /** Stop the camera and the checks. */
  stop() {
    this.running = false;
    this.pendingManual = false;
    if (this.stream) {
      for (const track of this.stream.getTracks()) track.stop();
      this.stream = null;
    }
    if (this.video) this.video.srcObject = null;
    if (this.shutter) this.shutter.disabled = true;
  }

  async _fetchConfig() {
    const level = this.options.level === "low" ? "?level=low" : "";
    const response = await fetch(`${this.server}/capture/config${level}`, { credentials: "omit" });
    if (!response.ok) throw new Error(`config ${response.status}`);
    return response.json();
  }

  _captureSize() {
    const limits = (this.config && this.config.capture) || { max_width: 2000, max_height: 2000, max_pixels: 2100000 };
    return fitCaptureSize(this.video.videoWidth, this.video.videoHeight, limits);
  }

  _resetSteady() {
    this.steady = { count: 0, since: 0, face: null };
  }

  async _loop() {
    while (this.running) {
      const started = Date.now();
      const interval = (this.config && this.config.preview.interval_ms) || 250;
      if (!this.busy && this.video.videoWidth) {
        try {
          await this._checkPreview();
        } catch (error) {
          if (!this.running) break;
        }
      }
      await sleep(Math.max(50, interval - (Date.now() - started)));
    }
  }

  async _post(body) {
    // JSON sent as text/plain: a "simple" cross-origin request, so no CORS preflight is needed.
    const response = await fetch(`${this.server}/capture/check`, {
      method: "POST",
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      credentials: "omit",
      body: JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    return { status: response.status, data };
  }

  async _checkPreview() {
    if (!this.config) {
      try {
        this.config = await this._fetchConfig();
        this._layoutGuide();
      } catch (error) {
        this._say("server_unavailable");
        return;
      }
    }
    const full = this._captureSize();
    const pw = Math.min(this.config.preview.width, full.width);
    const ph = Math.round((pw * full.height) / full.width);
    const canvas = this._previewCanvas || (this._previewCanvas = document.createElement("canvas"));
    canvas.width = pw;
    canvas.height = ph;
    canvas.getContext("2d").drawImage(this.video, 0, 0, pw, ph);
    const blob = await blobFromCanvas(canvas, "image/jpeg", 0.85);
    const img = base64FromBytes(new Uint8Array(await blob.arrayBuffer()));
    const body = { img, width: full.width, height: full.height, level: this.options.level };
    if (this.session && this.session.token) body.token = this.session.token;
    const { status, data } = await this._post(body);
    if (!this.running || this.busy) return;
    if (status !== 200 || !data) {
      this._resetSteady();
      this._setProgress(0);
      const code = data && data.error_code;
      if (code === "INVALID_SECURE_SESSION" || code === "SECURE_SESSION_NOT_FOUND") {
        this.stop();
        this._fail("session_ended");
      } else {
        this._say(status === 503 ? "loading" : "server_unavailable");
      }
      return;
    }
    this.stats.frames += 1;
    this._onResult(data);
  }

  _onResult(result) {
    const preview = this.config.preview;
    if (!result.ok) {
      this._resetSteady();
      this._setProgress(0);
      this.root.dataset.ok = "false";
      this._say(messageKey(result, this.options.mirror), result);
      return;
    }
    this.stats.good += 1;
    this.root.dataset.ok = "true";
    const now = Date.now();
    const f = result.face;
    const prev = this.steady.face;
    let moved = false;
    if (prev && f) {
      const h = Math.max(f.bottom - f.top, 1e-3);
      moved =
        Math.abs((f.left + f.right) / 2 - (prev.left + prev.right) / 2) > preview.steady_motion ||
        Math.abs((f.top + f.bottom) / 2 - (prev.top + prev.bottom) / 2) > preview.steady_motion ||
        Math.abs(h - (prev.bottom - prev.top)) / h > 2 * preview.steady_motion;
    }
    if (moved || this.steady.count === 0) {
      this.steady = { count: 1, since: now, face: f };
      this._say(moved ? "hold_still" : "good", result);
    } else {
      this.steady.count += 1;
      this.steady.face = f;
      this._say("good", result);
    }
    const elapsed = now - this.steady.since;
    const done = this.steady.count >= preview.steady_frames && elapsed >= preview.steady_ms;
    if (this.options.autoCapture) {
      this._setProgress(Math.min(this.steady.count / preview.steady_frames, elapsed / Math.max(preview.steady_ms, 1)));
    }
    if (done && this.options.autoCapture) this.capture({ auto: true });
    else if (this.pendingManual && this.stats.good >= ((this.config.secure || {}).min_good_frames || 0)) {
      this.capture({ auto: false });
    }
  }

  // -------------------------------------------------------------------------------------- capture

  async _encode(width, height) {
    const limits = (this.config && this.config.capture) || {};
    const quality = Math.max(0.95, (this.config && this.config.capture.jpeg_quality) || 0.95);
    const canvas = document.createElement("canvas");
    let w = width;
    let h = height;
    for (let attempt = 0; attempt < 6; attempt += 1) {
      canvas.width = w;
      canvas.height = h;
      canvas.getContext("2d").drawImage(this.video, 0, 0, w, h);
      let blob = await blobFromCanvas(canvas, "image/jpeg", quality);
      if (limits.min_bytes && blob.size < limits.min_bytes) blob = await blobFromCanvas(canvas, "image/jpeg", 1.0);
      if (limits.min_bytes && blob.size < limits.min_bytes) blob = await blobFromCanvas(canvas, "image/png");
      if (!limits.max_bytes || blob.size <= limits.max_bytes || w * 0.85 < (limits.min_width || 0)) {
        return { blob, width: w, height: h };
      }
      w = Math.round(w * 0.85);
      h = Math.round(h * 0.85);
    }
    throw new Error("the capture could not be encoded within the size limits");
  }

  /** Take the photo now (the button does this; auto capture too). */
  async capture({ auto = false } = {}) {
    if (this.busy || !this.running || !this.video.videoWidth) return;
    const needed = (this.config && this.config.secure && this.config.secure.min_good_frames) || 0;
    if (!auto && this.session && this.stats.good < needed) {
      // A secure capture needs a few good live frames first: take it as soon as they are in.
      this.pendingManual = true;
      this._say("hold_still");
      return;
    }
    this.pendingManual = false;
    this.busy = true;
    this._setState("capturing");
    this._say("capturing");
    try {
      const size = this._captureSize();
      const { blob, width, height } = await this._encode(size.width, size.height);
      const bytes = new Uint8Array(await blob.arrayBuffer());
      const img = base64FromBytes(bytes);
      let check = null;
      if (this.config && (this.session || !this.config.session_required)) {
        const body = { img, final: true, level: this.options.level };
        if (this.session && this.session.token) body.token = this.session.token;
        try {
          const { status, data } = await this._post(body);
          if (status === 200 && data) check = data;
          else if (data && (data.error_code === "INVALID_SECURE_SESSION" || data.error_code === "SECURE_SESSION_NOT_FOUND")) {
            this.stop();
            this._fail("session_ended");
            return;
          }
        } catch (error) {
          check = null; // server unreachable: hand the photo over; the analysis endpoint decides
        }
      }
      if (check && !check.ok) {
        this._setState("guiding");
        this._resetSteady();
        this._setProgress(0);
        this.lastKey = null;
        this._say(messageKey(check, this.options.mirror) === "good" ? "capture_problem" : messageKey(check, this.options.mirror), check);
        return;
      }
      const result = {
        img,
        width,
        height,
        mimeType: blob.type,
        auto,
        device: this._device(),
        check,
        secure: null,
      };
      if (this.session && this.session.token && this.session.key) {
        result.secure = await this._sign(bytes, { auto, width, height });
      }
      this._showStill(blob);
      this._setState("captured");
      this._setProgress(1);
      this._say("captured");
      if (this.options.stopAfterCapture) this.stop();
      if (this.options.onCapture) await this.options.onCapture(result);
    } catch (error) {
      this._setState("guiding");
      this._say("capture_problem");
      if (this.options.onError) this.options.onError({ key: "capture_problem", message: this.messages.capture_problem, error });
    } finally {
      this.busy = false;
    }
  }

  _device() {
    const coarse = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;
    return coarse ? "mobile" : "laptop";
  }

  async _sign(bytes, { auto, width, height }) {
    if (!crypto.subtle) throw new Error("secure capture needs a secure (https) page");
    const nonce = new Uint8Array(16);
    crypto.getRandomValues(nonce);
    const facts = {
      v: 1,
      nonce: base64url(nonce),
      frames: this.stats.frames,
      good: this.stats.good,
      started_at: this.stats.startedAt,
      captured_at: Date.now(),
      steady_ms: this.steady.since ? Date.now() - this.steady.since : 0,
      auto,
      width,
      height,
    };
    const verification = base64url(new TextEncoder().encode(JSON.stringify(facts)));
    const digest = hex(await crypto.subtle.digest("SHA-256", bytes));
    const key = await crypto.subtle.importKey(
      "raw",
      bytesFromBase64url(this.session.key),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    const message = new TextEncoder().encode(`${SECURE_DOMAIN}\n${this.session.token}\n${digest}\n${verification}`);
    const signature = base64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, message)));
    return { version: 1, token: this.session.token, signature, verification };
  }
}

/** Shorthand: build the capture view in `container` and start it. */
export function createCapture(container, options) {
  const capture = new AgeGuardCapture(container, options);
  capture.start();
  return capture;
}
