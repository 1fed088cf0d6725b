"""AdamW for a model held in bf16, with fp32 master weights and fp32 gradient sums.

Under autocast an fp32 model has every weight cast to bf16 in each forward pass and every weight
gradient cast back to fp32 in each backward pass: on a 1.5B model about a tenth of the GPU's
time in a training step. Holding the model in bf16 removes those casts; this optimizer keeps what
mixed precision needs to lose nothing in the update: an fp32 copy of each weight that AdamW
updates (bf16 cannot hold a small update to a large weight) and an fp32 sum of the gradients over
the micro-batches of a step. After each step the bf16 weights are the rounded fp32 masters, as
autocast would have cast them.

Gradients leave the bf16 parameters as soon as backward has produced them (a post-accumulate
hook), so clipping and the gradient norm go through :meth:`clip_grad_norm_`, on the fp32 sums.
The masters are part of ``state_dict``: a resumed run continues from them, not from the rounded
weights in the checkpoint. One process only: data-parallel wrappers reduce ``param.grad``.
"""

from __future__ import annotations

import weakref

import torch


class MasterWeightAdamW(torch.optim.AdamW):
    def __init__(self, params, **kwargs):
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.model_params: list[torch.nn.Parameter] = []
        master_groups = []
        handles = []
        for group in groups:
            masters = []
            for param in group["params"]:
                master = param.detach().float().clone()
                # one fp32 buffer for the step's gradient sum, reused every step
                master.grad = torch.empty_like(master)
                hook = _accumulate_hook(weakref.ref(self), len(self.model_params))
                handles.append(param.register_post_accumulate_grad_hook(hook))
                self.model_params.append(param)
                masters.append(master)
            master_groups.append({**group, "params": masters})
        super().__init__(master_groups, **kwargs)
        self.masters = [m for group in self.param_groups for m in group["params"]]
        # masters whose gradient buffer holds nothing of this step yet: the first micro-batch
        # copies into the buffer instead of adding to a zeroed one (one pass over it, not two)
        self._empty = {id(m) for m in self.masters}
        # the model outlives its optimizer (an evaluation, the next run in one process): the
        # hooks go with the optimizer, and hold it and its fp32 copies only weakly till then
        weakref.finalize(self, _remove_hooks, handles)

    @torch.no_grad()
    def step(self, closure=None):
        self._zero_untouched()
        loss = super().step(closure)
        torch._foreach_copy_(self.model_params, self.masters)
        self.zero_grad()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        # the fp32 buffers are kept, not freed: the next step's first gradients overwrite them
        self._empty = {id(m) for m in self.masters}
        for param in self.model_params:
            param.grad = None

    def _accumulate(self, index: int, param: torch.Tensor) -> None:
        master = self.masters[index]
        if id(master) in self._empty:
            master.grad.copy_(param.grad)
            self._empty.discard(id(master))
        else:
            master.grad.add_(param.grad)
        param.grad = None

    def _zero_untouched(self) -> None:
        """A parameter that got no gradient this step sums to 0."""
        if self._empty:
            torch._foreach_zero_([m.grad for m in self.masters if id(m) in self._empty])
            self._empty.clear()

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """The total L2 norm of the step's gradients, scaled down to ``max_norm`` if above."""
        self._zero_untouched()
        return torch.nn.utils.clip_grad_norm_(self.masters, max_norm)

    def state_dict(self):
        state = super().state_dict()
        state["master_weights"] = [m.detach() for m in self.masters]
        return state

    def load_state_dict(self, state_dict) -> None:
        state_dict = dict(state_dict)
        saved = state_dict.pop("master_weights", None)
        super().load_state_dict(state_dict)
        if saved is None:
            # an optimizer state from an fp32-weight run: its weights are in the model
            saved = self.model_params
        if len(saved) != len(self.masters):
            raise ValueError(
                f"the checkpoint holds {len(saved)} master weights, the model has "
                f"{len(self.masters)} trainable parameters"
            )
        with torch.no_grad():
            for master, value, param in zip(self.masters, saved, self.model_params, strict=True):
                master.copy_(value)
                param.copy_(master)


def _accumulate_hook(optimizer: weakref.ref, index: int):
    def hook(param: torch.Tensor) -> None:
        owner = optimizer()
        if owner is not None:
            owner._accumulate(index, param)

    return hook


def _remove_hooks(handles) -> None:
    for handle in handles:
        handle.remove()


def master_optimizer(optimizer) -> MasterWeightAdamW | None:
    """The MasterWeightAdamW behind a (possibly accelerate-wrapped) optimizer, if any."""
    inner = getattr(optimizer, "optimizer", optimizer)
    return inner if isinstance(inner, MasterWeightAdamW) else None
