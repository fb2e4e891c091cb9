"""Run every bench/bench_*.py module's main(), or only those named on the command line."""
import importlib
import pkgutil
import sys

import bench


def main(argv=None) -> int:
    wanted = set(sys.argv[1:] if argv is None else argv)
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda i: i.name):
        if not info.name.startswith("bench_"):
            continue
        if wanted and info.name not in wanted and info.name[len("bench_"):] not in wanted:
            continue
        print(f"== {info.name}")
        importlib.import_module(f"bench.{info.name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
