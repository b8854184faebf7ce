// Offers only the datasets that fit another field's choice (training's trainer): a select marked
// data-fit-follows="trainer" has options marked data-fits="sft preference ..." (webapp/core/choices.py
// ShapeTaggedSelect); options that do not fit the current choice are hidden, and a hidden choice is cleared.
(function () {
  "use strict";
  function setUp() {
    document.querySelectorAll("select[data-fit-follows]").forEach(function (select) {
      var form = select.form;
      var leader = form && form.elements[select.dataset.fitFollows];
      if (!leader) return;
      function filter() {
        select.querySelectorAll("option[data-fits]").forEach(function (option) {
          var fits = option.dataset.fits.split(" ").indexOf(leader.value) !== -1;
          option.hidden = !fits;
          option.disabled = !fits;
          if (!fits && option.selected) select.value = "";
        });
      }
      leader.addEventListener("change", filter);
      filter();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
