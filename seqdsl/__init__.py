"""seqdsl: a compiler for sequence models written as `.seq` files.

The pipeline, one module per stage (docs/layout.md):

    parse (text → AST) → lower (AST → IR) → check → passes → backends (numpy, torch) / render

A six-line spec::

    cell RNN(I = 3, H = 2) {
        in x: [I]
        state h: [H] = zeros
        param W: [H, I]; param U: [H, H]; param b: [H] = 0
        h = tanh(W @ x + U @ h[t-1] + b)
        out y = h
    }

its IR (`seqdsl ir rnn.seq`)::

    cell RNN(I=3, H=2)
      x: [3] = input()  # line 2
      W: shared[2, 3] = param(init=uniform(1/sqrt(3)))  # line 4
      U: shared[2, 2] = param(init=uniform(1/sqrt(2)))  # line 4
      b: shared[2] = param(init=const(0))  # line 4
      _h1: [2] = matmul(W, x)  # line 5
      _h2: [2] = matmul(U, h[t-1])  # line 5
      _h3: [2] = add(_h1, _h2)  # line 5
      _h4: [2] = add(_h3, b)  # line 5
      h: [2] state(init=0.0) = tanh(_h4)  # line 5
      out_y: [2] = output(h, output=y)  # line 6

and the loop of the NumPy it compiles to (`seqdsl compile rnn.seq --backend numpy`): the input
projection and the bias are computed for all steps before the loop, and each step writes into
buffers allocated once (the last argument of each call is where the result goes); a comment
names the spec line each piece of code comes from, and a temporary is named after the spec
value it is part of and its op (`_h_matmul_2`: the second matmul that makes up h)::

    for t in (range(T - 1, -1, -1) if reverse__ else range(T)):
        # <string>:5: h = tanh(W @ x + U @ h[t-1] + b)
        _h_matmul_2 = np.matmul(h__d1, U__T, _h_matmul_2__buf)
        _h_add_2 = np.add(_h_add__steps[t], _h_matmul_2, _h_matmul_2)
        h = np.tanh(_h_add_2, h__d1)
        out_y__buf[t] = h

Public API: `load`, `compile`, `train`, `SpecError`.
"""

from .errors import SpecError

__all__ = ["load", "compile", "train", "SpecError", "Program"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # `load` and `Program` come from seqdsl.program, which imports networkx (~0.15 s): imported
    # on first use, so `import seqdsl` and `python -m seqdsl.<module>` stay cheap until then.
    if name in ("load", "Program"):
        from . import program

        return getattr(program, name)
    if name == "train":  # seqdsl/train/: a callable package, `seqdsl.train(...)` (docs/train.md)
        import importlib  # not `from . import train`: that asks this very __getattr__ first

        return importlib.import_module(".train", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"load", "Program", "train"})


def compile(source, backend: str = "numpy", sizes=None, name=None, dtype: str = "float32", fused: bool = True,
            **options):
    """Compile a spec (path, text or `Program`) to an executable; see docs/api.md.

    `fused=False` keeps standard RNN/LSTM/GRU cells on the generated loop (torch backend)."""
    from .driver import compile_program

    return compile_program(source, backend=backend, sizes=sizes, name=name, dtype=dtype, fused=fused, **options)
