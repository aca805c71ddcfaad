// rekollect console: selection of face tiles, confirmations, and dropping photos on
// the upload forms. Everything works without it, only less comfortably.
"use strict";

(function () {
  const boxes = () => Array.from(document.querySelectorAll('input[name="face_id"]'));

  function refresh() {
    const chosen = new Set(boxes().filter((b) => b.checked).map((b) => b.value));
    document.querySelectorAll(".tile").forEach((tile) => {
      tile.classList.toggle("selected", chosen.has(tile.dataset.faceId));
    });
    const count = document.getElementById("selected-count");
    if (count) {
      count.textContent = chosen.size === 0 ? "No face selected"
        : chosen.size === 1 ? "1 face selected" : chosen.size + " faces selected";
    }
    document.querySelectorAll("[data-needs-selection]").forEach((button) => {
      button.disabled = chosen.size === 0;
    });
  }

  // One face may be shown twice (under its user and in the faces list): keep its
  // check boxes in step. Shift-click selects the run of tiles since the last click.
  let last = null;
  document.addEventListener("click", (event) => {
    const box = event.target.closest('input[name="face_id"]');
    if (!box) return;
    const all = boxes();
    if (event.shiftKey && last && last !== box) {
      const [from, to] = [all.indexOf(last), all.indexOf(box)].sort((a, b) => a - b);
      all.slice(from, to + 1).forEach((b) => { b.checked = box.checked; });
    }
    all.filter((b) => b.value === box.value).forEach((b) => { b.checked = box.checked; });
    last = box;
    refresh();
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });

  const clear = document.getElementById("clear-selection");
  if (clear) {
    clear.addEventListener("click", () => {
      boxes().forEach((b) => { b.checked = false; });
      refresh();
    });
  }

  // Dropping photos on a form puts them in its file input and sends it.
  document.querySelectorAll("form[data-drop]").forEach((form) => {
    const input = form.querySelector('input[type="file"]');
    ["dragenter", "dragover"].forEach((name) => form.addEventListener(name, (event) => {
      event.preventDefault();
      form.classList.add("over");
    }));
    ["dragleave", "drop"].forEach((name) => form.addEventListener(name, () => {
      form.classList.remove("over");
    }));
    form.addEventListener("drop", (event) => {
      event.preventDefault();
      const files = event.dataTransfer && event.dataTransfer.files;
      if (!files || files.length === 0) return;
      input.files = files;
      form.requestSubmit();
    });
  });

  document.querySelectorAll("img[data-fallback]").forEach((img) => {
    img.addEventListener("error", () => img.replaceWith(Object.assign(
      document.createElement("span"), { className: "no-image", textContent: "no image" })));
  });

  // The browser may restore check boxes on "back": show them as they are.
  window.addEventListener("pageshow", refresh);
  refresh();
})();
