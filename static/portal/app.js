// Progressive enhancement only: every page works without this file.
document.addEventListener("htmx:responseError", (event) => {
  const target = document.getElementById("flash");
  if (target && event.detail.xhr) {
    target.textContent = "Request failed (" + event.detail.xhr.status + ").";
  }
});
