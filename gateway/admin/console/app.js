// qrgw console: progressive enhancement only; every page works without it.
"use strict";
document.addEventListener("submit", (ev) => {
  const form = ev.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) ev.preventDefault();
});
document.addEventListener("DOMContentLoaded", () => {
  const tiles = document.querySelector("[data-refresh]");
  if (tiles) {  // the overview refreshes itself while it is being looked at
    const every = Number(tiles.dataset.refresh) * 1000;
    setInterval(() => { if (!document.hidden) window.location.reload(); }, every);
  }
  for (const field of document.querySelectorAll("form.filters input")) {
    field.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { field.value = ""; } });
  }
});
