// gradpath report: tooltips, paths of a clicked weight, KaTeX, and a self-check (#selftest).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var tip = document.getElementById("tip");
  var pathList = document.getElementById("paths");
  var pathSum = document.getElementById("pathsum");
  // Six significant digits, as the rest of gradpath writes numbers.
  function fmt(x) {
    return typeof x === "number" ? String(Number(x.toPrecision(6))) : String(x);
  }
  // A node is <g id="n40">; a cell of a grid table is <g id="a_n26"> (Graphviz's anchor).
  function byId(id) {
    return document.getElementById(id) || document.getElementById("a_" + id);
  }

  // Graphviz puts a tooltip in <title> (nodes) or xlink:title (table cells).
  function tooltipOf(el) {
    var a = el.querySelector("a");
    var t = a && (a.getAttribute("xlink:title") || a.getAttribute("title"));
    if (t) return t;
    var title = el.querySelector("title");
    return title ? title.textContent : "";
  }
  document.querySelectorAll("#graph g.node, #graph g[id^=n]").forEach(function (el) {
    el.addEventListener("mousemove", function (ev) {
      var text = tooltipOf(el);
      if (!text) return;
      tip.textContent = text;
      tip.hidden = false;
      tip.style.left = ev.pageX + 12 + "px";
      tip.style.top = ev.pageY + 12 + "px";
    });
    el.addEventListener("mouseleave", function () { tip.hidden = true; });
  });

  function clear() {
    document.querySelectorAll("#graph .hl").forEach(function (el) { el.classList.remove("hl"); });
    pathList.textContent = "";
  }

  // Lights up every path of weight `id` ("n26") and lists them with their products.
  function select(id) {
    var w = data.weights[id];
    clear();
    if (!w) return 0;
    if (w.too_many) {
      pathSum.textContent = w.name + ": too many paths to list; the engine's ∂" + data.loss + "/∂" + w.name + " = " + fmt(w.grad);
      return 0;
    }
    w.paths.forEach(function (p) {
      p.edges.concat(p.nodes).forEach(function (e) {
        var el = byId(e);
        if (el) el.classList.add("hl");
      });
      var li = document.createElement("li");
      li.textContent = p.route + ":  " + p.symbols + " = " + fmt(p.product);
      pathList.appendChild(li);
    });
    pathSum.textContent = w.name + ": " + w.paths.length + " paths; their sum " + fmt(w.sum) + " beside the engine's ∂" +
      data.loss + "/∂" + w.name + " = " + fmt(w.grad);
    return w.paths.length;
  }
  Object.keys(data.weights).forEach(function (id) {
    var el = byId(id);
    if (!el) return;
    el.classList.add("weight");
    el.addEventListener("click", function (ev) { ev.preventDefault(); select(id); });
  });
  document.querySelectorAll("#values tr[data-node]").forEach(function (row) {
    if (data.weights[row.dataset.node]) {
      row.classList.add("weight");
      row.addEventListener("click", function () { select(row.dataset.node); });
    }
  });

  // Term k (1-based, ellipses not counted) of the right side, in red and underlined:
  // terms are split at + and - outside every bracket, after the first top-level "=".
  function markTerm(tex, k) {
    if (/\\\\|&/.test(tex)) return null;  // aligned blocks: left as written
    var depth = 0, eq = -1, i;
    for (i = 0; i < tex.length && eq < 0; i++) {
      var c = tex[i];
      if (c === "{" || c === "(" || c === "[") depth++;
      else if (c === "}" || c === ")" || c === "]") depth--;
      else if (c === "=" && depth === 0) eq = i;
    }
    if (eq < 0) return null;
    var cuts = [eq + 1];
    depth = 0;
    for (i = eq + 1; i < tex.length; i++) {
      var d = tex[i];
      if (d === "{" || d === "(" || d === "[") depth++;
      else if (d === "}" || d === ")" || d === "]") depth--;
      else if ((d === "+" || d === "-") && depth === 0 && tex.slice(cuts[cuts.length - 1], i).trim()) cuts.push(i + 1);
    }
    cuts.push(tex.length + 1);
    var n = 0;
    for (i = 0; i + 1 < cuts.length; i++) {
      var start = cuts[i], end = cuts[i + 1] - 1, term = tex.slice(start, end);
      if (/^\s*\\[lc]?dots\s*$/.test(term) || !term.trim()) continue;
      if (++n === k) return tex.slice(0, start) + "{\\color{#c00}\\underline{" + term + "}}" + tex.slice(end);
    }
    return null;
  }

  // Formulas as mathematics, when KaTeX is inlined; else their LaTeX stays in <code>.
  if (window.katex) {
    document.querySelectorAll(".formula .tex").forEach(function (el) {
      var tex = el.dataset.tex;
      if (!/[\\^_]/.test(tex)) return;
      // An aligned block as the checker keeps it: its \begin may be gone.
      if (/\\end\{aligned\}/.test(tex) && !/\\begin\{aligned\}/.test(tex)) tex = "\\begin{aligned}" + tex;
      else if (/&|\\\\/.test(tex) && !/\\begin\{/.test(tex)) tex = "\\begin{aligned}" + tex + "\\end{aligned}";
      if (el.parentNode.classList.contains("fail")) {
        el.parentNode.querySelectorAll(".finding[data-term]:not([data-term='0'])").forEach(function (wrong) {
          var marked = markTerm(tex, Number(wrong.dataset.term));
          if (marked) {
            tex = marked;
            el.dataset.marked = (el.dataset.marked ? el.dataset.marked + " " : "") + wrong.dataset.term;
          }
        });
      }
      try {
        window.katex.render(tex, el, { displayMode: true, throwOnError: false, strict: "ignore" });
      } catch (e) {
        el.title = String(e);
      }
    });
  }

  if (location.hash === "#selftest") {
    var first = Object.keys(data.weights).filter(function (id) { return data.weights[id].name === "w1"; })[0];
    var target = first && byId(first);
    if (target) target.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true }));
    var lit = document.querySelectorAll("#graph g.edge.hl").length;
    var out = document.getElementById("selfcheck");
    out.setAttribute("data-paths", String(pathList.children.length));
    out.setAttribute("data-lit-edges", String(lit));
    out.setAttribute("data-verdicts", String(document.querySelectorAll(".formula .verdict").length));
    out.setAttribute("data-katex", String(document.querySelectorAll(".formula .katex").length));
    out.setAttribute("data-marked", String(document.querySelectorAll(".formula [data-marked]").length));
    out.textContent = "selftest: w1 paths " + pathList.children.length + ", lit edges " + lit;
  }
})();
if (window.gpErrors && window.gpErrors.length) document.getElementById("errors").textContent = window.gpErrors.join("\n");
