// The "Where the model is unsure" tint, drawn from the server's confidence map.

// The server's map is the model's confidence (grey levels 0..255). Its range differs from model to
// model, so the tint is relative to the image: none from the level that SURE_SHARE of the pixels
// exceed, full at the level that only UNSURE_SHARE fall below, linear between.
const SURE_SHARE = 0.1;
const UNSURE_SHARE = 0.1;
const UNSURE_TINT = [255, 48, 160]; // magenta, rare in photos, so that it reads as a mark
const UNSURE_ALPHA = 0.7;
// The tint is computed at most this many pixels on the longer side: it guides the eye, no more.
const UNSURE_MAX_SIDE = 1024;

// The grey levels below which the given shares of an RGBA image's pixels lie.
function levelsAt(values, shares) {
  const counts = new Array(256).fill(0);
  for (let i = 0; i < values.length; i += 4) counts[values[i]] += 1;
  const total = values.length / 4;
  return shares.map((share) => {
    let level = 0;
    for (let seen = counts[0]; seen < share * total && level < 255; seen += counts[++level]);
    return level;
  });
}

// Draws the tint for the confidence map `map` (an image) into `canvas`.
export function drawUnsure(canvas, map) {
  const scale = Math.min(1, UNSURE_MAX_SIDE / Math.max(map.naturalWidth, map.naturalHeight));
  canvas.width = Math.max(1, Math.round(map.naturalWidth * scale));
  canvas.height = Math.max(1, Math.round(map.naturalHeight * scale));
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(map, 0, 0, canvas.width, canvas.height);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
  const values = pixels.data;
  const [unsureLevel, sureLevel] = levelsAt(values, [UNSURE_SHARE, 1 - SURE_SHARE]);
  const span = Math.max(1, sureLevel - unsureLevel);
  for (let i = 0; i < values.length; i += 4) {
    const unsure = Math.min(1, Math.max(0, (sureLevel - values[i]) / span));
    values.set(UNSURE_TINT, i);
    values[i + 3] = Math.round(255 * UNSURE_ALPHA * unsure);
  }
  context.putImageData(pixels, 0, 0);
}
