/* signaltrace trace viewer: tree keyboard/mouse behaviour, waterfall geometry,
   list auto-refresh. Vanilla JS, no dependencies, no inline code (CSP-friendly). */
(function () {
  "use strict";

  document.documentElement.classList.add("st-js");

  /* ---- geometry from data attributes (no inline styles: strict CSP works) ---- */
  function layout(root) {
    root.querySelectorAll("[data-left]").forEach(function (el) {
      el.style.setProperty("--left", el.dataset.left + "%");
      if (el.dataset.width !== undefined) el.style.setProperty("--width", el.dataset.width + "%");
      if (el.dataset.zleft !== undefined) {
        el.style.setProperty("--zleft", el.dataset.zleft + "%");
        el.style.setProperty("--zwidth", el.dataset.zwidth + "%");
      }
    });
    root.querySelectorAll("[data-level]").forEach(function (el) {
      el.style.setProperty("--level", String(Number(el.dataset.level) - 1));
    });
  }

  /* ---- the tree (WAI-ARIA tree pattern, flat treeitems with aria-level) ---- */
  function Tree(tree) {
    this.tree = tree;
    this.items = Array.prototype.slice.call(tree.querySelectorAll('[role="treeitem"]'));
    this.details = document.querySelectorAll(".st-detail");
    var self = this;
    tree.addEventListener("click", function (event) { self.onClick(event); });
    tree.addEventListener("keydown", function (event) { self.onKey(event); });
    document.querySelectorAll("[data-tree-action]").forEach(function (button) {
      button.addEventListener("click", function () {
        self.setAll(button.dataset.treeAction === "expand");
      });
    });
    // A link to one row (a task's page links to the receiver that enqueued it: #n5).
    var linked = window.location.hash ? document.getElementById(window.location.hash.slice(1)) : null;
    if (linked && (!tree.contains(linked) || linked.hidden)) linked = null;
    var first = linked || tree.querySelector('.st-state-error:not([hidden])') || this.visible()[0];
    if (first) this.select(first, false);
  }

  Tree.prototype.level = function (item) { return Number(item.getAttribute("aria-level")); };
  Tree.prototype.expandable = function (item) { return item.hasAttribute("aria-expanded"); };
  Tree.prototype.expanded = function (item) { return item.getAttribute("aria-expanded") === "true"; };
  Tree.prototype.visible = function () { return this.items.filter(function (item) { return !item.hidden; }); };

  Tree.prototype.refresh = function () {
    // Hide every item below a collapsed ancestor, in one pass.
    var collapsedAt = null;
    for (var i = 0; i < this.items.length; i++) {
      var item = this.items[i];
      var level = this.level(item);
      if (collapsedAt !== null && level > collapsedAt) { item.hidden = true; continue; }
      collapsedAt = null;
      item.hidden = false;
      if (this.expandable(item) && !this.expanded(item)) collapsedAt = level;
    }
  };

  Tree.prototype.toggle = function (item, expand) {
    if (!this.expandable(item)) return;
    if (expand === undefined) expand = !this.expanded(item);
    item.setAttribute("aria-expanded", expand ? "true" : "false");
    this.refresh();
  };

  Tree.prototype.setAll = function (expand) {
    var self = this;
    this.items.forEach(function (item) {
      if (self.expandable(item)) item.setAttribute("aria-expanded", expand ? "true" : "false");
    });
    this.refresh();
    if (this.current && this.current.hidden) this.select(this.parentOf(this.current, true), false);
  };

  Tree.prototype.parentOf = function (item, visibleOnly) {
    var id = item.dataset.parent;
    var parent = id ? document.getElementById(id) : null;
    while (visibleOnly && parent && parent.hidden) parent = document.getElementById(parent.dataset.parent);
    return parent || item;
  };

  Tree.prototype.select = function (item, focus) {
    if (this.current) {
      this.current.setAttribute("aria-selected", "false");
      this.current.tabIndex = -1;
    }
    this.current = item;
    item.setAttribute("aria-selected", "true");
    item.tabIndex = 0;
    if (focus !== false) item.focus();
    this.details.forEach(function (section) {
      section.classList.toggle("st-current", section.dataset.for === item.id);
    });
  };

  Tree.prototype.onClick = function (event) {
    var item = event.target.closest('[role="treeitem"]');
    if (!item) return;
    if (event.target.closest(".st-twisty")) this.toggle(item);
    this.select(item);
  };

  Tree.prototype.onKey = function (event) {
    var item = this.current;
    if (!item || event.altKey || event.ctrlKey || event.metaKey) return;
    var visible = this.visible();
    var index = visible.indexOf(item);
    var target = null;
    switch (event.key) {
      case "ArrowDown": target = visible[index + 1]; break;
      case "ArrowUp": target = visible[index - 1]; break;
      case "Home": target = visible[0]; break;
      case "End": target = visible[visible.length - 1]; break;
      case "ArrowRight":
        if (this.expandable(item) && !this.expanded(item)) this.toggle(item, true);
        else if (this.expandable(item)) target = visible[index + 1];
        break;
      case "ArrowLeft":
        if (this.expandable(item) && this.expanded(item)) this.toggle(item, false);
        else if (item.dataset.parent) target = document.getElementById(item.dataset.parent);
        break;
      case "Enter":
      case " ":
        this.toggle(item);
        break;
      default:
        return;
    }
    event.preventDefault();
    if (target) this.select(target);
  };

  /* ---- waterfall time axis: whole request, or zoomed to the signals ---- */
  function zoomToggle(button) {
    var section = button.closest(".st-trace");
    button.hidden = false;
    button.addEventListener("click", function () {
      var zoomed = section.classList.toggle("st-zoomed");
      button.setAttribute("aria-pressed", zoomed ? "true" : "false");
    });
  }

  /* ---- list page: clickable rows and optional auto-refresh ---- */
  function clickableRows(body) {
    body.addEventListener("click", function (event) {
      var row = event.target.closest("tr[data-href]");
      if (!row || event.target.closest("a") || String(window.getSelection())) return;
      window.location.href = row.dataset.href;
    });
  }

  function autoRefresh(box) {
    var key = "signaltrace.refresh";
    var timer = null;
    var label = box.closest("label");
    function tick() {
      fetch(window.location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          ["st-rows", "st-count", "st-hidden"].forEach(function (id) {
            var fresh = doc.getElementById(id);
            var old = document.getElementById(id);
            if (fresh && old) old.replaceChildren.apply(old, Array.prototype.slice.call(fresh.childNodes));
          });
        })
        .catch(function () { /* server restarting: try again next tick */ });
    }
    function apply() {
      if (timer) { clearInterval(timer); timer = null; }
      if (box.checked) timer = setInterval(tick, Number(box.dataset.interval) || 2000);
      label.classList.toggle("st-live", box.checked);
      try { window.localStorage.setItem(key, box.checked ? "1" : ""); } catch (e) { /* private mode */ }
    }
    try { box.checked = window.localStorage.getItem(key) === "1"; } catch (e) { /* private mode */ }
    box.addEventListener("change", apply);
    apply();
  }

  function autoSubmit(form) {
    form.querySelectorAll('select, input[type="checkbox"][name]').forEach(function (input) {
      input.addEventListener("change", function () { form.submit(); });
    });
  }

  function init() {
    layout(document);
    var tree = document.querySelector('[role="tree"]');
    if (tree) window.signaltraceTree = new Tree(tree);
    var zoom = document.querySelector("[data-zoom]");
    if (zoom) zoomToggle(zoom);
    var rows = document.getElementById("st-rows");
    if (rows) clickableRows(rows);
    var box = document.getElementById("st-refresh");
    if (box) autoRefresh(box);
    var form = document.querySelector(".st-filters");
    if (form) autoSubmit(form);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
