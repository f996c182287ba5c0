"""Command line: `zsattr reproduce`, `zsattr evaluate`, `zsattr presets`, `zsattr train-extractor`,
`zsattr compare-runs`, `zsattr scan`.

The one module whose project imports are not all at its head: a command imports its stage when
it runs, so `zsattr --help`, `zsattr presets` and argument errors answer in a tenth of a second
instead of after loading torch, papermill and every stage (about 4 s, measured).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .core.config import PRESETS, flat_values, keys, resolve


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .report.chain import run_chain  # papermill and jupyter: only when the chain runs

    def show(result) -> None:
        print(f"{result.notebook:<28} {result.status:<7} {result.seconds:>9.1f} s", flush=True)
        if result.status != "ok":
            print(f"  {result.error.splitlines()[0] if result.error else ''}\n"
                  f"  partial executed notebook kept at {result.output}", file=sys.stderr)

    try:
        results = run_chain(args.preset, only=args.only, start=getattr(args, "from"), on_result=show)
    except (ValueError, FileNotFoundError) as exc:
        print(f"zsattr reproduce: {exc}", file=sys.stderr)
        return 2
    total = sum(r.seconds for r in results)
    print(f"{'total':<28} {'':<7} {total:>9.1f} s  (reports/{args.preset}/timings.json)")
    return 0 if all(r.status == "ok" for r in results) else 1


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Notebook 05's whole evaluation on a folder of generated images (one sub-folder per model),
    beside the zoo unless --without-zoo; outputs under reports/<preset>/folders/<name>/."""
    from .experiments.zero_shot import folder_reports
    from .images.folders import scan_image_folder
    from .report.chain import run_chain

    cfg = resolve(args.preset)
    try:  # check the folder before the chain spends minutes on it
        folder = scan_image_folder(args.folder, min_size=cfg.image_size)
    except (OSError, ValueError) as exc:
        print(f"zsattr evaluate: {exc}", file=sys.stderr)
        return 2
    needed = cfg.evaluation.k + 1
    short = {name: len(paths) for name, paths in folder.sources.items() if len(paths) < needed}
    if short:
        print(f"zsattr evaluate: the {args.preset} preset needs at least {needed} readable images per model "
              f"(a gallery of evaluation.k plus a query); too few in {short}", file=sys.stderr)
        return 2
    out_dir = folder_reports(args.preset, folder.root)
    print(f"{len(folder.sources)} models, {len(folder)} images, {sum(folder.skipped.values())} skipped "
          f"{dict(folder.skipped)}; results go to {out_dir}", flush=True)
    results = run_chain(args.preset, only=["05"], out_dir=out_dir,
                        parameters={"images": str(folder.root.resolve()), "with_zoo": not args.without_zoo})
    for r in results:
        print(f"{r.notebook:<28} {r.status:<7} {r.seconds:>9.1f} s  {r.output}")
        if r.status != "ok":
            print(f"  {r.error.splitlines()[0] if r.error else ''}", file=sys.stderr)
    return 0 if all(r.status == "ok" for r in results) else 1


def _cmd_presets(args: argparse.Namespace) -> int:
    values = {name: flat_values(resolve(name)) for name in PRESETS}
    if args.markdown:  # the README's preset table is this output (a test compares them)
        print("| key | " + " | ".join(values) + " |")
        print("|---|" + "---|" * len(values))
        for key in keys():
            print(f"| `{key}` | " + " | ".join(f"{v[key]}" for v in values.values()) + " |")
        return 0
    print(f"{'key':<34}" + "".join(f"{p:>14}" for p in values))
    for key in keys():
        print(f"{key:<34}" + "".join(f"{str(v[key]):>14}" for v in values.values()))
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from .images.folders import scan_image_folder

    try:
        folder = scan_image_folder(args.folder, min_size=args.min_size)
    except (OSError, ValueError) as exc:
        print(f"zsattr scan: {exc}", file=sys.stderr)
        return 2
    for source, paths in folder.sources.items():
        print(f"{source:<30} {len(paths):>7} images")
    print(f"skipped: {sum(folder.skipped.values())} {dict(folder.skipped)}")
    return 0


def _cmd_compare_runs(args: argparse.Namespace) -> int:
    """Exit 0 when every result with a stated spread lands inside it, 1 when one does not."""
    import pandas as pd

    from .report.rerun import compare, verdict_counts

    try:
        table = compare(args.reference, args.rerun)
    except (OSError, ValueError) as exc:
        print(f"zsattr compare-runs: {exc}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_rows", None, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    counts = verdict_counts(table)
    print(f"\n{counts}")
    return 1 if counts.get("outside") else 0


def _parse_overrides(pairs: list[str]) -> dict:
    """`key=value` strings -> config overrides (keys as in `zsattr presets`: `seed`,
    `bank.steps`, ...); values are JSON where they parse ("4", "true", "0.5", '["a","b"]'),
    plain strings otherwise; the config turns lists into tuples."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out[key] = parsed
    return out


def _cmd_train_extractor(args: argparse.Namespace) -> int:
    """Also the entry point under `torchrun --nproc_per_node N` (one process per GPU/CPU slot)."""
    from .core.device import resolve_device  # torch: only once the arguments are checked
    from .core.distributed import init_from_env, shutdown
    from .extractor.stage import train_extractor

    try:
        cfg = resolve(args.preset, **_parse_overrides(args.set))
        if args.training_seed < 0:
            raise ValueError(f"--training-seed must be >= 0, got {args.training_seed}")
    except (KeyError, TypeError, ValueError) as exc:
        print(f"zsattr train-extractor: {exc}", file=sys.stderr)
        return 2
    info = init_from_env(resolve_device(cfg.device))
    try:
        trained = train_extractor(cfg.replace(device=info.device), space=args.space, steps=args.steps,
                                  rank=info.rank, world_size=info.world_size, training_seed=args.training_seed)
    finally:
        shutdown(info)
    if info.rank == 0:
        print(json.dumps({**trained.summary, "artefact": str(trained.path)}, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zsattr", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("reproduce", help="run the numbered notebooks in order with papermill")
    rep.add_argument("--preset", default="cpu", choices=["smoke", "cpu", "paper"])
    rep.add_argument("--only", nargs="+", metavar="NN", help="run only these notebooks, e.g. --only 00 02")
    rep.add_argument("--from", metavar="NN", help="start at this notebook, e.g. --from 03")
    rep.set_defaults(func=_cmd_reproduce)

    ev = sub.add_parser("evaluate", help="run notebook 05's evaluation on a folder of generated images "
                        "(one sub-folder per model), beside the zoo")
    ev.add_argument("folder")
    ev.add_argument("--preset", default="cpu", choices=["smoke", "cpu", "paper"])
    ev.add_argument("--without-zoo", action="store_true", help="evaluate the folder's models alone")
    ev.set_defaults(func=_cmd_evaluate)

    pre = sub.add_parser("presets", help="print every preset's configuration")
    pre.add_argument("--markdown", action="store_true", help="as the Markdown table in the README")
    pre.set_defaults(func=_cmd_presets)

    tex = sub.add_parser("train-extractor", help="train (or reuse) the cached fingerprint extractor; "
                         "run it under `torchrun --nproc_per_node N` to train on N processes")
    tex.add_argument("--preset", default="cpu", choices=["smoke", "cpu", "paper"])
    tex.add_argument("--space", default="full", help="model space: full, 'w/o U', 'w/o seed', ...")
    tex.add_argument("--steps", type=int, default=None, help="override the preset's extractor.steps")
    tex.add_argument("--training-seed", type=int, default=0,
                     help="training seed 0..extractor.training_seeds-1 (initial weights and batches; notebooks "
                     "05-07 use every one)")
    tex.add_argument("--set", nargs="+", metavar="KEY=VALUE",
                     help="config overrides, keys as `zsattr presets` lists them, e.g. --set bank.steps=8 seed=1")
    tex.set_defaults(func=_cmd_train_extractor)

    cmp_ = sub.add_parser("compare-runs", help="does a rerun land inside a run's stated intervals? "
                          "(two folders of notebook reports, e.g. reports/cpu and another machine's)")
    cmp_.add_argument("reference")
    cmp_.add_argument("rerun")
    cmp_.set_defaults(func=_cmd_compare_runs)

    scan = sub.add_parser("scan", help="check an image folder (one sub-folder per source)")
    scan.add_argument("folder")
    scan.add_argument("--min-size", type=int, default=None, help="smallest acceptable side, pixels")
    scan.set_defaults(func=_cmd_scan)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
