"""What executables of models with predicted outputs (`out y ~ ...`) can do, on both backends.

In:  an executable class that defines the array hooks `stepping.Stepper` uses (`_part_ns`,
     `_forward_ns`, `_arrays`, `_tensor_in`, `_to_numpy`, `_take`, `_full`, `_tokens`, `_step_value`)
     and `_loss_ops` (`loss.NumpyOps` or `loss.TorchOps`).
Out: the `Predicting` mixin: `loss(**inputs_and_observed, lengths=None, parts=False)`,
     `begin(**inputs, lengths=None)`, `step(state, **previous)` and `generate(**inputs, ...)`
     (docs/api.md, "Predictions: learning and generating").
"""

from __future__ import annotations

from .loss import nll, observed_values
from .validate import UnknownName


class Predicting:
    def _predicted(self) -> dict:
        return self._ns["PREDICTED"]

    def _observed_split(self, inputs: dict) -> tuple:
        """(the inputs the module reads, the observed values of predicted outputs): an observed value
        the model also reads at t-1 is both."""
        pred = self._predicted()
        graph_inputs = self._ns["INPUTS"]
        observed = {k: v for k, v in inputs.items() if k in pred}
        return {k: v for k, v in inputs.items() if k not in pred or k in graph_inputs}, observed

    def _with_last(self, final: dict, inputs: dict, lengths) -> dict:
        """`final` with `<y>.last` for each prediction the model reads at t-1: its last observed value
        (at each sample's length), what y[t-1] reads first when `final` is the next call's `state`."""
        names = [k[: -len(".last")] for k in self._ns.get("STATE_SHAPES", {}) if k.endswith(".last")]
        names = [k for k in names if k in inputs]
        if not names:
            return final
        checked = self.boundary.lengths(lengths, inputs) if lengths is not None else {}
        out = dict(final)
        for k in names:
            x = inputs[k]
            n = checked.get(k)
            out[f"{k}.last"] = x[:, -1] if n is None else x[self._index(range(len(n))), self._index(n - 1)]
        return out

    def loss(self, state=None, lengths=None, parts=False, **inputs):
        """The negative log-likelihood the spec declares (`out y ~ ...`) of the observed values passed
        by name beside the inputs, averaged over real positions; with `parts=True`, (total,
        {output: part})."""
        if not self._predicted():
            raise UnknownName(f"{self.name}: loss() needs an output declared with '~' (out y ~ categorical(...)); "
                              f"this {self.kind} predicts nothing")
        total, each, _outputs = self._loss(inputs, state, lengths)
        return (total, each) if parts else total

    def _loss(self, inputs, state, lengths, **call):
        run, observed = self._observed_split(inputs)
        outputs, _final = self(state=state, lengths=lengths, **run, **call)
        observed = observed_values(self.name, self._predicted(), observed, outputs, self._to_numpy)
        checked = self.boundary.lengths(lengths, run) if lengths is not None else None
        total, each = nll(self._ns, self._loss_ops, outputs, observed, checked)
        return total, each, outputs

    def _stepper(self):
        from .stepping import Stepper

        if getattr(self, "_stepper_cache", None) is None:
            if not any(p["previous"] for p in self._predicted().values()):
                raise UnknownName(f"{self.name}: begin()/step() run a model that reads its previous prediction "
                                  "(y[t-1]) one step at a time; this one does not: call it on the whole input")
            self._stepper_cache = Stepper(self)
        return self._stepper_cache

    def begin(self, lengths=None, **inputs):
        """Run once what does not depend on a prediction; returns the state of the first step."""
        return self._stepper().begin(inputs, lengths)

    def step(self, state, **previous):
        """One step from `state` given the previous predictions by name: ({output: (B, ...)}, new state)."""
        return self._stepper().step(state, previous)

    def generate(self, max_len: int = 50, strategy: str | None = None, beam: int = 1, temperature: float = 1.0,
                 top_k=None, seed=None, prompt=None, lengths=None, length_penalty: float = 1.0, **inputs):
        """Generate the predicted sequence step by step: greedy (default), "sample" (temperature,
        top_k, seed) or "beam" (`beam` hypotheses; the default when beam > 1). Returns a
        `search.Generated` (tokens, lengths, scores, log_probs, outputs). A model that does not read its
        previous prediction (Sentiment) is called once and chooses at each position."""
        from .search import choose_once, generate

        strategy = strategy or ("beam" if beam > 1 else "greedy")
        with self._no_grad():
            if self._predicted() and not any(p["previous"] for p in self._predicted().values()):
                return choose_once(self, inputs, lengths, strategy, temperature, top_k, seed, beam, length_penalty)
            return generate(self._stepper(), inputs, lengths, max_len, strategy, beam, temperature, top_k, seed,
                            prompt, length_penalty)
