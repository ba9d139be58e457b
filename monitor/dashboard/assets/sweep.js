/*
 * Browser side of the central view.
 *
 * startSweep: starts the loop that, every spec.period_ms while the central view is shown,
 * fetches each bed's samples since the browser's cursors and writes them into a fixed
 * 6 s sweep at position slot % n (slots are 125 Hz sample numbers on the epoch clock, so every
 * bed sweeps in step), blanks a short gap ahead of the newest sample like a bedside monitor's
 * erase bar, and repaints what changed on every visible tile's canvas (geometry from
 * figures.sweep_spec). The cursors stay in the browser, so the next request asks only for
 * samples it does not have.
 * window.ecgSweep.stats records frame times and display lag for benchmarks/dashboard_load.py.
 *
 * audio: plays the IEC 60601-1-8-like burst of the loudest unacknowledged alarm priority.
 */
(function () {
  "use strict";
  var STATS_KEEP = 600;
  var TILES_MS = 1000;  // tile values: once a second, like a monitor's numbers

  function state() {
    if (!window.ecgSweep) {
      window.ecgSweep = { beds: {}, stats: { frames: 0, times: [], lag: [] } };
    }
    return window.ecgSweep;
  }

  function gridLines(c, step, lo, hi, line) {
    for (var v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9; v += step) { line(v); }
  }

  function scales(spec, w, h) {
    var xr = spec.x_range;
    var yr = spec.y_range;
    return {
      x: function (t) { return (t - xr[0]) / (xr[1] - xr[0]) * w; },
      y: function (v) { return h - (v - yr[0]) / (yr[1] - yr[0]) * h; }
    };
  }

  // The static part of a strip (background, paper grid, calibration pulse), drawn once per
  // tile size into an offscreen canvas and copied in with one drawImage per frame.
  function paper(spec, w, h, dpr) {
    var S = state();
    var key = w + "x" + h + "x" + dpr;
    S.paper = S.paper || {};
    if (S.paper[key]) { return S.paper[key]; }
    var sheet = document.createElement("canvas");
    sheet.width = Math.round(w * dpr);
    sheet.height = Math.round(h * dpr);
    var c = sheet.getContext("2d");
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    var col = spec.colours;
    var at = scales(spec, w, h);
    c.fillStyle = col.background;
    c.fillRect(0, 0, w, h);
    [["minor", col.minor], ["major", col.major]].forEach(function (g) {
      var step = spec.grid[g[0]];
      c.strokeStyle = g[1];
      c.lineWidth = 1;
      c.beginPath();
      gridLines(c, step[0], 0, spec.x_range[1], function (t) {
        var x = Math.round(at.x(t)) + 0.5; c.moveTo(x, 0); c.lineTo(x, h);
      });
      gridLines(c, step[1], spec.y_range[0], spec.y_range[1], function (v) {
        var yy = Math.round(at.y(v)) + 0.5; c.moveTo(at.x(0), yy); c.lineTo(w, yy);
      });
      c.stroke();
    });
    c.strokeStyle = col.trace;
    c.lineWidth = 1.4;
    c.beginPath();
    spec.cal.x.forEach(function (t, i) {
      var yy = at.y(spec.cal.y[i]);
      if (i === 0) { c.moveTo(at.x(t), yy); } else { c.lineTo(at.x(t), yy); }
    });
    c.stroke();
    S.paper[key] = sheet;
    return sheet;
  }

  // A tile's canvas at its element's size; true when the size changed (the canvas is blank).
  function fit(canvas, w, h, dpr) {
    if (canvas.width === Math.round(w * dpr) && canvas.height === Math.round(h * dpr)) {
      return false;
    }
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    return true;
  }

  // Draw ring positions i0..i1 of a tile (0 <= i0 <= i1 < n): the paper under them, then the
  // trace (null = pen up), one sample further on each side so the line joins what is there.
  function drawRange(c, y, spec, at, sheet, dpr, i0, i1) {
    var whole = i0 === 0 && i1 === y.length - 1;  // the paper's margins too
    var x0 = whole ? 0 : Math.max(0, Math.floor(at.x(i0 / spec.fs)) - 1);
    var right = sheet.width / dpr;
    var x1 = whole ? right : Math.min(right, Math.ceil(at.x(i1 / spec.fs)) + 2);
    var sx = Math.round(x0 * dpr);
    var sw = Math.round(x1 * dpr) - sx;
    c.setTransform(1, 0, 0, 1, 0, 0);
    if (sw > 0) { c.drawImage(sheet, sx, 0, sw, sheet.height, sx, 0, sw, sheet.height); }
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.strokeStyle = spec.colours.trace;
    c.lineWidth = 1.4;
    c.beginPath();
    var pen = false;
    for (var i = Math.max(0, i0 - 1); i <= Math.min(y.length - 1, i1 + 1); i++) {
      var v = y[i];
      if (v === null) { pen = false; continue; }
      var X = at.x(i / spec.fs);
      var Y = at.y(v);
      if (pen) { c.lineTo(X, Y); } else { c.moveTo(X, Y); pen = true; }
    }
    c.stroke();
  }

  // One tile, as a bedside sweep draws it: only the ring positions from..to (absolute slots)
  // changed since the last frame, so only they are repainted; everything when the tile is
  // new, resized, or the change spans the whole sweep (from = null). Repainting 32 whole
  // strips five times a second was most of the browser's CPU.
  function drawStrip(canvas, st, spec, from, to) {
    var w = canvas.clientWidth;
    var h = canvas.clientHeight;
    if (!w || !h) { return; }
    var dpr = window.devicePixelRatio || 1;
    var n = st.n;
    if (fit(canvas, w, h, dpr) || from === null || to - from + 1 >= n) {
      from = 0;
      to = n - 1;
    }
    var c = canvas.getContext("2d");
    var sheet = paper(spec, w, h, dpr);
    var at = scales(spec, w, h);
    var a = ((from % n) + n) % n;
    var b = ((to % n) + n) % n;
    if (a <= b) {
      drawRange(c, st.y, spec, at, sheet, dpr, a, b);
    } else {
      drawRange(c, st.y, spec, at, sheet, dpr, a, n - 1);
      drawRange(c, st.y, spec, at, sheet, dpr, 0, b);
    }
  }

  // The tiles' canvases are found by their data-bed attribute rather than passed in as
  // pattern-matching State: resolving ALL ids over the whole layout at 5 Hz costs Dash more
  // than drawing.
  function applySweep(frame, spec) {
    var S = state();
    var n = spec.n;
    var cursors = {};
    var newest = null;
    document.querySelectorAll("canvas.strip[data-bed]").forEach(function (canvas) {
      var bed = canvas.getAttribute("data-bed");
      var upd = frame.beds[bed];
      var st = S.beds[bed];
      if (!st || st.n !== n || st.canvas !== canvas) {
        // A new tile (or a grid rebuilt around it): start from an empty sweep, drawn whole.
        st = S.beds[bed] = { n: n, y: new Array(n).fill(null), last: null, canvas: canvas,
                             dirtyFrom: null, dirtyTo: null, whole: true };
      }
      if (upd && upd.stale) {
        if (st.last !== null) {  // the bed went quiet: blank its sweep once
          st.y.fill(null);
          st.last = null;
          st.whole = true;
        }
      } else if (upd) {
        var len = upd.y.length;
        for (var i = 0; i < len; i++) { st.y[(upd.s + i) % n] = upd.y[i]; }
        if (len) {
          var start = st.last === null ? upd.s : Math.min(st.last, upd.s);
          st.last = upd.s + len - 1;
          for (var g = 1; g <= spec.gap; g++) { st.y[(st.last + g) % n] = null; }
          st.dirtyFrom = st.dirtyFrom === null ? start : Math.min(st.dirtyFrom, start);
          st.dirtyTo = Math.max(st.dirtyTo === null ? 0 : st.dirtyTo, st.last + spec.gap);
        }
        if (newest === null || upd.t > newest) { newest = upd.t; }
      }
      if (st.last !== null) { cursors[bed] = st.last; }
      // Tiles scrolled out of view keep their buffers and what changed, but are not drawn:
      // with 64 beds the browser draws the 18 on screen, not all 64.
      var box = canvas.getBoundingClientRect();
      if (box.bottom >= 0 && box.top <= window.innerHeight) {
        if (st.whole) {
          drawStrip(canvas, st, spec, null, null);
        } else if (st.dirtyFrom !== null) {
          drawStrip(canvas, st, spec, st.dirtyFrom, st.dirtyTo);
        }
        st.whole = false;
        st.dirtyFrom = st.dirtyTo = null;
      }
    });
    if (frame.tiles) { applyTiles(frame.tiles); }
    var stats = S.stats;
    stats.frames += 1;
    stats.times.push(performance.now());
    if (newest !== null) { stats.lag.push(Date.now() / 1000 - newest); }
    if (stats.times.length > STATS_KEEP) { stats.times.shift(); }
    if (stats.lag.length > STATS_KEEP) { stats.lag.shift(); }
    S.cursors = cursors;
  }

  // The tiles' numbers, class and alarm text, written straight into their elements and only
  // where they changed: each element with data-field="X" in a tile shows the value X of
  // central.tile_values, so a new tile value needs no change here. Through Dash, every value
  // would cost the page a pass over its layout each second.
  function applyTiles(tiles) {
    document.querySelectorAll("canvas.strip[data-bed]").forEach(function (canvas) {
      var v = tiles[canvas.getAttribute("data-bed")];
      var root = canvas.closest(".tile");
      if (!v || !root) { return; }
      if (root.className !== v["class"]) { root.className = v["class"]; }
      root.querySelectorAll("[data-field]").forEach(function (el) {
        var text = v[el.getAttribute("data-field")];
        if (text !== undefined && el.textContent !== text) { el.textContent = text; }
      });
      var beat = root.querySelector('[data-field="beat"]');
      // (style.color reads back as rgb(...): the colour last written is kept beside it)
      if (beat && beat.getAttribute("data-colour") !== v.beat_colour) {
        beat.style.color = v.beat_colour;
        beat.setAttribute("data-colour", v.beat_colour);
      }
    });
  }

  // One tick: ask the server for what is new since our cursors, draw it, and schedule the
  // next tick one period after this one started (at once if this one took longer). One
  // request at a time, so a slow network cannot pile requests up; the next one fetches
  // everything missed. The loop ends when the central view is left.
  function tick() {
    var S = state();
    if (!document.getElementById("ward-grid")) {
      S.running = false;
      return;
    }
    var started = performance.now();
    var tiles = !(started - (S.tilesAt || -Infinity) < TILES_MS);
    if (tiles) { S.tilesAt = started; }
    fetch(S.spec.url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ cursors: S.cursors || {}, tiles: tiles })
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (frame) {
      if (frame) { applySweep(frame, S.spec); }
    }).catch(function () {
      // Server away: the page's banner and NO SIGNAL say so.
    }).finally(function () {
      var wait = Math.max(0, S.spec.period_ms - (performance.now() - started));
      setTimeout(tick, wait);
    });
  }

  function startSweep(spec) {
    var S = state();
    S.spec = spec;
    if (spec && !S.running) {
      S.running = true;
      tick();
    }
    return window.dash_clientside.no_update;
  }

  // Audio: burst patterns per priority (pulses, pitch Hz, repeat s).
  var PATTERNS = {
    high: { pulses: [0, 0.2, 0.4, 0.8, 1.0], pitch: 880, every: 6 },
    medium: { pulses: [0, 0.25, 0.5], pitch: 660, every: 12 },
    technical: { pulses: [0], pitch: 520, every: 20 }
  };

  function beep(ctx, at, pitch) {
    var osc = ctx.createOscillator();
    var gain = ctx.createGain();
    osc.frequency.value = pitch;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.2, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.15);
    osc.connect(gain).connect(ctx.destination);
    osc.start(at);
    osc.stop(at + 0.16);
  }

  // Browsers allow sound only after a person has interacted with the page: the audio context
  // is created on the first click or key press, and until then alarms are visual only.
  function armAudio(A) {
    function arm() {
      try {
        A.ctx = A.ctx || new (window.AudioContext || window.webkitAudioContext)();
      } catch (e) {
        A.ctx = null;  // no audio device: the screen still shows every alarm
      }
    }
    document.addEventListener("pointerdown", arm, { once: true });
    document.addEventListener("keydown", arm, { once: true });
  }

  function audio(audioState) {
    var A = window.ecgAudio = window.ecgAudio || { tone: null, last: 0, timer: null, ctx: null };
    A.tone = audioState ? audioState.tone : null;
    if (!A.timer) {
      armAudio(A);
      A.timer = setInterval(function () {
        var p = PATTERNS[A.tone];
        var now = Date.now() / 1000;
        if (!p || !A.ctx || now - A.last < p.every) { return; }
        A.last = now;
        if (A.ctx.state === "suspended") { A.ctx.resume(); }
        var t0 = A.ctx.currentTime + 0.05;
        p.pulses.forEach(function (dt) { beep(A.ctx, t0 + dt, p.pitch); });
      }, 500);
    }
    return A.tone || "silent";
  }

  // Alarm ages ("0:42") count on in the browser between the server's rebuilds of the list,
  // from the age the server wrote (data-age) and the time since that value was first seen, so
  // a browser clock that differs from the server's does not matter. A rebuilt list may reuse
  // the element with a new data-age: the count restarts from it.
  var seen = new WeakMap();

  function duration(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
  }

  setInterval(function () {
    var now = performance.now();
    document.querySelectorAll(".alarm-dur[data-age]").forEach(function (el) {
      var written = el.getAttribute("data-age");
      var s = seen.get(el);
      if (!s || s.written !== written) { s = { written: written, at: now }; seen.set(el, s); }
      el.textContent = duration(parseFloat(written) + (now - s.at) / 1000);
    });
  }, 1000);

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    ecg: { startSweep: startSweep, audio: audio }
  });
})();
