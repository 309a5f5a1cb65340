// Search in the transcript: whole words (the last one may be typed half-way), the hits
// highlighted, a count, next and previous.

const $ = (id) => document.getElementById(id);
let hits = []; // arrays of word spans
let hitAt = -1;
let words = () => []; // the transcript's word spans, in order

const normal = (text) => text.toLocaleLowerCase().replace(/[^\p{L}\p{N}']+/gu, " ").trim();

export function runSearch(move = true) {
  for (const hit of hits) for (const w of hit) w.classList.remove("hit", "hit-current");
  hits = [];
  const tokens = normal($("search").value).split(" ").filter(Boolean);
  const spans = words();
  if (tokens.length) {
    const texts = spans.map((w) => normal(w.textContent));
    for (let i = 0; i + tokens.length <= texts.length; i++) {
      // Whole words, the last one may be typed half-way.
      const ok = tokens.every((t, j) => (j === tokens.length - 1 ? texts[i + j].startsWith(t)
                                                                 : texts[i + j] === t));
      if (ok) hits.push(spans.slice(i, i + tokens.length));
    }
  }
  for (const hit of hits) for (const w of hit) w.classList.add("hit");
  hitAt = hits.length ? Math.min(Math.max(hitAt, 0), hits.length - 1) : -1;
  if (move && hits.length) hitAt = 0;
  showHit();
}

function showHit() {
  const count = $("search-count");
  if (!$("search").value.trim()) count.textContent = "";
  else if (!hits.length) count.textContent = "no matches";
  else count.textContent = `${hitAt + 1} of ${hits.length}`;
  $("search-prev").disabled = hits.length < 2;
  $("search-next").disabled = hits.length < 2;
  for (const hit of hits) for (const w of hit) w.classList.remove("hit-current");
  if (hitAt >= 0) {
    for (const w of hits[hitAt]) w.classList.add("hit-current");
    hits[hitAt][0].scrollIntoView({ block: "nearest" });
  }
}

function stepHit(by) {
  if (!hits.length) return;
  hitAt = (hitAt + by + hits.length) % hits.length;
  showHit();
}

export function clearSearch() {
  hits = [];
  hitAt = -1;
  $("search").value = "";
  $("search-count").textContent = "";
}

export function initSearch(wordSpans) {
  words = wordSpans;
  $("search").addEventListener("input", () => runSearch(true));
  $("search").addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); stepHit(event.shiftKey ? -1 : 1); }
  });
  $("search-next").addEventListener("click", () => stepHit(1));
  $("search-prev").addEventListener("click", () => stepHit(-1));
}
