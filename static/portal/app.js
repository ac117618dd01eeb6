// Progressive enhancement only: every page works without this file (strict CSP: no inline script).

// An htmx request that fails says so in the page's live region instead of failing silently.
document.addEventListener("htmx:responseError", (event) => {
  const target = document.getElementById("flash");
  if (target && event.detail.xhr) {
    const status = event.detail.xhr.status;
    const reason = status === 403 ? "you are not allowed to do this" : status === 404 ? "not found" : "please retry";
    target.textContent = "Request failed (" + status + "): " + reason + ".";
  }
});
document.addEventListener("htmx:beforeRequest", () => {
  const target = document.getElementById("flash");
  if (target) target.textContent = "";
});

// On a narrow screen the timeline scrolls sideways: start with today in view.
function scrollTimelinesToToday() {
  document.querySelectorAll(".timeline-scroll[data-today-x]").forEach((box) => {
    if (box.scrollWidth <= box.clientWidth) return;
    const ratio = parseFloat(box.dataset.todayX) / parseFloat(box.dataset.width || "1000");
    box.scrollLeft = Math.max(0, ratio * box.scrollWidth - box.clientWidth / 2);
  });
}
document.addEventListener("DOMContentLoaded", scrollTimelinesToToday);

// The API key shown once: selecting the field selects the whole key for copying.
document.addEventListener("focusin", (event) => {
  if (event.target instanceof HTMLInputElement && event.target.classList.contains("secret")) {
    event.target.select();
  }
});

// Filter forms: leave empty fields out of htmx GETs, so the pushed URL stays short and shareable.
document.addEventListener("htmx:configRequest", (event) => {
  if (event.detail.verb !== "get") return;
  const params = event.detail.parameters;
  const names = params instanceof FormData ? Array.from(new Set(params.keys())) : Object.keys(params);
  names.forEach((name) => {
    const value = params instanceof FormData ? params.get(name) : params[name];
    if (value === "" || value === null) {
      if (params instanceof FormData) params.delete(name); else delete params[name];
    }
  });
});

// A table wider than the screen scrolls inside its .table-wrap: make that box reachable by keyboard
// (arrow keys scroll it) only while it really scrolls, so wide screens get no extra tab stop.
function markScrollingTables() {
  document.querySelectorAll(".table-wrap").forEach((box) => {
    if (box.scrollWidth > box.clientWidth + 1) box.setAttribute("tabindex", "0");
    else if (box.getAttribute("tabindex") === "0") box.removeAttribute("tabindex");
  });
}
document.addEventListener("DOMContentLoaded", markScrollingTables);
document.addEventListener("htmx:afterSettle", markScrollingTables);
window.addEventListener("resize", markScrollingTables);
