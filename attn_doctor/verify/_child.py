"""Child-process entry point: ``python -m attn_doctor.verify._child kernels|model ...``.

Prints one JSON document on its last stdout line. Run only by ``attn_doctor.verify.subproc``;
it imports torch and the backends, so a broken extension takes down only this process.
"""

from __future__ import annotations

import argparse
import sys

from attn_doctor.backends import parse_backend


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attn_doctor.verify._child")
    sub = parser.add_subparsers(dest="what", required=True)
    kernels = sub.add_parser("kernels")
    kernels.add_argument("--backend", required=True)
    kernels.add_argument("--device", default="cpu")
    kernels.add_argument("--quick", action="store_true")
    kernels.add_argument("--adapter", default=None)
    model = sub.add_parser("model")
    model.add_argument("--device", default="cpu")
    model.add_argument("--family", action="append", default=None)
    model.add_argument("--impl", action="append", default=None)
    model.add_argument("--model", default=None)
    model.add_argument("--trust-remote-code", action="store_true")
    unsloth = sub.add_parser("unsloth")
    unsloth.add_argument("--device", default="cuda")
    sub.add_parser("device")
    args = parser.parse_args(argv)

    if args.what == "kernels":
        from attn_doctor.verify.kernels import report_json, run_kernel_cases

        report = run_kernel_cases(
            parse_backend(args.backend), args.device, quick=args.quick, adapter=args.adapter
        )
        line = report_json(report)
    elif args.what == "model":
        from attn_doctor.verify.model_check import model_report_json, run_model_checks

        line = model_report_json(
            run_model_checks(
                device=args.device,
                families=tuple(args.family) if args.family else None,
                implementations=tuple(args.impl) if args.impl else None,
                model=args.model,
                trust_remote_code=args.trust_remote_code,
            )
        )
    elif args.what == "device":
        import json

        import torch

        cuda = bool(torch.cuda.is_available())
        line = json.dumps(
            {
                "cuda": cuda,
                "count": torch.cuda.device_count() if cuda else 0,
                "torch_version": str(torch.__version__),
                "torch_cuda": torch.version.cuda,
            }
        )
    else:
        from attn_doctor.verify.unsloth_check import run_unsloth_check, unsloth_report_json

        line = unsloth_report_json(run_unsloth_check(device=args.device))
    sys.stdout.write("\n" + line + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
