// Behaviour shared by every page, kept out of the HTML so the Content-Security-Policy needs no inline scripts.
// <select data-submit-on-change> submits its form when the choice changes (e.g. the run list's status filter).
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLElement && field.matches("[data-submit-on-change]") && field.form) {
    field.form.requestSubmit();
  }
});
