// xferstats HTML report: inflates the embedded daily aggregates and draws
// every panel for the date range and field filter kept in the URL fragment
// (#from=YYYY-MM-DD&to=YYYY-MM-DD&user=NAME). Log-derived text is only ever
// written with textContent. What each filter combination can answer
// exactly is described in src/report/html.rs; the rest says so.
(function () {
  'use strict';
  const FIELDS = ['user', 'host', 'module', 'protocol', 'country'];
  const LABEL = { user: 'user', host: 'host', module: 'module', protocol: 'protocol', country: 'country' };
  const T = 0, C = 1, I = 2, F = 3, UP = 4, DOWN = 5, BUP = 6, BDOWN = 7, LOK = 9, LFAIL = 10;
  const SHOW = 20;
  const NS = 'http' + '://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function sel(tag, attrs) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function bytes(b) {
    const u = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
    let v = b, i = 0;
    while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
    return i === 0 ? b + ' B' : v.toFixed(1) + ' ' + u[i];
  }
  const num = (n) => n.toLocaleString('en-US');
  const zero = () => new Array(11).fill(0);
  function add(acc, row, off) {
    for (let i = off; i < row.length; i++) acc[i - off] += row[i];
    return acc;
  }
  const dayNo = (d) => Math.round(Date.parse(d + 'T00:00:00Z') / 86400000);

  let D, st;

  async function load() {
    const b64 = $('xs-data').textContent.trim();
    const bin = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const stream = new Blob([bin]).stream().pipeThrough(new DecompressionStream('gzip'));
    return JSON.parse(await new Response(stream).text());
  }

  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const n = D.days.length;
    const s = { lo: 0, hi: n - 1, field: null, value: -1, bad: null };
    const from = p.get('from'), to = p.get('to');
    if (from) { s.lo = D.days.findIndex((d) => d >= from); if (s.lo < 0) s.lo = n; }
    if (to) { let i = n - 1; while (i >= 0 && D.days[i] > to) i--; s.hi = i; }
    s.fromDay = from || D.days[0] || '';
    s.toDay = to || D.days[n - 1] || '';
    for (const f of FIELDS) {
      if (!p.has(f)) continue;
      const v = D.fields[f].values.indexOf(p.get(f));
      if (v < 0) s.bad = f + ' ' + p.get(f);
      else { s.field = f; s.value = v; }
      break;
    }
    s.full = s.lo <= 0 && s.hi >= n - 1;
    return s;
  }

  function setHash(change) {
    const p = new URLSearchParams();
    const from = 'from' in change ? change.from : (st.lo > 0 ? st.fromDay : null);
    const to = 'to' in change ? change.to : (st.hi < D.days.length - 1 ? st.toDay : null);
    if (from) p.set('from', from);
    if (to) p.set('to', to);
    const field = 'field' in change ? change.field : st.field;
    const value = 'field' in change ? change.value : (st.field ? D.fields[st.field].values[st.value] : null);
    if (field) p.set(field, value);
    location.hash = p.toString();
  }

  const inRange = (d) => d >= st.lo && d <= st.hi;

  // Per-day metrics of the current filter: Map(day index -> metrics).
  function perDay() {
    const m = new Map();
    const put = (d, row, off) => { if (inRange(d)) m.set(d, add(m.get(d) || zero(), row, off)); };
    if (!st.field) D.total.forEach((r) => put(r[0], r, 1));
    else D.fields[st.field].cube.forEach((r) => { if (r[1] === st.value) put(r[0], r, 2); });
    return m;
  }

  // Rows of field x under the current filter: {rows: Map(value -> metrics),
  // logins: bool} or {why: text} when the aggregates cannot answer exactly.
  function fieldRows(x) {
    const rows = new Map();
    const put = (k, row, off) => rows.set(k, add(rows.get(k) || zero(), row, off));
    const f = st.field;
    if (!f || f === x) {
      D.fields[x].cube.forEach((r) => { if (inRange(r[0]) && (!f || r[1] === st.value)) put(r[1], r, 2); });
      return { rows, logins: D.fields[x].logins };
    }
    const a = FIELDS.indexOf(f) < FIELDS.indexOf(x);
    const pair = D.pairs[a ? f + '|' + x : x + '|' + f];
    if (!pair.monthly && !st.full) return { why: 'Not available for a ' + f + ' filter with a date range narrower than the report: the page holds ' + f + ' × ' + x + ' for the whole period only (per month it would exceed the page\'s size budget).' };
    const months = monthSpan();
    if (!months) return { why: 'Not available for a ' + f + ' filter with this date range: the page holds ' + f + ' × ' + x + ' per month; choose whole months.' };
    // Monthly rows: [month, a, b, metrics…]; period rows: [a, b, metrics…].
    const k = pair.monthly ? 1 : 0;
    pair.rows.forEach((r) => {
      if (pair.monthly && (r[0] < months[0] || r[0] > months[1])) return;
      const [mine, other] = a ? [r[k], r[k + 1]] : [r[k + 1], r[k]];
      if (mine === st.value) put(other, r, k + 2);
    });
    return { rows, logins: D.fields[x].logins && D.fields[f].logins };
  }

  // The months (indices of D.months) the date range covers whole — from the
  // first day with events of a month to the last of one — or null.
  function monthSpan() {
    const n = D.days.length, m = (i) => D.days[i].slice(0, 7);
    if (st.lo > st.hi) return [0, -1];
    if (st.lo > 0 && m(st.lo - 1) === m(st.lo)) return null;
    if (st.hi < n - 1 && m(st.hi + 1) === m(st.hi)) return null;
    return [D.months.indexOf(m(st.lo)), D.months.indexOf(m(st.hi))];
  }

  function name(field, v) {
    const vals = D.fields[field].values;
    if (v >= vals.length) return null;
    const s = vals[v];
    return s === '' ? (field === 'country' ? '(unknown)' : '(none)') : s;
  }

  function table(head, rows) {
    const t = el('table');
    const tr = el('tr');
    head.forEach((h) => tr.appendChild(el('th', h)));
    t.appendChild(el('thead')).appendChild(tr);
    const tb = t.appendChild(el('tbody'));
    rows.forEach((r) => tb.appendChild(r));
    return t;
  }

  function cards() {
    const days = perDay();
    const t = zero();
    days.forEach((m) => add(t, m, 0));
    const noLogins = st.field && !D.fields[st.field].logins;
    const box = $('totals');
    box.textContent = '';
    const card = (id, label, value, shown, title) => {
      const c = box.appendChild(el('div', null, 'card'));
      c.appendChild(el('span', label));
      const b = c.appendChild(el('b', shown));
      b.id = 't-' + id;
      if (value !== null) b.dataset.value = String(value);
      if (title) c.title = title;
    };
    card('bytes_down', 'Bytes down', t[BDOWN], bytes(t[BDOWN]));
    card('bytes_up', 'Bytes up', t[BUP], bytes(t[BUP]));
    card('transfers', 'Transfers', t[T], num(t[T]));
    card('completed', 'Completed', t[C], num(t[C]));
    card('interrupted', 'Interrupted', t[I], num(t[I]));
    card('failed', 'Failed', t[F], num(t[F]));
    const nl = 'Logins have no module';
    card('logins_ok', 'Logins ok', noLogins ? null : t[LOK], noLogins ? 'n/a' : num(t[LOK]), noLogins ? nl : '');
    card('logins_failed', 'Logins failed', noLogins ? null : t[LFAIL], noLogins ? 'n/a' : num(t[LFAIL]), noLogins ? nl : '');
    const clients = !st.field && st.full;
    card('clients', 'Distinct clients', clients ? D.clients : null, clients ? num(D.clients) : '—',
      clients ? '' : 'Distinct clients are counted for the whole report period without a filter only');
    return days;
  }

  function chart(id, days, a, b, la, lb, fmt, bad) {
    const box = $(id);
    box.textContent = '';
    const n0 = st.lo < D.days.length ? dayNo(D.days[Math.max(st.lo, 0)]) : 0;
    const n1 = st.hi >= 0 ? dayNo(D.days[st.hi]) : n0;
    const span = Math.max(n1 - n0 + 1, 1);
    const W = 720, H = 150, top = 2, left = 0, bottom = 0;
    let max = 0;
    days.forEach((m) => { max = Math.max(max, m[a] + m[b]); });
    const svg = sel('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img', 'aria-label': la + ' and ' + lb + ' per day' });
    const bw = (W - left) / span, ph = H - top - bottom;
    days.forEach((m, d) => {
      const x = left + (dayNo(D.days[d]) - n0) * bw;
      const ha = max ? (m[a] / max) * ph : 0, hb = max ? (m[b] / max) * ph : 0;
      const g = svg.appendChild(sel('g', {}));
      g.appendChild(sel('title', {})).textContent = D.days[d] + ': ' + la + ' ' + fmt(m[a]) + ', ' + lb + ' ' + fmt(m[b]);
      g.appendChild(sel('rect', { x: x, y: H - bottom - ha, width: Math.max(bw * 0.85, 1.5), height: ha, class: 'sa' }));
      g.appendChild(sel('rect', { x: x, y: H - bottom - ha - hb, width: Math.max(bw * 0.85, 1.5), height: hb, class: bad ? 'sbad' : 'sb' }));
    });
    box.appendChild(el('div', 'max ' + fmt(max) + ' per day', 'axis'));
    box.appendChild(svg);
    const axis = box.appendChild(el('div', null, 'axis'));
    if (D.days.length && st.lo <= st.hi) {
      axis.appendChild(el('span', D.days[st.lo]));
      axis.appendChild(el('span', D.days[st.hi]));
    }
    const lg = box.appendChild(el('div', null, 'legend'));
    const key = (cls, text) => {
      const i = lg.appendChild(el('i'));
      i.style.background = 'var(' + cls + ')';
      lg.appendChild(document.createTextNode(text));
    };
    key('--a', la);
    key(bad ? '--bad' : '--b', lb);
  }

  function fieldPanel(x) {
    const box = $('panel-' + x).querySelector('div');
    box.textContent = '';
    const r = fieldRows(x);
    if (r.why) { box.appendChild(el('p', r.why, 'note')); return r; }
    const list = [...r.rows.entries()].filter(([, m]) => m.some((v) => v)).sort((p, q) =>
      (q[1][T] + q[1][LOK] + q[1][LFAIL]) - (p[1][T] + p[1][LOK] + p[1][LFAIL]) || p[0] - q[0]);
    const kept = list.filter(([v]) => v < D.fields[x].values.length);
    const other = list.find(([v]) => v >= D.fields[x].values.length);
    const head = [LABEL[x], 'transfers', 'bytes down', 'bytes up', 'not completed'];
    if (r.logins) head.push('logins ok', 'logins failed');
    const rows = kept.slice(0, SHOW).concat(other ? [other] : []).map(([v, m]) => {
      const tr = el('tr');
      const label = name(x, v);
      const td = tr.appendChild(el('td', label === null ? '(other)' : label));
      if (label !== null) {
        td.className = 'pick';
        td.tabIndex = 0;
        td.title = 'Filter every panel by this ' + x;
        const pick = () => setHash({ field: x, value: D.fields[x].values[v] });
        td.addEventListener('click', pick);
        td.addEventListener('keydown', (e) => { if (e.key === 'Enter') pick(); });
        if (st.field === x && st.value === v) tr.className = 'sel';
      }
      [num(m[T]), bytes(m[BDOWN]), bytes(m[BUP]), num(m[I] + m[F])].forEach((c) => tr.appendChild(el('td', c)));
      if (r.logins) [m[LOK], m[LFAIL]].forEach((c) => tr.appendChild(el('td', num(c))));
      return tr;
    });
    box.appendChild(table(head, rows));
    let note = kept.length + ' ' + (kept.length === 1 ? x : x === 'country' ? 'countries' : x + 's');
    if (kept.length > SHOW) note += ', the ' + SHOW + ' busiest shown';
    if (D.fields[x].other) note += '. The page holds the ' + D.top + ' busiest of the whole period; the others are summed as (other)';
    box.appendChild(el('p', note + '.', 'note'));
    return r;
  }

  function mapPanel(r) {
    const paths = document.querySelectorAll('#map path');
    const byCc = new Map();
    if (r && r.rows) r.rows.forEach((m, v) => { const c = D.fields.country.values[v]; if (c) byCc.set(c, m); });
    let max = 0;
    byCc.forEach((m) => { max = Math.max(max, m[T] + m[LOK] + m[LFAIL]); });
    paths.forEach((p) => {
      const cc = p.dataset.cc;
      const m = byCc.get(cc);
      const title = p.querySelector('title');
      if (!p.dataset.name) p.dataset.name = title.textContent;
      const w = m ? m[T] + m[LOK] + m[LFAIL] : 0;
      if (w > 0) {
        p.style.fill = 'var(--a)';
        p.style.fillOpacity = String(0.2 + 0.8 * Math.log(1 + w) / Math.log(1 + max));
        title.textContent = p.dataset.name + ' (' + cc + '): ' + num(m[T]) + ' transfers, ' + num(m[LOK] + m[LFAIL]) + ' logins';
      } else {
        p.style.fill = '';
        p.style.fillOpacity = '';
        title.textContent = p.dataset.name;
      }
      p.classList.toggle('sel', st.field === 'country' && D.fields.country.values[st.value] === cc);
    });
    const dots = dotsLayer();
    let note = 'Shade: transfers and logins of clients located by GeoIP; click a country to filter.';
    const months = monthSpan();
    if (st.field) note += ' Region dots are drawn without a field filter only.';
    else if (!months) note += ' Region dots are held per month: choose whole months to see them.';
    else if (D.cells.at.length) note += ' Dots: the ' + D.cells.at.length + ' busiest regions (geohash cells of ' + D.cells.chars + ' characters, about 156 km) of the period' + (D.cells.at.length >= D.cells.limit ? ' (the page holds ' + D.cells.limit + ')' : '') + '.';
    $('map-note').textContent = r && r.why ? r.why + ' ' + note : note;
    if (st.field || !months) return;
    const sums = new Map();
    // Rows: [month, cell, transfers, logins].
    D.cells.cube.forEach((c) => { if (c[0] >= months[0] && c[0] <= months[1]) sums.set(c[1], add(sums.get(c[1]) || [0, 0], c, 2)); });
    let top = 0;
    sums.forEach((m) => { top = Math.max(top, m[0] + m[1]); });
    sums.forEach((m, i) => {
      const w = m[0] + m[1];
      if (!w) return;
      const [cell, x, y] = D.cells.at[i];
      const c = dots.appendChild(sel('circle', { cx: x, cy: y, r: (1 + 5 * Math.sqrt(w / top)).toFixed(2), class: 'dot' }));
      c.dataset.cell = cell;
      c.appendChild(sel('title', {})).textContent = 'Region ' + cell + ': ' + num(m[0]) + ' transfers, ' + num(m[1]) + ' logins';
    });
  }

  // The group of region dots over the map, emptied.
  function dotsLayer() {
    let g = document.getElementById('dots');
    if (!g) {
      g = sel('g', { id: 'dots' });
      $('map').appendChild(g);
    }
    g.textContent = '';
    return g;
  }

  function rankedPanel(id, data, allowed, head, cells, what) {
    const box = $(id).querySelector('div');
    box.textContent = '';
    if (st.field && !allowed) {
      box.appendChild(el('p', 'Not available with a ' + st.field + ' filter: the page holds the ' + what + ' per ' + (data.monthly ? 'month' : 'day') + ', not per ' + st.field + '.', 'note'));
      return;
    }
    // Files per month: a range of whole months only.
    const months = data.monthly ? monthSpan() : null;
    if (data.monthly && !months) {
      box.appendChild(el('p', 'Not available for this date range: the page holds the ' + what + ' per month; choose whole months.', 'note'));
      return;
    }
    const within = data.monthly ? (m) => m >= months[0] && m <= months[1] : inRange;
    const sums = new Map();
    const country = st.field === 'country' ? D.fields.country.values[st.value] : null;
    data.rows.forEach((r) => {
      // Files: [month, file, transfers, bytes]; clients: [day, client, failed logins, country].
      const files = typeof r[3] === 'number';
      if (!within(r[0]) || (country !== null && (files || r[3] !== country))) return;
      const s = sums.get(r[1]) || { count: 0, bytes: 0, country: files ? '' : r[3] };
      s.count += r[2];
      if (files) s.bytes += r[3];
      sums.set(r[1], s);
    });
    const list = [...sums.entries()].sort((a, b) => b[1].count - a[1].count || a[0] - b[0]);
    box.appendChild(table(head, list.slice(0, SHOW).map(([k, s]) => {
      const tr = el('tr');
      tr.appendChild(el('td', data.names[k]));
      cells(s).forEach((c) => tr.appendChild(el('td', c)));
      return tr;
    })));
    box.appendChild(el('p', 'Among the ' + data.limit + ' ' + what + ' of the whole period, counted for the selected ' + (data.monthly ? 'months' : 'days') +
      (list.length > SHOW ? '; ' + SHOW + ' shown' : '') + '.', 'note'));
  }

  function failedPanel() {
    const box = $('panel-failed').querySelector('div');
    box.textContent = '';
    const col = { user: 1, host: 2, module: 3, protocol: 4, country: 9 };
    const want = st.field ? D.fields[st.field].values[st.value] : null;
    const rows = D.failed.rows.filter((r) => {
      const d = r[0].slice(0, 10);
      return d >= (D.days[st.lo] || '') && d <= (D.days[st.hi] || '') && (want === null || r[col[st.field]] === want);
    });
    box.appendChild(table(['file', 'time (UTC)', 'user', 'host', 'module', 'protocol', 'direction', 'status', 'client', 'country'],
      rows.slice(0, 25).map((r) => {
        const tr = el('tr');
        [r[7] || '(unknown)', r[0].replace('T', ' ').slice(0, 19), r[1], r[2], r[3], r[4], r[5], r[6], r[8], r[9]]
          .forEach((c) => tr.appendChild(el('td', c)));
        return tr;
      })));
    box.appendChild(el('p', rows.length + ' of the ' + D.failed.limit + ' latest interrupted or failed transfers of the period match' +
      (rows.length > 25 ? '; 25 shown' : '') + '.', 'note'));
  }

  function render() {
    st = readHash();
    $('from').value = st.fromDay;
    $('to').value = st.toDay;
    const f = $('filter');
    f.hidden = !st.field;
    if (st.field) $('filter-name').textContent = st.field + ' = ' + name(st.field, st.value);
    const days = cards();
    chart('chart-bytes', days, BDOWN, BUP, 'down', 'up', bytes, false);
    chart('chart-transfers', days, DOWN, UP, 'downloads', 'uploads', num, false);
    chart('chart-logins', days, LOK, LFAIL, 'ok', 'failed', num, true);
    let country = null;
    FIELDS.forEach((x) => { const r = fieldPanel(x); if (x === 'country') country = r; });
    mapPanel(country);
    rankedPanel('panel-files', D.files, false, ['file', 'transfers', 'bytes'], (s) => [num(s.count), bytes(s.bytes)], 'most transferred files');
    rankedPanel('panel-failing', D.failing, st.field === 'country', ['client', 'country', 'failed logins'],
      (s) => [s.country, num(s.count)], 'clients with the most failed logins');
    failedPanel();
    const n = Math.max(st.hi - st.lo + 1, 0);
    let scope = n + ' day' + (n === 1 ? '' : 's') + ' with events shown';
    if (st.bad) scope += '; unknown filter ' + st.bad + ' ignored';
    $('scope').textContent = scope + '.';
  }

  function start() {
    $('app').hidden = false;
    if (D.days.length) {
      $('from').min = $('to').min = D.days[0];
      $('from').max = $('to').max = D.days[D.days.length - 1];
    }
    $('from').addEventListener('change', (e) => setHash({ from: e.target.value || null }));
    $('to').addEventListener('change', (e) => setHash({ to: e.target.value || null }));
    $('all').addEventListener('click', () => setHash({ from: null, to: null }));
    $('clear').addEventListener('click', () => setHash({ field: null }));
    document.querySelectorAll('#map path').forEach((p) => p.addEventListener('click', () => {
      const v = D.fields.country.values.indexOf(p.dataset.cc);
      if (v >= 0) setHash({ field: 'country', value: p.dataset.cc });
    }));
    window.addEventListener('hashchange', render);
    render();
    document.body.dataset.ready = '1';
  }

  // Embedded rows hold `off` keys then uploads, downloads, bytes up, bytes
  // down, interrupted, failed, deletes, logins ok, logins failed (trailing
  // zeros left out); the page works on the eleven metrics of the JSON report.
  function expand(rows, off) {
    return rows.map((r) => {
      const m = (i) => r[off + i] || 0;
      const t = m(0) + m(1);
      return r.slice(0, off).concat([t, t - m(4) - m(5), m(4), m(5), m(0), m(1), m(2), m(3), m(6), m(7), m(8)]);
    });
  }

  function prepare(d) {
    d.total = expand(d.total, 1);
    for (const f of FIELDS) d.fields[f].cube = expand(d.fields[f].cube, 2);
    for (const k in d.pairs) d.pairs[k].rows = expand(d.pairs[k].rows, d.pairs[k].monthly ? 3 : 2);
    return d;
  }

  load().then((d) => { D = prepare(d); start(); }, (e) => {
    const p = el('p', 'This report could not be read by this browser (' + e + '); it needs DecompressionStream (2023 or later browsers).');
    document.body.appendChild(p);
  });
})();
