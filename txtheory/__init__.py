"""txtheory: reference implementation of Wang & E (NeurIPS 2024), "Understanding the
Expressive Power and Mechanisms of Transformer for Sequence Modeling".

The package is the code behind the executable book in ``book/``; each module's docstring
names the chapter that explains it:

- ``kinds``, ``rpe``, ``attention``, ``model``: the lin/log vocabulary and the paper's
  Transformer (``book/framework.md``);
- ``targets`` (a package: samplers, readouts, the three target families, the paper's
  experiments): the tasks (``book/framework.md``, ``book/fixed-memory.md``);
- ``kernels`` (a package): sums of exponentials / power laws as memory kernels
  (``book/kernels.md``);
- ``rates``: the theorems' bounds in SymPy (``book/fixed-memory.md``);
- ``construct`` (a package, one module per theorem): the proofs' weights as runnable
  models (``book/fixed-memory.md``, ``book/kernels.md``);
- ``train``, ``experiments``, ``cli``, ``bench``: training, the registry of experiments
  with their results cache, the ``txtheory`` command and the attention benchmark
  (``book/framework.md``).
"""
__version__ = "0.1.0"
