// reelscribe's web UI: a thin client of the HTTP API (no build step, no dependencies).
// Everything the server sends is shown with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "reelscribe.apiKey";
const ACTIVE = new Set(["queued", "processing"]);
let selected = null; // id of the job shown in the detail panel
let following = null; // AbortController of its event stream

function authHeaders(extra = {}) {
  const key = localStorage.getItem(KEY_STORAGE);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(`${message} (${code})`);
    this.status = status;
    this.code = code;
  }
}

async function failure(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch (_) { /* not our error shape */ }
  return new ApiError(response.status, code, message);
}

async function api(method, path, body) {
  const init = { method, headers: authHeaders() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response.json();
}

// --- direct-to-storage uploads ------------------------------------------------------------
// A file goes straight to storage in parts (POST /api/uploads/presigned): to presigned S3
// URLs, or to the API's own signed URLs on local storage; the same code either way. The
// server checks the declared size and SHA-256 when the upload completes.

const HASH_BLOCK = 4 * 1024 * 1024;
const RETRIES = 6; // attempts in a row that move nothing before the upload gives up

// SHA-256, incremental (Web Crypto hashes only whole buffers, and only on secure
// origins): a file of any size is read in blocks.
const K256 = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

class Sha256 {
  constructor() {
    this.h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                              0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this.w = new Uint32Array(64);
    this.pending = new Uint8Array(64);
    this.fill = 0;
    this.length = 0;
  }

  update(bytes) {
    this.length += bytes.length;
    let i = 0;
    if (this.fill) {
      i = Math.min(64 - this.fill, bytes.length);
      this.pending.set(bytes.subarray(0, i), this.fill);
      this.fill += i;
      if (this.fill < 64) return;
      this.block(this.pending, 0);
      this.fill = 0;
    }
    for (; i + 64 <= bytes.length; i += 64) this.block(bytes, i);
    this.pending.set(bytes.subarray(i));
    this.fill = bytes.length - i;
  }

  block(bytes, at) {
    const w = this.w;
    for (let t = 0; t < 16; t++) {
      const j = at + 4 * t;
      w[t] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
    }
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15];
      const y = w[t - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
    }
    let [a, b, c, d, e, f, g, h] = this.h;
    for (let t = 0; t < 64; t++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K256[t] + w[t]) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    const add = [a, b, c, d, e, f, g, h];
    for (let k = 0; k < 8; k++) this.h[k] = (this.h[k] + add[k]) | 0;
  }

  hex() {
    const bits = this.length * 8;
    const tail = new Uint8Array(this.fill < 56 ? 64 - this.fill : 128 - this.fill);
    tail[0] = 0x80;
    const view = new DataView(tail.buffer);
    view.setUint32(tail.length - 8, Math.floor(bits / 2 ** 32));
    view.setUint32(tail.length - 4, bits >>> 0);
    this.update(tail);
    return [...this.h].map((word) => word.toString(16).padStart(8, "0")).join("");
  }
}

async function sha256File(file, onProgress) {
  const hash = new Sha256();
  for (let start = 0; start < file.size; start += HASH_BLOCK) {
    const block = await file.slice(start, start + HASH_BLOCK).arrayBuffer();
    hash.update(new Uint8Array(block));
    onProgress(Math.min(file.size, start + HASH_BLOCK) / file.size);
  }
  return hash.hex();
}

// One part to its URL. XHR, because fetch cannot report upload progress. No API key:
// the URL's signature is the permission (and S3 refuses a request that carries both).
function sendPart(url, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onerror = () => reject(new ApiError(0, "network_error", "the connection dropped"));
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else reject(new ApiError(xhr.status, `http_${xhr.status}`, "storage refused a part"));
    };
    xhr.send(blob);
  });
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function upload(file, onProgress) {
  if (!file.size) throw new Error("the file is empty");
  const sha256 = await sha256File(file, (f) => onProgress(0.1 * f));
  let plan = await api("POST", "/api/uploads/presigned", {
    size: file.size, sha256, filename: file.name, content_type: file.type || undefined,
  });
  const progress = (sent) => onProgress(0.1 + 0.9 * (sent / file.size));
  let failures = 0;
  for (;;) {
    let sent = plan.parts.filter((p) => p.received).reduce((total, p) => total + p.size, 0);
    progress(sent);
    try {
      for (const part of plan.parts) { // in order
        if (part.received) continue;
        await sendPart(part.url, file.slice(part.start, part.end + 1),
                       (loaded) => progress(sent + loaded));
        part.received = true;
        sent += part.size;
        failures = 0;
      }
      return await api("POST", plan.complete_url);
    } catch (error) {
      // A dropped connection (fetch's TypeError, XHR's status 0), an expired URL (403),
      // a storage hiccup (5xx) or a part the server did not get whole: ask what arrived
      // and send the rest. Refusals of the upload itself (checksum, size) end it.
      const status = error instanceof ApiError ? error.status : 0;
      const retry = status === 0 || status === 403 || status >= 500 ||
                    error.code === "upload_parts_missing";
      if (!retry || ++failures > RETRIES) throw error;
      await pause(Math.min(8000, 500 * 2 ** (failures - 1)));
      try {
        plan = await api("GET", plan.parts_url);
      } catch (listing) {
        // Still offline: the next round goes on from the parts this page knows arrived.
        if (listing instanceof ApiError && listing.status > 0 && listing.status < 500) {
          throw listing;
        }
      }
    }
  }
}

function showError(element, error) {
  element.textContent = error ? String(error.message || error) : "";
  element.hidden = !error;
}

function parseTime(text) {
  const value = text.trim();
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const parts = value.split(":").map(Number);
  if (parts.length > 3 || parts.some((p) => Number.isNaN(p))) {
    throw new Error(`"${value}" is not a time: use seconds or HH:MM:SS`);
  }
  return parts.reduce((total, part) => total * 60 + part, 0);
}

// Jobs name their upload by id only; this browser remembers the names of its own files.
const NAMES_STORAGE = "reelscribe.uploadNames";

function rememberName(uploadId, name) {
  const names = JSON.parse(localStorage.getItem(NAMES_STORAGE) || "{}");
  names[uploadId] = name;
  const ids = Object.keys(names);
  for (const old of ids.slice(0, Math.max(0, ids.length - 500))) delete names[old];
  localStorage.setItem(NAMES_STORAGE, JSON.stringify(names));
}

function sourceName(job) {
  const source = job.spec.source;
  if (source.url) return source.url;
  const names = JSON.parse(localStorage.getItem(NAMES_STORAGE) || "{}");
  // UUIDv7 ids share their leading (time) digits: the tail tells uploads apart.
  return names[source.upload_id] || `upload …${source.upload_id.slice(-8)}`;
}

// --- the form ---------------------------------------------------------------------------

async function submitJob(event) {
  event.preventDefault();
  const button = $("submit");
  const bar = $("upload-progress");
  showError($("form-error"), null);
  button.disabled = true;
  try {
    const file = $("file").files[0];
    const url = $("url").value.trim();
    if (!file && !url) throw new Error("choose a file or enter a URL");
    const outputs = [...document.querySelectorAll("#outputs input:checked")].map((i) => i.value);
    if (!outputs.length) throw new Error("choose at least one output");
    const spec = { outputs };
    const start = parseTime($("start").value);
    const end = parseTime($("end").value);
    if (start !== null) spec.start = start;
    if (end !== null) spec.end = end;
    const speakers = $("speakers").value;
    const count = $("num-speakers").value.trim();
    if (speakers === "split") spec.options = { channels: "split" };
    if (speakers === "detect") {
      spec.options = { speakers: true };
      if (count) spec.options.num_speakers = Number(count);
    }
    const options = spec.options || {};
    const sentences = $("summary-sentences").value.trim();
    if ($("opt-summary").checked) options.summary = true;
    if (sentences) options.summary_sentences = Number(sentences);
    if ($("opt-keywords").checked) options.keywords = true;
    if ($("opt-chapters").checked) options.chapters = true;
    if ($("moderate").value) options.moderate = $("moderate").value;
    if (Object.keys(options).length) spec.options = options;
    if (file) {
      bar.hidden = false;
      bar.value = 0;
      const uploaded = await upload(file, (fraction) => { bar.value = fraction; });
      spec.source = { upload_id: uploaded.id };
      rememberName(uploaded.id, file.name);
    } else {
      spec.source = { url };
    }
    const job = await api("POST", "/api/jobs", spec);
    $("job-form").reset();
    await refreshJobs();
    select(job.id);
  } catch (error) {
    showError($("form-error"), error);
  } finally {
    button.disabled = false;
    bar.hidden = true;
  }
}

// --- the list -----------------------------------------------------------------------------

let refreshTimer = null;

async function refreshJobs() {
  clearTimeout(refreshTimer);
  let jobs = [];
  try {
    jobs = (await api("GET", "/api/jobs?limit=50")).items;
  } catch (error) {
    showError($("form-error"), error);
  }
  const body = $("jobs").querySelector("tbody");
  body.replaceChildren(...jobs.map((job) => {
    const row = document.createElement("tr");
    row.dataset.id = job.id;
    row.classList.toggle("selected", job.id === selected);
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.value = job.progress;
    for (const content of [sourceName(job), job.status, progress,
                           new Date(job.created_at).toLocaleString()]) {
      const cell = document.createElement("td");
      if (typeof content === "string") cell.textContent = content;
      else cell.append(content);
      row.append(cell);
    }
    row.addEventListener("click", () => select(job.id));
    return row;
  }));
  $("jobs-empty").hidden = jobs.length > 0;
  // Poll while something is moving; the selected job also streams its own events.
  if (jobs.some((job) => ACTIVE.has(job.status))) refreshTimer = setTimeout(refreshJobs, 2000);
}

// --- the detail panel ----------------------------------------------------------------------

function showProgress(state) {
  $("detail-status").textContent = state.status;
  const active = ACTIVE.has(state.status);
  const stage = state.stage ? `${state.stage}${state.message ? ` — ${state.message}` : ""}` : "";
  $("detail-stage").textContent = active ? stage : "";
  $("detail-eta").textContent = state.eta_seconds != null ? `about ${Math.ceil(state.eta_seconds)} s left` : "";
  $("detail-progress").value = state.progress;
  $("cancel").hidden = !active;
}

async function select(jobId) {
  selected = jobId;
  if (following) following.abort();
  for (const row of document.querySelectorAll("#jobs tbody tr")) {
    row.classList.toggle("selected", row.dataset.id === jobId);
  }
  $("detail").hidden = false;
  $("detail-id").textContent = jobId;
  $("downloads").replaceChildren();
  $("transcript").hidden = true;
  $("analysis").hidden = true;
  $("moderation-badge").hidden = true;
  $("player").hidden = true;
  $("player").removeAttribute("src");
  const job = await api("GET", `/api/jobs/${jobId}`);
  showJob(job);
  if (ACTIVE.has(job.status)) follow(jobId);
}

function showJob(job) {
  showProgress(job);
  showError($("detail-error"), job.error ? `${job.error.message} (${job.error.code})` : null);
  $("retry").hidden = job.status !== "failed";
  // A blocked job's result is its moderation report (and nothing else).
  if (job.status === "done" || job.status === "blocked") showResult(job.id);
}

async function showResult(jobId) {
  const result = await api("GET", `/api/jobs/${jobId}/result`);
  if (selected !== jobId) return;
  $("downloads").replaceChildren(...result.outputs.map((output) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = output.url;
    link.textContent = `${output.name}: ${output.filename}`;
    link.dataset.output = output.name;
    item.append(link);
    return item;
  }));
  const video = result.outputs.find((o) => o.name === "burned_clip") ||
                result.outputs.find((o) => o.name === "clip");
  if (video) {
    $("player").src = video.url; // signed, Range-capable: the player can seek
    $("player").hidden = false;
  }
  if (result.transcript && result.transcript.text) {
    $("transcript").replaceChildren(...transcriptTurns(result.transcript));
    $("transcript").hidden = false;
  }
  showAnalysis((result.summary && result.summary.analysis) || {}, Boolean(video));
}

// --- what it is about ----------------------------------------------------------------------

function clock(seconds) {
  const secs = Math.floor(seconds);
  const hours = Math.floor(secs / 3600);
  const mm = String(Math.floor((secs % 3600) / 60)).padStart(2, "0");
  const ss = String(secs % 60).padStart(2, "0");
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

// A time that jumps the player there (the clip's timeline is the transcript's).
function jump(seconds, canPlay) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "jump";
  button.textContent = clock(seconds);
  button.dataset.time = String(seconds);
  button.disabled = !canPlay;
  button.addEventListener("click", () => {
    $("player").currentTime = seconds;
    $("player").play().catch(() => {});
  });
  return button;
}

function showAnalysis(analysis, canPlay) {
  const moderation = analysis.moderation;
  const badge = $("moderation-badge");
  badge.hidden = !moderation;
  if (moderation) {
    badge.textContent = `moderation: ${moderation.verdict}`;
    badge.className = `badge ${moderation.verdict}`;
    badge.title = `${moderation.frames} frames checked, policy ${moderation.policy}`;
  }
  const sentences = analysis.summary || [];
  const keywords = analysis.keywords || [];
  const chapters = analysis.chapters || [];
  $("summary").replaceChildren(...sentences.map((s) => {
    const item = document.createElement("li");
    item.append(jump(s.start, canPlay), document.createTextNode(` ${s.text}`));
    return item;
  }));
  $("keywords").textContent = keywords.length ? `Keywords: ${keywords.join(", ")}` : "";
  $("chapters").replaceChildren(...chapters.map((c) => {
    const item = document.createElement("li");
    item.append(jump(c.start, canPlay), document.createTextNode(` ${c.title}`));
    return item;
  }));
  $("chapters-heading").hidden = !chapters.length;
  $("analysis").hidden = !(sentences.length || keywords.length || chapters.length);
}

// Server-Sent Events read through fetch, so the API key can travel in a header
// (EventSource cannot send one).
async function follow(jobId) {
  const controller = new AbortController();
  following = controller;
  try {
    const response = await fetch(`/api/jobs/${jobId}/events`,
                                 { headers: authHeaders(), signal: controller.signal });
    if (!response.ok) throw await failure(response);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (name === "progress") showProgress(JSON.parse(data.join("\n")));
        if (name === "end") {
          showJob(await api("GET", `/api/jobs/${jobId}`));
          refreshJobs();
          return;
        }
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") showError($("detail-error"), error);
  }
}

async function act(action) {
  if (!selected) return;
  try {
    await api("POST", `/api/jobs/${selected}/${action}`);
    await refreshJobs();
    await select(selected);
  } catch (error) {
    showError($("detail-error"), error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = localStorage.getItem(KEY_STORAGE) || "";
  $("save-key").addEventListener("click", () => {
    const key = $("api-key").value.trim();
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
    refreshJobs();
  });
  $("job-form").addEventListener("submit", submitJob);
  $("cancel").addEventListener("click", () => act("cancel"));
  $("retry").addEventListener("click", () => act("retry"));
  refreshJobs();
});

// The transcript as speaker turns ("Name 00:12  text"), consecutive segments of one
// speaker joined; without speakers, one block of text. Text only, never HTML.
function transcriptTurns(doc) {
  const names = new Map((doc.speakers || []).map((s) => [s.id, s.name]));
  if (!names.size) {
    const block = document.createElement("p");
    block.textContent = doc.text;
    return [block];
  }
  const turns = [];
  for (const seg of doc.segments || []) {
    const text = seg.text.trim();
    if (!text) continue;
    const last = turns[turns.length - 1];
    if (last && last.speaker === seg.speaker) last.text += ` ${text}`;
    else turns.push({ speaker: seg.speaker, start: seg.start, text });
  }
  return turns.map((turn) => {
    const row = document.createElement("p");
    row.className = "turn";
    row.dataset.speaker = turn.speaker || "";
    const who = document.createElement("strong");
    who.textContent = names.get(turn.speaker) || turn.speaker || "Unknown";
    const when = document.createElement("time");
    const secs = Math.floor(turn.start);
    when.textContent = ` ${String(Math.floor(secs / 60)).padStart(2, "0")}:${String(secs % 60).padStart(2, "0")} `;
    row.append(who, when, document.createTextNode(turn.text));
    return row;
  });
}
