"""Print this process's numerical environment and three numbers that depend on it.

``make test-alt`` runs ``python tests/fingerprint.py --compare``: it prints the numbers
here and in the second environment CI checks (``tests/alt_env.py``, in a subprocess), and
exits 1 unless at least one differs, so that environment is known to compute differently.
The numbers agree to their precision and differ in their last bits. Not a test (pytest
does not collect it).
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def numbers() -> list[str]:
    """Print this environment and its numbers; return the numbers as text."""
    os.environ["TXTHEORY_RESULTS"] = tempfile.mkdtemp()  # never touch the real cache
    import numpy as np

    from txtheory import experiments, kernels

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 300, generator=g), torch.randn(300, 50, generator=g)
    fit = kernels.fit_free(kernels.Delta(5), 8, "lin")
    entry = experiments.run("delay", "ci", use_cache=False, rpes=["lin"], delays=[4], steps=100)
    print(f"environment: torch {torch.__version__}, kernels {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} thread(s), MKL_ENABLE_INSTRUCTIONS="
          f"{os.environ.get('MKL_ENABLE_INSTRUCTIONS', '(unset)')}, numpy dispatch "
          f"{'off' if os.environ.get('NPY_DISABLE_CPU_FEATURES') else 'on'}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    values = [
        ("float32 matmul sum     ", repr(float((a @ b).sum()))),
        ("float32 softmax sum sq ", repr(float(torch.softmax(a, -1).pow(2).sum()))),
        ("numpy exp sum          ", repr(float(np.exp(np.linspace(-5, 5, 1001)).sum()))),
        ("8-head fit of δ_5 (LM) ", repr(kernels.l1_error(fit, kernels.Delta(5)).total)),
        ("delay ci, 100 steps    ", repr(entry["result"]["rows"][0]["mse"])),
    ]
    for name, value in values:
        print(f"  {name} {value}")
    return [value for _, value in values]


def main() -> int:
    here = numbers()
    if "--compare" not in sys.argv:
        return 0
    sys.path.insert(0, str(Path(__file__).parent))
    from alt_env import alt_environment

    alt = subprocess.run([sys.executable, __file__], env={**os.environ, **alt_environment()},
                         capture_output=True, text=True, check=True).stdout
    print(alt, end="")
    there = [line.split()[-1] for line in alt.splitlines()[1:]]
    if len(there) != len(here) or there == here:
        print("the second environment computed the same numbers: it tests nothing new")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
