import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import autodiscover_modules

from journeyhub.bench import BENCHMARKS, bench_options


class Command(BaseCommand):
    help = "Run one benchmark on the configured database; the last line printed is JSON."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="Benchmark name; omit to list them.")
        parser.add_argument("--size", type=int, default=None)
        autodiscover_modules("benchmarks")
        for flag, spec in bench_options().items():
            parser.add_argument(f"--{flag}", choices=spec["choices"] or None, default=None,
                                metavar=None if spec["choices"] else _metavar(flag, spec),
                                help=spec.get("help", ""))

    def handle(self, *args, name=None, size=None, **options):
        autodiscover_modules("benchmarks")
        if not name:
            for bench in sorted(BENCHMARKS.values(), key=lambda b: b.name):
                flags = "".join(
                    f" [--{flag} {'|'.join(spec.get('choices', [])) or _metavar(flag, spec)}]"
                    for flag, spec in bench.options.items())
                self.stdout.write(f"{bench.name:16} (default --size {bench.default_size}{flags}) "
                                  f"{bench.help.strip().splitlines()[0] if bench.help else ''}")
            return
        if name not in BENCHMARKS:
            known = ", ".join(sorted(BENCHMARKS))
            raise CommandError(f"Unknown benchmark {name!r}; known: {known}")
        bench = BENCHMARKS[name]
        size = size or bench.default_size
        if size <= 0:
            raise CommandError("--size must be positive.")
        foreign = [flag for flag in bench_options()
                   if options.get(flag) is not None and flag not in bench.options]
        if foreign:
            raise CommandError(f"{name} takes no --{foreign[0]}.")
        chosen = {flag: spec["default"] if options.get(flag) is None else options[flag]
                  for flag, spec in bench.options.items()}
        result = bench.func(size=size, log=lambda message: self.stderr.write(message), **chosen)
        self.stdout.write(json.dumps(result.as_line(name, size)))


def _metavar(flag: str, spec: dict) -> str:
    return spec.get("metavar") or flag.upper()
