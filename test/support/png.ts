// Decodes the PNGs Chromium's Page.captureScreenshot returns (8-bit RGB or
// RGBA, not interlaced) with node:zlib, so a test can look at the pixels
// rather than guess from the file's size.
import { inflateSync } from 'node:zlib';

export interface Pixels {
  width: number;
  height: number;
  /** Bytes per pixel (3 RGB, 4 RGBA). */
  channels: number;
  data: Buffer;
}

export function decodePng(png: Buffer): Pixels {
  if (!png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) throw new Error('not a PNG');
  let pos = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (pos < png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.toString('latin1', pos + 4, pos + 8);
    const body = png.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const depth = body[8];
      const color = body[9];
      const interlace = body[12];
      if (depth !== 8 || (color !== 2 && color !== 6) || interlace !== 0) throw new Error(`PNG of bit depth ${depth}, colour type ${color}, interlace ${interlace}: not what this decoder reads`);
      channels = color === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    pos += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const data = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = data.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? data.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[x - channels]! : 0;
      const b = up[x]!;
      const c = x >= channels ? up[x - channels]! : 0;
      let v = line[x]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`PNG filter ${filter} on row ${y}`);
      out[x] = v & 0xff;
    }
  }
  return { width, height, channels, data };
}

/** How many pixels differ from the top-left one (the page's background), and how many distinct colours there are. */
export function inkOf(p: Pixels): { ink: number; pixels: number; colours: number } {
  const bg = p.data.subarray(0, 3);
  let ink = 0;
  const colours = new Set<number>();
  for (let i = 0; i < p.data.length; i += p.channels) {
    const r = p.data[i]!;
    const g = p.data[i + 1]!;
    const b = p.data[i + 2]!;
    if (r !== bg[0] || g !== bg[1] || b !== bg[2]) ink++;
    if (colours.size < 4096) colours.add((r << 16) | (g << 8) | b);
  }
  return { ink, pixels: p.width * p.height, colours: colours.size };
}
