// Line charts as SVG for the results pages. Hand-written because the charts are two panels of a few
// lines each; a charting library (vega, or a canvas-based one needing native builds) would be the
// largest dependency of the repository for ~100 lines of arithmetic.

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dashed?: boolean;
}

export interface Panel {
  readonly title: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  /** Vertical marker (e.g. the end of warm-up) at this x, with a label. */
  readonly marker?: { readonly x: number; readonly label: string };
  /** More vertical markers (phases of a run); labels are staggered so that close ones stay legible. */
  readonly markers?: readonly { readonly x: number; readonly label: string }[];
}

const W = 900;
const PANEL_H = 260;
const M = { left: 70, right: 170, top: 36, bottom: 40 };

function niceStep(range: number, ticks: number): number {
  const raw = range / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}

function esc(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 1 ? 2 : 1);
}

function panel(p: Panel, top: number, xMax: number, xLabel: string): string {
  const all = p.series.flatMap((s) => s.points.map(([, y]) => y));
  const yMax = Math.max(1e-9, ...all) * 1.1;
  const yStep = niceStep(yMax, 5);
  const top2 = Math.ceil(yMax / yStep) * yStep;
  const xStep = niceStep(Math.max(1, xMax), 8);
  const pw = W - M.left - M.right;
  const ph = PANEL_H - M.top - M.bottom;
  const x = (v: number) => M.left + (v / Math.max(1, xMax)) * pw;
  const y = (v: number) => top + M.top + ph - (v / top2) * ph;
  const out: string[] = [];
  out.push(
    `<text x="${String(M.left)}" y="${String(top + 22)}" font-size="15" font-weight="bold">${esc(p.title)}</text>`,
  );
  for (let v = 0; v <= top2 + 1e-9; v += yStep) {
    out.push(
      `<line x1="${String(M.left)}" x2="${String(M.left + pw)}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e4e4e4"/>`,
      `<text x="${String(M.left - 6)}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  for (let v = 0; v <= xMax + 1e-9; v += xStep) {
    out.push(
      `<text x="${x(v).toFixed(1)}" y="${String(top + M.top + ph + 16)}" font-size="11" text-anchor="middle">${fmt(v)}</text>`,
    );
  }
  out.push(
    `<rect x="${String(M.left)}" y="${String(top + M.top)}" width="${String(pw)}" height="${String(ph)}" fill="none" stroke="#888"/>`,
    `<text x="${String(M.left + pw / 2)}" y="${String(top + PANEL_H - 6)}" font-size="12" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${String(top + M.top + ph / 2)}) rotate(-90)" font-size="12" text-anchor="middle">${esc(p.yLabel)}</text>`,
  );
  [...(p.marker !== undefined ? [p.marker] : []), ...(p.markers ?? [])].forEach((mk, i) => {
    out.push(
      `<line x1="${x(mk.x).toFixed(1)}" x2="${x(mk.x).toFixed(1)}" y1="${String(top + M.top)}" y2="${String(top + M.top + ph)}" stroke="#999" stroke-dasharray="4 3"/>`,
      `<text x="${(x(mk.x) + 4).toFixed(1)}" y="${String(top + M.top + 12 + (i % 3) * 13)}" font-size="11" fill="#666">${esc(mk.label)}</text>`,
    );
  });
  p.series.forEach((s, i) => {
    const d = s.points
      .map(([px, py], j) => `${j === 0 ? 'M' : 'L'}${x(px).toFixed(1)},${y(py).toFixed(1)}`)
      .join(' ');
    out.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    const ly = top + M.top + 10 + i * 18;
    out.push(
      `<line x1="${String(W - M.right + 12)}" x2="${String(W - M.right + 36)}" y1="${String(ly)}" y2="${String(ly)}" stroke="${s.color}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${String(W - M.right + 42)}" y="${String(ly + 4)}" font-size="12">${esc(s.name)}</text>`,
    );
  });
  return out.join('\n');
}

/** Panels stacked vertically, sharing the x axis range [0, xMax]. */
export function svgChart(panels: readonly Panel[], xMax: number, xLabel: string): string {
  const h = PANEL_H * panels.length;
  const body = panels.map((p, i) => panel(p, i * PANEL_H, xMax, xLabel)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${String(W)}" height="${String(h)}" viewBox="0 0 ${String(W)} ${String(h)}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${body}
</svg>
`;
}
