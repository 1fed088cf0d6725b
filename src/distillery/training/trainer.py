"""TRL's SFTTrainer with its per-step metrics kept on the GPU until they are logged.

On every micro-batch TRL's ``compute_loss`` reads the token entropy, the top-1 accuracy and the
token count back to the host (three GPU syncs). Each sync drains the GPU's queue, and the next
micro-batch's thousands of kernel launches then start from an idle GPU. This trainer takes the
same loss from TRL's fused LM head, sums the metric numerators and denominators on the GPU and
reads them once per logged step, where the Trainer syncs anyway. The logged entropy and accuracy
are token-weighted over the logging window (TRL averages per micro-batch ratios).

With a bf16 model (``param_dtype: bf16``) the gradients live in the optimizer's fp32 sums, not
on the parameters, so clipping and the logged gradient norm are taken there.
"""

from __future__ import annotations

import time


def trainer_class():
    import torch
    from trl import SFTTrainer

    from distillery.training.master_weights import master_optimizer

    class PackedSFTTrainer(SFTTrainer):
        _pending = None

        def _plain_loss(self) -> bool:
            """TRL's default loss (negative log-likelihood from its fused LM head) is the
            one this trainer reproduces; anything else goes through TRL."""
            return (
                self.compute_loss_func is None
                and self.label_smoother is None
                and getattr(self.args, "loss_type", "nll") == "nll"
                and not getattr(self, "aux_loss_enabled", False)
                and hasattr(self, "_total_train_tokens")
                and getattr(self.accelerator, "parallelism_config", None) is None
            )

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if (
                not model.training
                or return_outputs
                or "position_ids" not in inputs
                or not self._plain_loss()
            ):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            inputs["use_cache"] = False
            outputs = model(**inputs, fused_lm_head=True, num_items_in_batch=num_items_in_batch)
            loss = outputs.loss
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                # data-parallel ranks average gradients; the loss is over all ranks' tokens
                loss = loss * self.accelerator.num_processes
            sums = torch.stack(
                [
                    outputs.label_mask.sum().float(),
                    outputs.entropy.detach().sum().float(),
                    outputs.is_top1.sum().float(),
                ]
            )
            self._pending = sums if self._pending is None else self._pending + sums
            # padding-free rows hold no padding: the row length is the token count
            self._total_train_tokens += inputs["position_ids"].size(1) * (
                self.accelerator.num_processes
            )
            return loss

        def _clip_grad_norm(self, model):
            masters = master_optimizer(self.optimizer)
            if masters is None:
                return super()._clip_grad_norm(model)
            return masters.clip_grad_norm_(self.args.max_grad_norm)

        def _get_grad_norm(self, model, grad_norm=None):
            masters = master_optimizer(self.optimizer)
            if grad_norm is None and masters is not None:
                grad_norm = masters.clip_grad_norm_(float("inf"))
            return super()._get_grad_norm(model, grad_norm)

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            if self.model.training and "loss" in logs:
                self._log_throughput(logs)
            if self.model.training and self._pending is not None:
                valid, entropy, correct = (
                    self.accelerator.gather(self._pending).view(-1, 3).sum(0).tolist()
                )
                valid = max(valid, 1.0)
                metrics = self._metrics["train"]
                metrics["entropy"] = [entropy / valid]
                metrics["mean_token_accuracy"] = [correct / valid]
                metrics["num_tokens"] = [self._total_train_tokens]
                self._pending = None
            super().log(logs, start_time)

        def _log_throughput(self, logs: dict[str, float]) -> None:
            """Training tokens per second (all processes) since the last logged step: the
            throughput curve beside the loss and learning rate."""
            tokens = getattr(self, "_total_train_tokens", None)
            now = time.perf_counter()
            last = getattr(self, "_last_log", None)
            if tokens is not None and last is not None and now > last[0]:
                logs["train_tokens_per_second"] = (tokens - last[1]) / (now - last[0])
            self._last_log = (now, tokens)

    return PackedSFTTrainer
