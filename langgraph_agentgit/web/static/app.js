// agentgit serve: the viewer's only script, served as a file (the CSP allows no inline
// script). Pages work without it; it adds the timeline's zoom, picking two checkpoints
// to compare by shift-clicking their dots, and filtering the sessions table as you type.
"use strict";

(function () {
  function zoom() {
    var svg = document.querySelector("#timeline svg");
    if (!svg) return;
    var width = parseFloat(svg.getAttribute("width"));
    var height = parseFloat(svg.getAttribute("height"));
    var scale = 1;
    document.querySelectorAll("button.zoom").forEach(function (button) {
      button.addEventListener("click", function () {
        var factor = parseFloat(button.dataset.zoom);
        if (factor === 0) {
          var box = document.getElementById("timeline").clientWidth;
          scale = Math.min(1, box / width);
        } else {
          scale = Math.max(0.1, Math.min(4, scale * factor));
        }
        svg.setAttribute("width", String(width * scale));
        svg.setAttribute("height", String(height * scale));
      });
    });
  }

  function pickTwo() {
    var form = document.getElementById("diff-form");
    if (!form) return;
    var picked = [];
    document.querySelectorAll("#timeline circle.dot").forEach(function (dot) {
      dot.parentNode.addEventListener("click", function (event) {
        if (!event.shiftKey) return;
        event.preventDefault();
        picked.push(dot);
        dot.classList.add("selected");
        if (picked.length === 2) {
          var url = form.getAttribute("action") + "?a=" +
            encodeURIComponent(picked[0].dataset.checkpointId) + "&b=" +
            encodeURIComponent(picked[1].dataset.checkpointId);
          window.location.assign(url);
        }
      });
    });
  }

  function filterSessions() {
    var input = document.getElementById("filter");
    var table = document.getElementById("sessions");
    if (!input || !table) return;
    input.addEventListener("input", function () {
      var text = input.value.trim().toLowerCase();
      table.querySelectorAll("tbody tr").forEach(function (row) {
        row.hidden = text !== "" && row.textContent.toLowerCase().indexOf(text) === -1;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    zoom();
    pickTwo();
    filterSessions();
  });
})();
