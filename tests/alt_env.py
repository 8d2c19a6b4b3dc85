"""Print the second numerical environment that CI runs the tests and chapters in, as
``NAME=value`` words for ``env``: ``env $(python tests/alt_env.py) pytest ...``.

Each variable moves a library off the code path it would take on this CPU, so a float
that one path rounds one way is rounded another way there:

* torch: ``ATEN_CPU_CAPABILITY`` one level below the CPU's (avx2 on AVX512, else default);
* MKL (torch's BLAS): ``MKL_ENABLE_INSTRUCTIONS=AVX2``, which on an AVX2 CPU changes
  nothing, so there the thread count does the work;
* numpy: ``NPY_DISABLE_CPU_FEATURES`` switches off its AVX2 and AVX512 dispatch, leaving
  its x86-64-v2 baseline (its exp, log and power are then other code);
* OpenBLAS (numpy's and scipy's BLAS): ``OPENBLAS_CORETYPE`` one generation below
  (Haswell kernels on AVX512, Sandybridge on AVX2, Nehalem without AVX2, which every
  x86-64 CPU of the last 15 years runs), unless the machine already sets it: some
  machines set it because their own core's kernels are wrong, and that stays;
* one thread everywhere (OMP, MKL, OpenBLAS), where the default is the core count.
"""
import os

import torch


def alt_environment() -> dict[str, str]:
    capability = torch.backends.cpu.get_cpu_capability()  # "AVX512", "AVX2" or "DEFAULT"
    avx512 = capability == "AVX512"
    env = {
        "ATEN_CPU_CAPABILITY": "avx2" if avx512 else "default",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "NPY_DISABLE_CPU_FEATURES": "X86_V3,X86_V4,AVX512_ICL,AVX512_SPR",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    if "OPENBLAS_CORETYPE" not in os.environ:
        env["OPENBLAS_CORETYPE"] = {"AVX512": "Haswell", "AVX2": "Sandybridge"}.get(capability, "Nehalem")
    return env


if __name__ == "__main__":
    print(" ".join(f"{k}={v}" for k, v in alt_environment().items()))
