"""Print this process's numerical environment and three numbers that depend on it.

``make chapters-alt`` runs it in both environments that CI checks, so the log shows that
the second one really computes differently: the numbers agree to float32's precision and
differ in their last bits. Not a test (pytest does not collect it); usage:
``python tests/fingerprint.py``.
"""
import os
import tempfile

import torch


def main() -> None:
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
    print(f"  float32 matmul sum      {float((a @ b).sum())!r}")
    print(f"  float32 softmax sum sq  {float(torch.softmax(a, -1).pow(2).sum())!r}")
    print(f"  numpy exp sum           {float(np.exp(np.linspace(-5, 5, 1001)).sum())!r}")
    print(f"  8-head fit of δ_5 (LM)  {kernels.l1_error(fit, kernels.Delta(5)).total!r} (relative l1)")
    print(f"  delay ci, 100 steps     {entry['result']['rows'][0]['mse']!r} (held-out MSE)")


if __name__ == "__main__":
    main()
