// Keeps a run form's grey hints on the values the chosen preset gives (partials/_form_fields.html):
// blank fields take the preset's value, so when the preset (or training's trainer) changes, the hints
// and the "(preset: …)" options change with it. The table comes from GuidedFormMixin.preset_value_json, in a data-preset-values attribute.
(function () {
  "use strict";
  function setUp() {
    var table = document.querySelector("[data-preset-values]");
    if (!table) return;
    var values = JSON.parse(table.dataset.presetValues);
    var form = table.closest("form");
    var inputs = table.dataset.presetInputs.trim().split(/\s+/);
    function show() {
      var key = inputs.map(function (name) {
        var element = form.elements[name];
        return element ? element.value : "";
      }).join("|");
      var chosen = values[key] || {};
      form.querySelectorAll("[data-preset-field]").forEach(function (element) {
        var text = chosen[element.dataset.presetField];
        if (element.tagName === "SELECT") {
          var blank = element.querySelector('option[value=""]');
          if (blank) blank.textContent = text === undefined ? "(preset)" : "(preset: " + text + ")";
        } else {
          element.placeholder = text === undefined ? "" : text;
        }
      });
    }
    inputs.forEach(function (name) {
      var element = form.elements[name];
      if (element) element.addEventListener("change", show);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
