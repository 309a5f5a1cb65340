// Direct-to-storage uploads (see upload() below).

import { ApiError, api } from "./api.js";

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

export async function upload(file, onProgress) {
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

