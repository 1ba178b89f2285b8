"""Export a DPED generator as a SavedModel: uint8 `serving_default` and a [0,1] `float32` signature.

    python -m dped.export --weights iphone.keras --out exported/iphone
    python -m dped.export --original-checkpoint models_orig/iphone_orig --out exported/iphone
"""
import argparse

from common.cli import quiet_tensorflow, run_cli


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dped.export", description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help="generator file (.keras or .weights.h5)")
    source.add_argument("--original-checkpoint", help="the authors' TF1 checkpoint prefix, e.g. iphone_orig")
    parser.add_argument("--out", required=True, help="new (or empty) folder for the SavedModel")
    args = parser.parse_args(argv)
    quiet_tensorflow()
    from common.export import export_saved_model
    from dped.enhance import load_model

    model = load_model(weights=args.weights, original_checkpoint=args.original_checkpoint)
    out = export_saved_model(model, args.out, input_range="unit", output_range="unit")
    print(f"wrote SavedModel to {out} (signatures: serving_default uint8, float32 in [0,1])")
    return 0


if __name__ == "__main__":
    run_cli(main)
