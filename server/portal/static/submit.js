// The cost of the job on the submit form, worked out as its fields change.
// The form works without this script: its "Preview the cost" button asks
// the server. The arithmetic is the library's (gaas.Cost): milli-hours ×
// GPUs × the rate in milli-credits, divided by 1000 and rounded up to a
// milli-credit, in BigInt so that no figure is rounded on the way.
"use strict";
(function () {
  var form = document.getElementById("submit-job");
  var out = document.getElementById("cost");
  if (!form || !out || typeof BigInt !== "function") {
    return;
  }

  // milli reads a decimal number ("2", "0.5") as thousandths, or null.
  function milli(s) {
    var m = /^\s*(\d+)(?:\.(\d{0,3}))?\s*$/.exec(s);
    if (!m) {
      return null;
    }
    return BigInt(m[1]) * 1000n + BigInt(((m[2] || "") + "000").slice(0, 3));
  }

  // decimal writes thousandths as a decimal number without trailing zeros.
  function decimal(v) {
    var whole = v / 1000n, frac = (v % 1000n).toString().padStart(3, "0").replace(/0+$/, "");
    return frac ? whole + "." + frac : whole.toString();
  }

  function rate() {
    var sel = form.elements.gpu_type;
    var opt = sel.options ? sel.options[sel.selectedIndex] : null;
    return BigInt(opt ? opt.dataset.rate : form.dataset.openRate);
  }

  function update() {
    var hours = milli(form.elements.estimated_hours.value);
    var gpus = /^\s*\d+\s*$/.test(form.elements.gpu_count.value) ? BigInt(form.elements.gpu_count.value) : null;
    if (hours === null || gpus === null || hours === 0n || gpus === 0n) {
      out.textContent = "Fill in the GPUs and the estimated hours to see what the job costs.";
      return;
    }
    var r = rate();
    var cost = (hours * gpus * r + 999n) / 1000n;
    out.textContent = "This job costs " + decimal(cost) + " credits: " + decimal(r) + " credits a GPU-hour × " +
      gpus + " GPUs × " + decimal(hours) + " hours. Submitting it checks what you have.";
  }

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  if (!document.getElementById("cost-credits")) {
    update(); // keep the server's preview, which says what is available
  }
})();
