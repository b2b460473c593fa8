// Test files: a real JPEG (drawn by the browser's canvas) with an EXIF block whose GPS IFD
// says 30°N 120°E, inserted right after the SOI marker.

/** A little-endian TIFF block with IFD0 → GPS IFD (lat/long refs and values). */
function gpsTiff() {
  const b = Buffer.alloc(128);
  b.write('II', 0, 'latin1');
  b.writeUInt16LE(42, 2);
  b.writeUInt32LE(8, 4);
  // IFD0 at 8: one entry, the GPS IFD pointer (0x8825, LONG) → 26.
  b.writeUInt16LE(1, 8);
  b.writeUInt16LE(0x8825, 10);
  b.writeUInt16LE(4, 12);
  b.writeUInt32LE(1, 14);
  b.writeUInt32LE(26, 18);
  b.writeUInt32LE(0, 22);
  // GPS IFD at 26: 4 entries, data from 80.
  const entries = [
    [1, 2, 2, Buffer.from('N\0\0\0', 'latin1').readUInt32LE(0) >>> 0],
    [2, 5, 3, 80],
    [3, 2, 2, Buffer.from('E\0\0\0', 'latin1').readUInt32LE(0) >>> 0],
    [4, 5, 3, 104],
  ];
  b.writeUInt16LE(entries.length, 26);
  entries.forEach(([tag, type, count, value], i) => {
    const o = 28 + i * 12;
    b.writeUInt16LE(tag, o);
    b.writeUInt16LE(type, o + 2);
    b.writeUInt32LE(count, o + 4);
    b.writeUInt32LE(value, o + 8);
  });
  b.writeUInt32LE(0, 28 + 4 * 12);
  const rationals = [30, 0, 0, 120, 0, 0];
  rationals.forEach((v, i) => {
    b.writeUInt32LE(v, 80 + i * 8);
    b.writeUInt32LE(1, 84 + i * 8);
  });
  return b;
}

/** `jpeg` with an APP1 EXIF segment (GPS) inserted after SOI. */
export function withGps(jpeg) {
  const tiff = gpsTiff();
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const seg = Buffer.alloc(4);
  seg.writeUInt16BE(0xffe1, 0);
  seg.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), seg, payload, jpeg.subarray(2)]);
}

/** A 32x32 JPEG drawn by the page's canvas, with GPS added. */
export async function jpegWithGps(page) {
  const bytes = await page.evaluate(async () => {
    const c = document.createElement('canvas');
    c.width = 32;
    c.height = 32;
    const g = c.getContext('2d');
    if (g) {
      g.fillStyle = '#2a7';
      g.fillRect(0, 0, 32, 32);
    }
    const blob = await new Promise((r) => c.toBlob(r, 'image/jpeg', 0.9));
    return Array.from(new Uint8Array(await /** @type {Blob} */ (blob).arrayBuffer()));
  });
  return withGps(Buffer.from(bytes));
}
