// Pure helpers of the form pages: how the dashboard's figures read, and the geometry of its
// inline SVG bar charts. No DOM, no dependency: Node runs them in the unit tests.
//
//   import { barLayout, funnelRows, dropOffRows, formatDuration } from "/static/forms_live/charts.js";
//   funnelRows({ views: 40, starts: 12, completions: 9 })
//     -> [{ key: "views", label: "Views", value: 40, share: "", note: "" },
//         { key: "starts", label: "Starts", value: 12, share: "30%", note: "30% of views" }, ...]
//   barLayout(rows, { width: 600 })   // {width, height, bars: [{label, value, y, x, length, ...}]}
//
// Bars are scaled to the largest value (0 when every value is 0: no NaN, no division by zero).

export const NO_FIELD = ""; // drop-off of respondents who left before touching any field

/** "95 s", "3 min 5 s", "2 h 5 min"; "—" when there is no figure yet (null). */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const whole = Math.max(0, Math.floor(seconds));
  if (whole < 60) return `${whole} s`;
  if (whole < 3600) {
    const rest = whole % 60;
    return rest ? `${Math.floor(whole / 60)} min ${rest} s` : `${whole / 60} min`;
  }
  const minutes = Math.floor((whole % 3600) / 60);
  return minutes ? `${Math.floor(whole / 3600)} h ${minutes} min` : `${whole / 3600} h`;
}

/** A share (0..1) as a percentage with at most one decimal: 0.755 -> "75.5%". */
export function formatRate(rate) {
  if (!Number.isFinite(rate)) return "0%";
  return `${Math.round(rate * 1000) / 10}%`;
}

/** The funnel: views, then starts, then completions, each with its share of the step before
 * (`share`, "" when that step is 0) and the same said in full (`note`). */
export function funnelRows(analytics) {
  const views = analytics?.views ?? 0;
  const starts = analytics?.starts ?? 0;
  const completions = analytics?.completions ?? 0;
  const step = (key, label, value, before, noun) => {
    const share = before > 0 ? formatRate(value / before) : "";
    return { key, label, value, share, note: share && `${share} of ${noun}` };
  };
  return [
    { key: "views", label: "Views", value: views, share: "", note: "" },
    step("starts", "Starts", starts, views, "views"),
    step("completions", "Completions", completions, starts, "starts"),
  ];
}

/** Per-field drop-off in the form's field order (every field, 0 included, so the chart shows
 * where people stop), then fields removed since (by key), then those who left before any. */
export function dropOffRows(dropOff, fields) {
  // A Map, not an object: a field may be called "constructor".
  const counts = new Map(Object.entries(dropOff ?? {}));
  const rows = (fields ?? []).map((field) => {
    const value = counts.get(field.key) ?? 0;
    counts.delete(field.key);
    return { key: field.key, label: field.label || field.key, value };
  });
  const none = counts.get(NO_FIELD);
  counts.delete(NO_FIELD);
  for (const key of [...counts.keys()].sort()) {
    rows.push({ key, label: `${key} (removed)`, value: counts.get(key) });
  }
  if (none) rows.push({ key: NO_FIELD, label: "Before any field", value: none });
  return rows;
}

/** `text` cut to `most` characters with an ellipsis (chart labels have a fixed width). */
export function truncate(text, most) {
  const chars = Array.from(String(text));
  return chars.length <= most ? chars.join("") : `${chars.slice(0, Math.max(0, most - 1)).join("")}…`;
}

/** Where each horizontal bar goes in an SVG `width` wide: the label column on the left, the
 * bar scaled to the largest value, room for the value after it. */
export function barLayout(rows, { width = 600, labelWidth = 170, valueWidth = 70, barHeight = 22, gap = 10 } = {}) {
  const most = Math.max(0, ...rows.map((row) => row.value));
  const room = Math.max(0, width - labelWidth - valueWidth);
  const bars = rows.map((row, index) => {
    const y = gap + index * (barHeight + gap);
    const length = most > 0 ? (Math.max(0, row.value) / most) * room : 0;
    return {
      ...row,
      y,
      x: labelWidth,
      length,
      height: barHeight,
      labelY: y + barHeight / 2,
      valueX: labelWidth + length + 6,
    };
  });
  return { width, height: gap + rows.length * (barHeight + gap), bars };
}

/** One sentence a screen reader says for a chart: "Views 40, Starts 12, Completions 9". */
export function describeRows(rows) {
  return rows.length ? rows.map((row) => `${row.label} ${row.value}`).join(", ") : "No data yet";
}
