"""txtheory: reference implementation of Wang & E (NeurIPS 2024), "Understanding the
Expressive Power and Mechanisms of Transformer for Sequence Modeling".

The package is the code behind the executable book in ``book/``; each module's docstring
names the chapter that explains it:

- ``rpe``, ``attention``, ``model``: the paper's Transformer (``book/framework.md``);
- ``targets``: input samplers and the three target families;
- ``kernels``: sums of exponentials / power laws as memory kernels (``book/kernels.md``);
- ``rates``: the theorems' bounds in SymPy (``book/fixed-memory.md``);
- ``construct``: the proofs' weights as runnable models (``book/fixed-memory.md``);
- ``train``, ``experiments``, ``cli``, ``bench``: training, the registry of experiments
  with their results cache, the ``txtheory`` command and the attention benchmark.
"""
__version__ = "0.1.0"
