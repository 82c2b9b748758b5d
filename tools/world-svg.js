#!/usr/bin/env node
// Generates src/report/world.txt, the world outline of the HTML report, from
// Natural Earth 1:110m country shapes as packaged by the world-atlas npm
// package (shapes: public domain, Natural Earth; packaging: ISC, Mike
// Bostock). Run once, commit the output (no network at run time):
//
//   npm install world-atlas@2
//   node tools/world-svg.js node_modules/world-atlas/countries-110m.json \
//        /usr/share/iso-codes/json/iso_3166-1.json > src/report/world.txt
//
// The second file (Debian's iso-codes) maps the ISO 3166-1 numeric ids of
// world-atlas to the alpha-2 codes GeoIP stores. Output: one line per
// country, `CC<TAB>Name<TAB>SVG path`, in an equirectangular projection of
// 720 x 300 units (longitude -180..180, latitude 84..-66), coordinates
// rounded to 0.5 unit and written relative (l) to keep the file small.
'use strict';
const fs = require('fs');
const [topoFile, isoFile] = process.argv.slice(2);
if (!topoFile || !isoFile) {
  console.error('usage: world-svg.js countries-110m.json iso_3166-1.json');
  process.exit(2);
}
const topo = JSON.parse(fs.readFileSync(topoFile, 'utf8'));
const iso = JSON.parse(fs.readFileSync(isoFile, 'utf8'))['3166-1'];
const byNumeric = new Map(iso.map((c) => [c.numeric, c.alpha_2]));
const byName = new Map(iso.map((c) => [c.name, c.alpha_2]));
// Shapes without a numeric id in Natural Earth.
const extra = { Kosovo: 'XK', 'N. Cyprus': 'CY', Somaliland: 'SO' };

const [sx, sy] = topo.transform.scale;
const [tx, ty] = topo.transform.translate;
const arcs = topo.arcs.map((arc) => {
  let x = 0, y = 0;
  return arc.map(([dx, dy]) => {
    x += dx; y += dy;
    return [x * sx + tx, y * sy + ty];
  });
});
const W = 720, N = 84, S = -66, H = ((N - S) * W) / 360;
const px = ([lon, lat]) => [
  Math.round(((lon + 180) * W) / 360 * 2) / 2,
  Math.round(((N - Math.max(S, Math.min(N, lat))) * W) / 360 * 2) / 2,
];
const ring = (idx) => {
  const pts = [];
  for (const i of idx) {
    const a = i < 0 ? arcs[~i].slice().reverse() : arcs[i];
    pts.push(...(pts.length ? a.slice(1) : a));
  }
  return pts.map(px);
};
const fmt = (v) => String(v).replace(/^(-?)0\./, '$1.');
const pathOf = (rings) => rings.map((r) => {
  let out = '', lx = 0, ly = 0;
  r.forEach(([x, y], k) => {
    if (k === 0) out += `M${fmt(x)} ${fmt(y)}`;
    else if (Math.abs(x - lx) > W / 2) out += `M${fmt(x)} ${fmt(y)}`;
    else if (x !== lx || y !== ly) out += `l${fmt(x - lx)} ${fmt(y - ly)}`;
    [lx, ly] = [x, y];
  });
  return out + 'z';
}).join('');
const lines = [];
for (const g of topo.objects.countries.geometries) {
  const name = g.properties.name;
  if (name === 'Antarctica') continue;
  const code = byNumeric.get(g.id) || extra[name] || byName.get(name) || '';
  const polys = g.type === 'Polygon' ? [g.arcs] : g.type === 'MultiPolygon' ? g.arcs : [];
  const d = polys.map((p) => pathOf(p.map(ring))).join('');
  if (d) lines.push(`${code}\t${name}\t${d}`);
}
process.stdout.write(`# ${W} ${H} Natural Earth 1:110m (public domain) via world-atlas 2 (ISC)\n` + lines.join('\n') + '\n');
