// Writes a gzip copy beside each text asset in dist/, so the server sends compressed
// bytes without compressing on every request. zlib's output has no timestamp, so the same
// input always gives the same bytes and the staleness check in tests/run stays exact.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync, constants } from 'node:zlib';

// The folder to compress: dist/ by default, another build's folder when given.
const dist = process.argv[2] ?? new URL('../dist/', import.meta.url).pathname;
const TEXT = /\.(js|css|html|svg|json|txt|map)$/;
let raw = 0;
let gz = 0;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (TEXT.test(name)) {
      const data = readFileSync(p);
      const out = gzipSync(data, { level: constants.Z_BEST_COMPRESSION });
      raw += data.length;
      gz += out.length;
      writeFileSync(`${p}.gz`, out);
    }
  }
}

walk(dist);
console.log(`compressed: ${(raw / 1024).toFixed(1)} KiB → ${(gz / 1024).toFixed(1)} KiB gzipped`);
