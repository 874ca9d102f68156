// model-analyzer's HTML report: draws the plots (SVG) and the sortable table from the page's JSON data.
// No library and no network: everything it needs is in the page (core/html_report.py writes the data).
"use strict";
(function () {
  var started = performance.now(), errors = [];
  window.addEventListener("error", function (e) {
    errors.push(String(e.message));
    document.body.setAttribute("data-errors", errors.join(" | "));
  });

  var D = JSON.parse(document.getElementById("data").textContent);
  var SVG = "http://www.w3.org/2000/svg"; // the SVG namespace name, not a request
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22"];
  var INTS = {"Batch": 1, "Concurrency": 1, "Max Batch Size": 1, "Measurement Windows": 1, "Requests": 1};
  var text = {};
  D.text.forEach(function (i) { text[i] = true; });
  function col(name) { return D.columns.indexOf(name); }
  // The load axis: Concurrency (closed loop), or Request Rate in an open-loop analysis.
  var LOAD = col("Concurrency") >= 0 ? "Concurrency" : "Request Rate";
  var LOAD_AXIS = LOAD === "Concurrency" ? "concurrency" : "request rate (req/sec)";
  function val(row, i) { return text[i] ? D.strings[row[i]] : row[i]; }
  var C = {
    model: col("Model"), config: col("Model Config Path"), batch: col("Batch"), conc: col(LOAD), status: col("Status"),
    tp: col("Throughput (infer/sec)"), tpLo: col("Throughput 95% CI Low (infer/sec)"),
    tpHi: col("Throughput 95% CI High (infer/sec)"), p99: col("p99 Latency (ms)"),
    p99Lo: col("p99 Latency 95% CI Low (ms)"), p99Hi: col("p99 Latency 95% CI High (ms)"),
    cpu: col("Max CPU Utilization (%)"), cpuMem: col("Max CPU Memory (MB)"), version: col("Triton Version"),
    // streaming models' columns (absent, -1, in analyses where none streamed)
    ttft: col("p99 Time To First Token (ms)"), ttftLo: col("p99 Time To First Token 95% CI Low (ms)"),
    ttftHi: col("p99 Time To First Token 95% CI High (ms)"), itl: col("p99 Inter Token Latency (ms)"),
    itlLo: col("p99 Inter Token Latency 95% CI Low (ms)"), itlHi: col("p99 Inter Token Latency 95% CI High (ms)"),
    tok: col("Output Token Throughput (infer/sec)"), tokLo: col("Output Token Throughput 95% CI Low (tokens/sec)"),
    tokHi: col("Output Token Throughput 95% CI High (tokens/sec)")
  };
  var best = {};
  D.best.forEach(function (i) { best[i] = true; });
  // With several Triton versions compared, each version's points are drawn apart too (model @ version).
  var versions = {};
  D.rows.forEach(function (r) { if (C.version >= 0 && val(r, C.version)) versions[val(r, C.version)] = true; });
  var manyVersions = Object.keys(versions).length > 1;
  var points = D.rows.map(function (r, i) {
    // A config variant (add_sub_config_1) is drawn as its own model: its own plots.
    var config = C.config < 0 ? null : val(r, C.config);
    var variant = config && /_config_(default|\d+)$/.test(config) ? config : null;
    var name = (variant || val(r, C.model)) + (manyVersions ? " @ " + val(r, C.version) : "");
    return {i: i, r: r, model: name, batch: r[C.batch], conc: r[C.conc],
      measured: val(r, C.status) === "Measured" && r[C.tp] !== null, gpus: D.pointGpus[i]};
  });

  function el(tag, attrs, parent, ns) {
    var e = ns ? document.createElementNS(SVG, tag) : document.createElement(tag);
    for (var k in attrs) { if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]); }
    if (parent) parent.appendChild(e);
    return e;
  }
  var formats = {}; // one Intl formatter per precision: making one per call is slow (seconds at 1000 points)
  function fmt(v, digits) {
    if (v === null || v === undefined) return "";
    var a = Math.abs(v);
    if (digits === undefined) digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
    if (!formats[digits]) {
      formats[digits] = new Intl.NumberFormat("en-US", {minimumFractionDigits: digits, maximumFractionDigits: digits});
    }
    return formats[digits].format(v);
  }

  // -- scales -------------------------------------------------------------------------------------------
  function linear(lo, hi, zero, minStep) {
    if (zero && lo > 0) lo = 0;
    if (hi === lo) { hi = lo + (Math.abs(lo) || 1); if (!zero) lo -= (hi - lo) / 2; }
    var raw = (hi - lo) / 5, mag = Math.pow(10, Math.floor(Math.log10(raw))), n = raw / mag;
    var step = Math.max((n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag, minStep || 0);
    var a = Math.floor(lo / step) * step, b = Math.ceil(hi / step) * step, ticks = [];
    for (var t = a; t <= b + step / 2; t += step) ticks.push(+t.toPrecision(12));
    return {lo: a, hi: b, ticks: ticks, digits: Math.max(0, -Math.floor(Math.log10(step))),
      f: function (v) { return (v - a) / (b - a); }};
  }
  function log2(lo, hi) {
    var a = Math.floor(Math.log2(lo)), b = Math.ceil(Math.log2(hi)), ticks = [];
    if (b === a) b = a + 1;
    var every = Math.ceil((b - a + 1) / 9);
    for (var t = a; t <= b; t += every) ticks.push(Math.pow(2, t));
    return {lo: Math.pow(2, a), hi: Math.pow(2, b), ticks: ticks, digits: 0,
      f: function (v) { return (Math.log2(v) - a) / (b - a); }};
  }
  function axis(values, kind) {
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    if (kind === "conc") return lo > 0 && hi / lo >= 8 ? log2(lo, hi) : linear(lo, hi, false, 1);
    return linear(lo, hi, kind !== "free");
  }

  // -- one chart ----------------------------------------------------------------------------------------
  // spec: {title, x, y, xKind, series: [{name, pts: [{x, y, xLo, xHi, yLo, yHi, best, tip, i}]}], base: {y, label}}
  var W = 420, H = 280, L = 62, R = 22, T = 12, B = 40, drawn = 0, circles = 0;
  function chart(parent, spec) {
    var fig = el("figure", {}); // filled while detached, then added once
    el("figcaption", {text: spec.title}, fig);
    var all = [];
    spec.series.forEach(function (s) { s.pts.forEach(function (p) { all.push(p); }); });
    var xs = [], ys = [];
    all.forEach(function (p) {
      xs.push(p.x); ys.push(p.y);
      if (p.xLo !== null && p.xLo !== undefined) xs.push(p.xLo, p.xHi);
      if (p.yLo !== null && p.yLo !== undefined) ys.push(p.yLo, p.yHi);
    });
    if (spec.base && spec.base.y !== null) ys.push(spec.base.y);
    if (spec.budgetX !== null && spec.budgetX !== undefined) xs.push(spec.budgetX);
    if (spec.budgetY !== null && spec.budgetY !== undefined) ys.push(spec.budgetY);
    var sx = axis(xs, spec.xKind || "zero"), sy = axis(ys, "zero");
    var pw = W - L - R, ph = H - T - B;
    function X(v) { return +(L + sx.f(v) * pw).toFixed(1); }
    function Y(v) { return +(T + ph - sy.f(v) * ph).toFixed(1); }
    var svg = el("svg", {"class": "chart", width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": spec.title}, fig, true);
    sx.ticks.forEach(function (t) {
      el("line", {"class": "grid", x1: X(t), x2: X(t), y1: T, y2: T + ph}, svg, true);
      el("text", {x: X(t), y: T + ph + 14, "text-anchor": "middle", text: fmt(t, sx.digits)}, svg, true);
    });
    sy.ticks.forEach(function (t) {
      el("line", {"class": "grid", x1: L, x2: L + pw, y1: Y(t), y2: Y(t)}, svg, true);
      el("text", {x: L - 5, y: Y(t) + 4, "text-anchor": "end", text: fmt(t, sy.digits)}, svg, true);
    });
    el("path", {"class": "axis", d: "M" + L + " " + T + "V" + (T + ph) + "H" + (L + pw), fill: "none"}, svg, true);
    el("text", {x: L + pw / 2, y: H - 6, "text-anchor": "middle", text: spec.x}, svg, true);
    el("text", {x: 12, y: T + ph / 2, "text-anchor": "middle", transform: "rotate(-90 12 " + (T + ph / 2) + ")",
      text: spec.y}, svg, true);
    if (spec.base && spec.base.y !== null) {
      el("line", {"class": "base", x1: L, x2: L + pw, y1: Y(spec.base.y), y2: Y(spec.base.y)}, svg, true);
      el("text", {x: L + pw - 4, y: Y(spec.base.y) - 4, "text-anchor": "end", text: spec.base.label}, svg, true);
    }
    // A latency budget (spec.constraints), where the chart has that latency on an axis.
    var budgetLabel = spec.budgetLabel || "p99 budget";
    if (spec.budgetX !== null && spec.budgetX !== undefined) {
      el("line", {"class": "budget", x1: X(spec.budgetX), x2: X(spec.budgetX), y1: T, y2: T + ph}, svg, true);
      el("text", {"class": "budget", x: X(spec.budgetX) + 4, y: T + 12, text: budgetLabel}, svg, true);
    }
    if (spec.budgetY !== null && spec.budgetY !== undefined) {
      el("line", {"class": "budget", x1: L, x2: L + pw, y1: Y(spec.budgetY), y2: Y(spec.budgetY)}, svg, true);
      el("text", {"class": "budget", x: L + 4, y: Y(spec.budgetY) - 4, text: budgetLabel}, svg, true);
    }
    var legend = el("div", {"class": "legend"}, fig);
    spec.series.forEach(function (s, k) {
      var color = COLORS[k % COLORS.length], g = el("g", {"data-series": s.name}, svg, true);
      var sw = el("span", {}, legend);
      el("i", {style: "background:" + color}, sw);
      sw.appendChild(document.createTextNode(s.name));
      if (s.pts.length > 1) {
        el("polyline", {fill: "none", stroke: color, "stroke-width": 1.5, points: s.pts.map(function (p) {
          return X(p.x) + "," + Y(p.y); }).join(" ")}, g, true);
      }
      var bars = "";
      s.pts.forEach(function (p) {
        if (p.yLo !== null && p.yLo !== undefined) bars += "M" + X(p.x) + " " + Y(p.yLo) + "V" + Y(p.yHi);
        if (p.xLo !== null && p.xLo !== undefined) bars += "M" + X(p.xLo) + " " + Y(p.y) + "H" + X(p.xHi);
      });
      if (bars) el("path", {"class": "bars", stroke: color, d: bars}, g, true);
      s.pts.forEach(function (p) {
        var c = el("circle", {cx: X(p.x), cy: Y(p.y), r: p.best ? 6 : 3.5, fill: color, "data-point": p.i}, g, true);
        el("title", {text: p.tip}, c, true);
        circles++;
        if (p.best) {
          c.setAttribute("class", "best");
          el("text", {"class": "star", x: X(p.x) + 7, y: Y(p.y) - 6, text: "★"}, g, true);
        }
      });
    });
    svg.addEventListener("click", function (e) {
      var i = e.target.getAttribute && e.target.getAttribute("data-point");
      if (i !== null && i !== undefined) showRow(+i);
    });
    parent.appendChild(fig);
    drawn++;
    return fig;
  }
  function note(parent, reason) { if (reason) el("p", {"class": "empty", text: reason}, parent); }

  // -- the plots ----------------------------------------------------------------------------------------
  function tip(p) {
    if (p.tip) return p.tip;
    var r = p.r, s = p.model + " batch " + p.batch + " " + LOAD.toLowerCase() + " " + p.conc +
      "\nthroughput " + fmt(r[C.tp]) + " infer/sec";
    if (r[C.tpLo] !== null) s += " [" + fmt(r[C.tpLo]) + " – " + fmt(r[C.tpHi]) + "]";
    s += "\np99 " + fmt(r[C.p99], 3) + " ms";
    if (r[C.p99Lo] !== null) s += " [" + fmt(r[C.p99Lo], 3) + " – " + fmt(r[C.p99Hi], 3) + "]";
    p.tip = s + (best[p.i] ? "\n★ best for " + p.model : "");
    return p.tip;
  }
  function byBatch(pts, make) {
    var groups = {}, order = [];
    pts.forEach(function (p) {
      if (!(p.batch in groups)) { groups[p.batch] = []; order.push(p.batch); }
      var q = make(p);
      if (q && q.y !== null && q.y !== undefined && q.x !== null) groups[p.batch].push(q);
    });
    order.sort(function (a, b) { return a - b; });
    return order.map(function (b) {
      return {name: "batch " + b, pts: groups[b].sort(function (u, v) { return u.c - v.c; })};
    }).filter(function (s) { return s.pts.length; });
  }
  function pt(p, x, y, extra) {
    var q = {x: x, y: y, c: p.conc, i: p.i, best: !!best[p.i], tip: tip(p)};
    for (var k in extra) q[k] = extra[k];
    return q;
  }
  function gpuValue(p, g, k) {
    for (var j = 0; j < p.gpus.length; j++) if (p.gpus[j][0] === g) return p.gpus[j][k];
    return null;
  }
  function baseGpu(g, k) {
    if (!D.baseline) return null;
    for (var j = 0; j < D.baseline.gpus.length; j++) if (D.baseline.gpus[j][0] === g) return D.baseline.gpus[j][k];
    return null;
  }
  function resourceChart(box, pts, title, y, get, base) {
    var series = byBatch(pts, function (p) { return pt(p, p.conc, get(p)); });
    if (!series.length) return note(box, title + ": no values in this model's points.");
    chart(box, {title: title, x: LOAD_AXIS, y: y, xKind: "conc", series: series,
      base: base === null || base === undefined ? null : {y: base, label: "server alone " + fmt(base)}});
  }

  var root = document.getElementById("charts");
  note(root, D.empty.measured);
  note(root, D.empty.ci);
  var models = [];
  points.forEach(function (p) { if (p.measured && models.indexOf(p.model) < 0) models.push(p.model); });
  models.forEach(function (model) {
    var pts = points.filter(function (p) { return p.measured && p.model === model; });
    el("h3", {text: model}, root);
    var box = el("div", {"class": "charts"}, root);
    chart(box, {title: "Throughput vs p99 latency", x: "p99 latency (ms)", y: "throughput (infer/sec)", xKind: "free",
      budgetX: D.p99Budget, series: byBatch(pts, function (p) {
        var r = p.r;
        return pt(p, r[C.p99], r[C.tp], {xLo: r[C.p99Lo], xHi: r[C.p99Hi], yLo: r[C.tpLo], yHi: r[C.tpHi]});
      })});
    chart(box, {title: "Throughput vs " + LOAD.toLowerCase(), x: LOAD_AXIS, y: "throughput (infer/sec)", xKind: "conc",
      series: byBatch(pts, function (p) { return pt(p, p.conc, p.r[C.tp], {yLo: p.r[C.tpLo], yHi: p.r[C.tpHi]}); })});
    chart(box, {title: "p99 latency vs " + LOAD.toLowerCase(), x: LOAD_AXIS, y: "p99 latency (ms)", xKind: "conc",
      budgetY: D.p99Budget, series: byBatch(pts, function (p) { return pt(p, p.conc, p.r[C.p99], {yLo: p.r[C.p99Lo], yHi: p.r[C.p99Hi]}); })});
    if (C.ttft >= 0 && pts.some(function (p) { return p.r[C.ttft] !== null; })) {  // a streaming model
      var llm = el("div", {"class": "charts"}, root);
      chart(llm, {title: "p99 time to first token vs " + LOAD.toLowerCase(), x: LOAD_AXIS, y: "p99 TTFT (ms)",
        xKind: "conc", budgetY: D.ttftBudget, budgetLabel: "p99 TTFT budget", series: byBatch(pts, function (p) {
          return pt(p, p.conc, p.r[C.ttft], {yLo: p.r[C.ttftLo], yHi: p.r[C.ttftHi]}); })});
      chart(llm, {title: "p99 inter-token latency vs " + LOAD.toLowerCase(), x: LOAD_AXIS, y: "p99 ITL (ms)",
        xKind: "conc", budgetY: D.itlBudget, budgetLabel: "p99 ITL budget", series: byBatch(pts, function (p) {
          return pt(p, p.conc, p.r[C.itl], {yLo: p.r[C.itlLo], yHi: p.r[C.itlHi]}); })});
      chart(llm, {title: "Output tokens/sec vs p99 time to first token", x: "p99 TTFT (ms)", y: "output tokens/sec",
        xKind: "free", budgetX: D.ttftBudget, budgetLabel: "p99 TTFT budget", series: byBatch(pts, function (p) {
          var r = p.r;
          return pt(p, r[C.ttft], r[C.tok], {xLo: r[C.ttftLo], xHi: r[C.ttftHi], yLo: r[C.tokLo], yHi: r[C.tokHi]});
        })});
    }
    var res = el("div", {"class": "charts"}, root);
    if (D.empty.gpu) note(res, D.empty.gpu);
    else {
      D.gpus.forEach(function (uuid, g) {
        if (!pts.some(function (p) { return gpuValue(p, g, 1) !== null || gpuValue(p, g, 2) !== null; })) return;
        var name = D.gpus.length > 1 ? " (" + uuid + ")" : "";
        resourceChart(res, pts, "GPU utilization" + name, "GPU utilization (%)",
          function (p) { return gpuValue(p, g, 1); }, baseGpu(g, 1));
        resourceChart(res, pts, "GPU memory" + name, "GPU memory (MB)",
          function (p) { return gpuValue(p, g, 2); }, baseGpu(g, 2));
        resourceChart(res, pts, "GPU power" + name, "GPU power (W)",
          function (p) { return gpuValue(p, g, 3); }, baseGpu(g, 3));
        if (!D.empty.memutil) {
          resourceChart(res, pts, "Memory utilization" + name, "memory utilization (%)",
            function (p) { return gpuValue(p, g, 4); }, baseGpu(g, 4));
        }
      });
      note(res, D.empty.memutil);
    }
    if (D.empty.cpu) note(res, D.empty.cpu);
    else {
      resourceChart(res, pts, "CPU utilization (server)", "CPU utilization (%)",
        function (p) { return p.r[C.cpu]; }, D.baseline && D.baseline.cpuUtil);
      resourceChart(res, pts, "CPU memory (server)", "CPU memory (MB)",
        function (p) { return p.r[C.cpuMem]; }, D.baseline && D.baseline.cpuMem);
    }
  });

  // -- the table ----------------------------------------------------------------------------------------
  var table = document.getElementById("table"), thead = el("thead", {}, table), tbody = el("tbody", {});
  var head = el("tr", {}, thead), rows = [];
  el("th", {text: "★", title: "best point of its model"}, head);
  D.columns.forEach(function (name, i) {
    var th = el("th", {text: name, "data-col": i}, head);
    th.addEventListener("click", function () { sortBy(i, th); });
  });
  function cell(row, i) {
    var v = val(row, i);
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return INTS[D.columns[i]] ? String(v) : v.toFixed(3);
    return v;
  }
  points.forEach(function (p) {
    var tr = el("tr", {id: "p" + p.i, "data-point": p.i}, tbody);
    if (best[p.i]) tr.className = "best";
    el("td", {text: best[p.i] ? "★" : ""}, tr);
    D.columns.forEach(function (name, i) {
      var td = el("td", {text: cell(p.r, i)}, tr);
      if (text[i]) td.className = "t";
    });
    rows.push(tr);
  });
  table.appendChild(tbody);
  var sorted = {col: -1, dir: 1};
  function sortBy(i, th) {
    sorted.dir = sorted.col === i ? -sorted.dir : 1;
    sorted.col = i;
    Array.prototype.forEach.call(head.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", sorted.dir > 0 ? "ascending" : "descending");
    var order = points.slice().sort(function (a, b) {
      var u = val(a.r, i), v = val(b.r, i);
      if (u === v) return a.i - b.i;
      if (u === null || u === "") return 1; // empty cells last, either way
      if (v === null || v === "") return -1;
      return (u < v ? -1 : 1) * sorted.dir;
    });
    order.forEach(function (p) { tbody.appendChild(rows[p.i]); });
  }
  document.getElementById("filter").addEventListener("input", function (e) {
    var q = e.target.value.toLowerCase();
    rows.forEach(function (tr) { tr.hidden = q !== "" && tr.textContent.toLowerCase().indexOf(q) < 0; });
  });
  var lit = null;
  function showRow(i) {
    if (lit) lit.classList.remove("hl");
    lit = rows[i];
    lit.hidden = false;
    lit.classList.add("hl");
    lit.scrollIntoView({block: "center"});
  }

  document.body.setAttribute("data-charts", drawn);
  document.body.setAttribute("data-circles", circles);
  document.body.setAttribute("data-rows", rows.length);
  document.body.setAttribute("data-draw-ms", Math.round(performance.now() - started));
  document.body.setAttribute("data-rendered", "yes");
})();
