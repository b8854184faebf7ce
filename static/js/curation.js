/* Artifact curation: keys on the selected row. j/k move, d drops or restores, f flags or unflags,
   e opens the edit form, Escape cancels it, Ctrl+Enter saves it. The server keeps the draft; this
   file only clicks the row's own buttons (htmx does the rest), so without it every button still works. */
(function () {
  "use strict";

  var lastRow = null;

  function table() { return document.getElementById("artifact-rows"); }
  function rows() { return Array.prototype.slice.call(table().querySelectorAll("tbody tr[data-row]")); }
  function rowOf(element) { return element && element.closest ? element.closest("#artifact-rows tr[data-row]") : null; }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var index = all.indexOf(rowOf(document.activeElement));
    var next = all[Math.min(all.length - 1, Math.max(0, index < 0 ? 0 : index + step))];
    next.focus();
    next.scrollIntoView({ block: "nearest" });
  }

  function press(row, key) {
    var button = row.querySelector('[data-key="' + key + '"]');
    if (!button) return false;
    lastRow = row.dataset.row;
    button.click();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (!table() || event.altKey || event.metaKey) return;
    var row = rowOf(event.target);
    var typing = event.target.matches && event.target.matches("input, textarea, select");
    if (row && event.key === "Escape" && press(row, "Escape")) { event.preventDefault(); return; }
    if (row && typing && event.key === "Enter" && event.ctrlKey) {
      var form = event.target.form;
      if (form) { lastRow = row.dataset.row; form.requestSubmit(); event.preventDefault(); }
      return;
    }
    if (typing || event.ctrlKey) return;
    if (event.key === "j") { move(1); event.preventDefault(); return; }
    if (event.key === "k") { move(-1); event.preventDefault(); return; }
    if (row && (event.key === "d" || event.key === "f" || event.key === "e") && press(row, event.key)) {
      event.preventDefault();
    }
  });

  // The row was swapped in place: select it again (its edit form's response box when it is one).
  // Only the settle of the row last acted on counts: an earlier row's swap that settles late
  // (a quick "d" then "j" then "e") must neither take the focus nor forget the row still awaited.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (lastRow === null || !table()) return;
    var settled = rowOf(event.target);
    if (!settled || settled.dataset.row !== lastRow) return;
    var row = table().querySelector('tr[data-row="' + lastRow + '"]');
    lastRow = null;
    if (!row) return;
    var box = row.querySelector("textarea[data-response]") || row.querySelector("textarea");
    (box || row).focus();
  });

  // A refused action (a row that no longer exists ...) answers 400 with its reason: show it, swap nothing.
  document.addEventListener("htmx:responseError", function (event) {
    var box = document.getElementById("curation-error");
    if (!box || !rowOf(event.target)) return;
    box.textContent = event.detail.xhr.responseText || ("The server answered " + event.detail.xhr.status + ".");
    box.hidden = false;
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var box = document.getElementById("curation-error");
    if (box && event.detail.successful && rowOf(event.target)) box.hidden = true;
  });

  // A click on a row's edit or cancel button also remembers the row, so focus follows the swap.
  document.addEventListener("click", function (event) {
    var row = rowOf(event.target);
    if (row && event.target.closest("button")) lastRow = row.dataset.row;
  });
})();
