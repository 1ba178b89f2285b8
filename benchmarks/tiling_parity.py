"""How close tiled DPED enhancement is to whole-image enhancement on real full-size phone photos.

Blended tiles (`enhance_tiled`, any callable) give instance norm per-tile statistics, so they are close
but not exact; `enhance_tiled_exact` (Keras models) uses the whole image's statistics. This measures
PSNR(tiled, whole) on clipped [0,1] outputs with the authors' iphone generator for a few tile sizes.

    python benchmarks/tiling_parity.py --checkpoint ../shared/dped/pretrained/iphone_orig \
        --images ../shared/dped/full_size --configs 512:128,768:128

Measured (2026-11-26, 2 shared CPU cores, four 720x1280 photos): blended 512/128 px: 36.1, 32.3, 36.7,
33.1 dB; blended 768/128 px: 43.9, 39.2, 43.7, 36.0 dB; exact with 512 px tiles: 101.7, 102.4, 98.3,
98.9 dB (float32 rounding) at about 5x the whole-image compute.
"""
import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))



def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="authors' TF1 checkpoint prefix, or a .keras file")
    parser.add_argument("--images", required=True, help="folder of full-size phone photos")
    parser.add_argument("--configs", default="512:128,768:128,768:256",
                        help="comma-separated tile:overlap pairs for blended tiles")
    parser.add_argument("--exact-tile", type=int, default=512, help="tile side for the exact mode")
    args = parser.parse_args(argv)
    import numpy as np

    from common.images import list_images, read_image, to_float
    from common.tiling import enhance_tiled, enhance_tiled_exact, estimate_memory_bytes
    from dped.loading import load_checkpoint, load_weights, make_predictor

    source = pathlib.Path(args.checkpoint)
    model = load_weights(source) if source.name.endswith((".keras", ".weights.h5")) else load_checkpoint(source)
    fn = make_predictor(model)
    configs = [tuple(int(v) for v in c.split(":")) for c in args.configs.split(",")]
    rows = []
    for path in list_images(args.images):
        image = to_float(read_image(path))
        start = time.time()
        whole = np.clip(fn(image[None])[0], 0, 1)
        row = [path.name, f"{image.shape[0]}x{image.shape[1]}", f"{time.time() - start:.1f}"]
        for tile, overlap in configs:
            start = time.time()
            tiled = enhance_tiled(fn, image, tile=tile, overlap=overlap,
                                  memory_budget_bytes=estimate_memory_bytes(tile, tile))
            mse = float(np.mean((np.clip(tiled, 0, 1) - whole) ** 2))
            row.append(f"{10 * np.log10(1 / mse):.2f} dB ({time.time() - start:.1f} s)")
        start = time.time()
        exact = enhance_tiled_exact(model, image, tile=args.exact_tile,
                                    memory_budget_bytes=estimate_memory_bytes(args.exact_tile, args.exact_tile))
        mse = float(np.mean((np.clip(exact, 0, 1) - whole) ** 2))
        row.append(f"{10 * np.log10(1 / mse) if mse > 0 else float('inf'):.2f} dB ({time.time() - start:.1f} s)")
        rows.append(row)
        print(" | ".join(row), flush=True)
    header = (["image", "size", "whole (s)"] + [f"blended tile {t} / overlap {o}" for t, o in configs]
              + [f"exact tile {args.exact_tile}"])
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    main()
