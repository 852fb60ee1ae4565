// A ZIP archive of files stored as they are, for "Download all": the results are JPEG, PNG, WebP or
// TIFF, compressed already, so storing them costs nothing and needs no compression library. Names
// are UTF-8 (flag bit 11); sizes are bounded by the classic format's 4 GB.

const STORED = 0;
const UTF8_NAMES = 0x0800;
const VERSION = 20; // 2.0: what stored entries and folders need
const MAX_BYTES = 0xffffffff;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i += 1) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// MS-DOS time and date, as ZIP stores them (two-second steps, years from 1980).
function dosTimeAndDate(when) {
  const time = (when.getHours() << 11) | (when.getMinutes() << 5) | (when.getSeconds() >> 1);
  const date = ((when.getFullYear() - 1980) << 9) | ((when.getMonth() + 1) << 5) | when.getDate();
  return [time, date];
}

function header(size, fields) {
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let offset = 0;
  for (const [width, value] of fields) {
    if (width === 4) view.setUint32(offset, value, true);
    else view.setUint16(offset, value, true);
    offset += width;
  }
  return bytes;
}

// entries: [{name, blob}] -> a Blob of the archive (application/zip).
export async function zipBlob(entries, when = new Date()) {
  const encoder = new TextEncoder();
  const [time, date] = dosTimeAndDate(when);
  const parts = [];
  const directory = [];
  let offset = 0;
  for (const { name, blob } of entries) {
    const data = new Uint8Array(await blob.arrayBuffer());
    const encodedName = encoder.encode(name);
    if (data.length > MAX_BYTES || offset > MAX_BYTES) throw new Error("the results are too large for one zip file");
    const crc = crc32(data);
    // version needed, flags, method, time, date, CRC-32, compressed and full size, name and extra length
    const common = [
      [2, VERSION], [2, UTF8_NAMES], [2, STORED], [2, time], [2, date],
      [4, crc], [4, data.length], [4, data.length], [2, encodedName.length], [2, 0],
    ];
    const local = header(30, [[4, 0x04034b50], ...common]);
    parts.push(local, encodedName, data);
    // version made by, the common fields, comment length, disk, internal and external attributes, offset
    const central = header(46, [[4, 0x02014b50], [2, VERSION], ...common, [2, 0], [2, 0], [2, 0], [4, 0], [4, offset]]);
    directory.push(central, encodedName);
    offset += local.length + encodedName.length + data.length;
  }
  const directorySize = directory.reduce((total, part) => total + part.length, 0);
  // disk, directory's disk, entries on this disk and in all, directory size and offset, comment length
  const end = header(22, [
    [4, 0x06054b50], [2, 0], [2, 0], [2, entries.length], [2, entries.length],
    [4, directorySize], [4, offset], [2, 0],
  ]);
  return new Blob([...parts, ...directory, end], { type: "application/zip" });
}

// Names made unique the way a file manager does: "photo.jpg", "photo (2).jpg", ...
export function uniqueNames(names) {
  const taken = new Set();
  return names.map((name) => {
    const dot = name.lastIndexOf(".");
    const [stem, extension] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
    let candidate = name;
    for (let n = 2; taken.has(candidate); n += 1) candidate = `${stem} (${n})${extension}`;
    taken.add(candidate);
    return candidate;
  });
}
