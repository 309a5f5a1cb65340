// The transcript workspace: the job's media in the page's one player, the transcript
// beside it (speaker turns, segments, words, each with its times in seconds), the word
// being spoken highlighted, click-to-seek, search, inline corrections with undo,
// speaker renaming and "export selection as clip". Text only, never HTML.

import { api } from "./api.js";
import { clearSearch, initSearch, runSearch } from "./search.js";

const $ = (id) => document.getElementById(id);
const SKIP_SECONDS = 5;
// Dark enough for text on white (WCAG AA, 4.5:1 and more); a speaker keeps its colour.
const SPEAKER_COLOURS = ["#1f5fbf", "#b3261e", "#1b7a3a", "#7b3fa8", "#935400",
                         "#00707a", "#a8306a", "#4f5b00"];

let state = null; // { jobId, job, transcript, words: [span], segments: [el] }
let current = null; // the highlighted word span
let selection = null; // { start, end } on the transcript's timeline (seconds)
let anchorSegment = null; // the segment a shift-click extends from
const undoStack = []; // { index, text } of edits, newest last
let frame = 0;
let onChange = () => {}; // tells the page a result changed (an edit)
let onClip = () => {}; // tells the page a clip job was submitted

export function player() {
  return $("player");
}

export function clock(seconds) {
  const secs = Math.floor(seconds);
  const hours = Math.floor(secs / 3600);
  const mm = String(Math.floor((secs % 3600) / 60)).padStart(2, "0");
  const ss = String(secs % 60).padStart(2, "0");
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

function element(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "class") node.className = value;
    else if (key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

export function seek(seconds, play = false) {
  const media = player();
  if (!media || media.hidden) return;
  media.currentTime = Math.max(0, seconds);
  highlight(seconds);
  if (play) media.play().catch(() => {});
}

// --- the player -------------------------------------------------------------------------

// The one media element of the page: <video> for video, <audio> for audio-only media.
function usePlayer(kind) {
  let media = player();
  if (media.tagName.toLowerCase() !== kind) {
    const fresh = element(kind, { id: "player", controls: true, preload: "metadata" });
    fresh.setAttribute("aria-label", "Media player");
    media.replaceWith(fresh);
    media = fresh;
    wirePlayer(media);
  }
  return media;
}

function wirePlayer(media) {
  media.addEventListener("timeupdate", () => highlight(media.currentTime));
  media.addEventListener("seeked", () => highlight(media.currentTime));
  media.addEventListener("play", () => {
    // timeupdate comes only a few times a second; follow every frame while playing.
    const tick = () => {
      highlight(media.currentTime);
      if (!media.paused && !media.ended) frame = requestAnimationFrame(tick);
    };
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(tick);
  });
}

export function mediaOutput(result) {
  return result.outputs.find((o) => o.name === "burned_clip") ||
         result.outputs.find((o) => o.name === "clip") || null;
}

function showMedia(output) {
  const note = $("player-note");
  if (!output) {
    const media = player();
    media.hidden = true;
    media.removeAttribute("src");
    note.hidden = false;
    return;
  }
  note.hidden = true;
  const audio = (output.content_type || "").startsWith("audio/") || /\.(m4a|mp3|ogg|wav|flac|opus)$/i.test(output.filename);
  const media = usePlayer(audio ? "audio" : "video");
  // An edit re-signs the links: the same media keeps playing where it is.
  const identity = `${output.name}:${output.sha256 || output.filename}`;
  if (media.dataset.identity !== identity) {
    media.src = output.url; // signed, Range-capable: the player can seek
    media.dataset.identity = identity;
  }
  media.hidden = false;
}

export function resetWorkspace() {
  state = null;
  current = null;
  clearSearch();
  selection = null;
  anchorSegment = null;
  undoStack.length = 0;
  const media = player();
  media.pause?.();
  media.hidden = true;
  media.removeAttribute("src");
  delete media.dataset.identity;
  $("workspace").hidden = true;
  $("transcript").replaceChildren();
  $("warnings").replaceChildren();
  $("warnings-box").hidden = true;
  $("undo").disabled = true;
  $("edit-status").textContent = "";
  showSelection();
}

// --- the transcript ---------------------------------------------------------------------

// Words of a segment; a segment without word timings gets its text's words spread
// evenly over it, so that search and click-to-seek work the same.
function segmentWords(seg) {
  if (seg.words && seg.words.length) return seg.words;
  const tokens = seg.text.split(/\s+/).filter(Boolean);
  const step = (seg.end - seg.start) / Math.max(1, tokens.length);
  return tokens.map((text, i) => ({ text, start: seg.start + i * step, end: seg.start + (i + 1) * step }));
}

function speakerColour(doc, speaker) {
  const ids = (doc.speakers || []).map((s) => s.id);
  const at = ids.indexOf(speaker);
  return SPEAKER_COLOURS[(at < 0 ? 0 : at) % SPEAKER_COLOURS.length];
}

function renderSegment(seg, index) {
  const row = element("p", {
    class: "segment",
    dataset: { index: String(index), start: String(seg.start), end: String(seg.end) },
  });
  const time = element("button", { type: "button", class: "seg-time", textContent: clock(seg.start),
                                    title: "Play from here (shift-click: select up to here)" });
  time.setAttribute("aria-label", `Segment at ${clock(seg.start)}: play from here`);
  const text = element("span", { class: "seg-text" });
  for (const word of segmentWords(seg)) {
    const span = element("span", {
      class: "word",
      textContent: word.text.trim(),
      dataset: { start: String(word.start), end: String(word.end) },
    });
    if (word.interpolated) span.classList.add("guessed");
    text.append(span, " ");
  }
  const edit = element("button", { type: "button", class: "seg-edit", textContent: "Edit" });
  edit.setAttribute("aria-label", `Edit segment at ${clock(seg.start)}`);
  row.append(time, " ", text, edit);
  return row;
}

function renderTranscript(doc) {
  const names = new Map((doc.speakers || []).map((s) => [s.id, s.name]));
  const turns = [];
  (doc.segments || []).forEach((seg, index) => {
    const last = turns[turns.length - 1];
    if (last && last.speaker === seg.speaker) last.segments.push([seg, index]);
    else turns.push({ speaker: seg.speaker, segments: [[seg, index]] });
  });
  return turns.map((turn) => {
    const block = element("section", { class: "turn", dataset: { speaker: turn.speaker || "" } });
    if (turn.speaker) {
      const colour = speakerColour(doc, turn.speaker);
      block.style.borderLeftColor = colour;
      const name = names.get(turn.speaker) || turn.speaker;
      const who = element("strong", { class: "speaker" });
      const button = element("button", { type: "button", class: "speaker-name", textContent: name,
                                         dataset: { speaker: turn.speaker } });
      button.style.color = colour;
      button.setAttribute("aria-label", `Rename ${name}`);
      who.append(button);
      const [first] = turn.segments[0];
      block.append(element("header", {}, who, " ",
                           element("time", { textContent: clock(first.start) })));
    }
    for (const [seg, index] of turn.segments) block.append(renderSegment(seg, index));
    return block;
  });
}

export function showWorkspace(jobId, job, result) {
  const doc = result.transcript;
  const sameJob = state && state.jobId === jobId;
  showMedia(mediaOutput(result));
  if (!sameJob) undoStack.length = 0;
  if (!doc) {
    $("workspace").hidden = !mediaOutput(result);
    $("transcript-pane").hidden = true;
    state = { jobId, job, transcript: null, words: [], segments: [] };
    return;
  }
  $("transcript-pane").hidden = false;
  player().dataset.offset = String(Number(doc.source_offset) || 0);
  const transcript = $("transcript");
  transcript.replaceChildren(...renderTranscript(doc));
  state = {
    jobId, job, transcript: doc,
    words: [...transcript.querySelectorAll(".word")],
    segments: [...transcript.querySelectorAll(".segment")],
  };
  current = null;
  showWarnings(doc);
  $("workspace").hidden = false;
  $("undo").disabled = !undoStack.length;
  runSearch(false);
  showSelection();
  highlight(player().hidden ? 0 : player().currentTime);
}

function showWarnings(doc) {
  const warnings = Array.isArray(doc.warnings) ? doc.warnings : [];
  $("warnings").replaceChildren(...warnings.map((w) => {
    const start = Number(w.start) || 0;
    const jump = element("button", { type: "button", class: "jump", textContent: clock(start) });
    jump.addEventListener("click", () => seek(start, true));
    const reason = [w.reason, w.message, w.detail].filter((x) => typeof x === "string").join(": ");
    return element("li", { dataset: { start: String(start), end: String(Number(w.end) || start) } },
                   jump, ` ${reason || "check this part"}`);
  }));
  $("warnings-box").hidden = !warnings.length;
}

// The word being said at `seconds`: the last one that has started.
function highlight(seconds) {
  if (!state || !state.words.length) return;
  const words = state.words;
  let lo = 0;
  let hi = words.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (Number(words[mid].dataset.start) <= seconds + 0.001) { found = mid; lo = mid + 1; }
    else hi = mid - 1;
  }
  const word = found >= 0 ? words[found] : null;
  if (word === current) return;
  if (current) {
    current.classList.remove("current");
    current.closest(".segment")?.classList.remove("active");
  }
  current = word;
  if (word) {
    word.classList.add("current");
    word.closest(".segment")?.classList.add("active");
    const media = player();
    if (!media.paused) word.scrollIntoView({ block: "nearest" });
  }
}

// --- selection and "export as clip" -----------------------------------------------------

function showSelection() {
  for (const seg of state ? state.segments : []) {
    const inside = selection && Number(seg.dataset.start) < selection.end &&
                   Number(seg.dataset.end) > selection.start;
    seg.classList.toggle("selected", Boolean(inside));
  }
  $("selection-label").textContent = selection
    ? `Selected ${clock(selection.start)}–${clock(selection.end)} (${(selection.end - selection.start).toFixed(1)} s)`
    : "Select text in the transcript, or shift-click two segment times.";
  $("export-clip").disabled = !selection;
}

// Selected text in the transcript becomes a time range: from the first word touched to
// the last.
function selectionFromText() {
  const chosen = document.getSelection();
  if (!state || !chosen || chosen.isCollapsed || !chosen.rangeCount) return;
  const range = chosen.getRangeAt(0);
  const words = state.words.filter((w) => range.intersectsNode(w));
  if (!words.length) return;
  selection = {
    start: Number(words[0].dataset.start),
    end: Number(words[words.length - 1].dataset.end),
  };
  showSelection();
}

async function exportClip() {
  if (!state || !selection) return;
  const status = $("export-status");
  const offset = Number(state.transcript.source_offset) || 0;
  const spec = {
    source: state.job.spec.source,
    start: +(offset + selection.start).toFixed(3),
    end: +(offset + selection.end).toFixed(3),
    outputs: ["clip", "srt", "json"],
  };
  $("export-clip").disabled = true;
  try {
    const job = await api("POST", "/api/jobs", spec);
    status.textContent = `Clip job ${job.id} submitted.`;
    onClip(job);
  } catch (error) {
    status.textContent = `The clip could not be submitted: ${error.message}`;
  } finally {
    $("export-clip").disabled = !selection;
  }
}

// --- corrections and renames ------------------------------------------------------------

async function saveText(index, text, remember) {
  const previous = state.transcript.segments[index].text.trim();
  const status = $("edit-status");
  status.textContent = "Saving…";
  try {
    const result = await api("PATCH", `/api/jobs/${state.jobId}/transcript`,
                             { segments: [{ index, text }] });
    if (remember) undoStack.push({ index, text: previous });
    status.textContent = remember ? "Saved: every output was updated." : "Undone.";
    onChange(result);
  } catch (error) {
    status.textContent = `Not saved: ${error.message}`;
  }
}

function startEdit(segment) {
  if (segment.querySelector("textarea")) return;
  const index = Number(segment.dataset.index);
  const original = state.transcript.segments[index].text.trim();
  const text = segment.querySelector(".seg-text");
  const box = element("textarea", { class: "seg-input", value: original, rows: 2 });
  box.setAttribute("aria-label", `Text of the segment at ${clock(Number(segment.dataset.start))}`);
  const save = element("button", { type: "button", class: "seg-save", textContent: "Save" });
  const cancel = element("button", { type: "button", class: "seg-cancel", textContent: "Cancel" });
  const editor = element("span", { class: "seg-editor" }, box, save, cancel);
  text.hidden = true;
  segment.querySelector(".seg-edit").hidden = true;
  segment.append(editor);
  box.focus();
  const close = () => {
    editor.remove();
    text.hidden = false;
    segment.querySelector(".seg-edit").hidden = false;
  };
  const commit = () => {
    const value = box.value.trim();
    close();
    if (value !== original) saveText(index, value, true);
  };
  save.addEventListener("click", commit);
  cancel.addEventListener("click", close);
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); commit(); }
    if (event.key === "Escape") { event.preventDefault(); close(); }
  });
}

async function undo() {
  const last = undoStack.pop();
  $("undo").disabled = !undoStack.length;
  if (last) await saveText(last.index, last.text, false);
}

function startRename(button) {
  const id = button.dataset.speaker;
  const box = element("input", { type: "text", class: "speaker-input", value: button.textContent,
                                 maxLength: 100 });
  box.setAttribute("aria-label", `New name for ${button.textContent}`);
  button.replaceWith(box);
  box.focus();
  box.select();
  let done = false;
  const finish = async (keep) => {
    if (done) return;
    done = true;
    const name = box.value.trim();
    box.replaceWith(button);
    if (!keep || !name || name === button.textContent) return;
    const status = $("edit-status");
    status.textContent = "Renaming…";
    try {
      const result = await api("PATCH", `/api/jobs/${state.jobId}/speakers`, { names: { [id]: name } });
      status.textContent = `Renamed to ${name}: every output was updated.`;
      onChange(result);
    } catch (error) {
      status.textContent = `Not renamed: ${error.message}`;
    }
  };
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); finish(true); }
    if (event.key === "Escape") { event.preventDefault(); finish(false); }
  });
  box.addEventListener("blur", () => finish(true));
}

// --- keyboard ---------------------------------------------------------------------------

function typing(target) {
  return target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function onKey(event) {
  if (!state || $("workspace").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
  if (typing(event.target)) return;
  const media = player();
  if (media.hidden) return;
  const onButton = event.target instanceof HTMLButtonElement || event.target === media;
  switch (event.key) {
    case "k":
    case " ":
      if (event.key === " " && onButton) return; // space presses the focused button
      event.preventDefault();
      if (media.paused) media.play().catch(() => {});
      else media.pause();
      break;
    case "j":
    case "ArrowLeft":
      if (event.key === "ArrowLeft" && event.target === media) return;
      event.preventDefault();
      seek(media.currentTime - SKIP_SECONDS);
      break;
    case "l":
    case "ArrowRight":
      if (event.key === "ArrowRight" && event.target === media) return;
      event.preventDefault();
      seek(Math.min(media.duration || Infinity, media.currentTime + SKIP_SECONDS));
      break;
    case "/":
      event.preventDefault();
      $("search").focus();
      break;
    default:
  }
}

export function initWorkspace(handlers) {
  onChange = handlers.onChange;
  onClip = handlers.onClip;
  wirePlayer(player());
  $("transcript").addEventListener("click", (event) => {
    const target = event.target;
    if (!(target instanceof HTMLElement)) return;
    if (target.classList.contains("speaker-name")) return startRename(target);
    const segment = target.closest(".segment");
    if (!segment) return;
    if (target.classList.contains("seg-edit")) return startEdit(segment);
    if (target.closest(".seg-editor")) return;
    if (target.classList.contains("seg-time")) {
      if (event.shiftKey && anchorSegment) {
        const a = [anchorSegment, segment].map((s) => [Number(s.dataset.start), Number(s.dataset.end)]);
        selection = { start: Math.min(a[0][0], a[1][0]), end: Math.max(a[0][1], a[1][1]) };
        showSelection();
        return;
      }
      anchorSegment = segment;
      return seek(Number(segment.dataset.start), true);
    }
    // A click that ends a text selection selects, it does not seek.
    const chosen = document.getSelection();
    if (chosen && !chosen.isCollapsed) return;
    if (target.classList.contains("word")) return seek(Number(target.dataset.start));
    seek(Number(segment.dataset.start));
  });
  $("transcript").addEventListener("mouseup", () => setTimeout(selectionFromText, 0));
  $("transcript").addEventListener("keyup", (event) => { if (event.shiftKey) selectionFromText(); });
  initSearch(() => (state ? state.words : []));
  $("export-clip").addEventListener("click", exportClip);
  $("clear-selection").addEventListener("click", () => { selection = null; showSelection(); });
  $("undo").addEventListener("click", undo);
  document.addEventListener("keydown", onKey);
}
