"""Output fusion (late fusion): one classifier per modality, l_m = W_m f_m(x_m); the decisions are combined.

Every model trains all unimodal classifiers (``loss`` averages their cross-entropies over the present
modalities) and returns them in ``FusionOutput.modality_logits``. The combination only ever uses the
present modalities ``P``: averaging probabilities, majority or weighted voting, learned weights, a
stacked logistic-regression meta-learner (fit after training) or Dempster-Shafer combination of
evidential opinions. The weighted vote and stacking are fitted on out-of-fold (cross-fitted) unimodal
probabilities of the training subjects.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.dataset import ModalitySpec, MultimodalDataset
from .base import FusionModel, FusionOutput
from .masking import masked_mean, masked_softmax

__all__ = [
    "OutputFusion",
    "CrossFitted",
    "AverageFusion",
    "MajorityVoteFusion",
    "WeightedVoteFusion",
    "LearnedWeightFusion",
    "StackingFusion",
    "EvidentialFusion",
]


def _log(p: Tensor) -> Tensor:
    return torch.log(p.clamp_min(1e-8))


class OutputFusion(FusionModel):
    """Base: l_m = W_m f_m(x_m) for every modality m; subclasses combine the l_m of the present modalities."""

    family: ClassVar[str] = "output"
    layout: ClassVar[str] = "decisions"
    fusion_point: ClassVar[str] = "the decisions: one classifier per modality, combined at the end"
    own_channels: ClassVar[bool] = True

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.encoders = nn.ModuleDict({m: self.make_encoder(m) for m in self.modalities})
        self.heads = nn.ModuleDict({m: nn.Linear(self.out_dim, self.num_classes) for m in self.modalities})

    def unimodal(self, batch: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        """Per-modality logits (B, M, K); an absent modality's row depends on nothing but the weights."""
        return torch.stack(
            [self.heads[m](self.keep(self.encoders[m](batch[m]), self.present(mask, m))) for m in self.modalities], 1
        )

    def output(self, logits: Tensor, unimodal: Tensor, mask: Tensor, **extra) -> FusionOutput:
        per_modality = {m: unimodal[:, j] for j, m in enumerate(self.modalities)}
        return FusionOutput(logits, modality_logits=per_modality, mask=mask, **extra)

    def loss(self, output: FusionOutput, label: Tensor) -> Tensor:
        """Mean over present (subject, modality) pairs of CE(l_m, y): every unimodal classifier learns."""
        return self.unimodal_loss(output, label)

    @staticmethod
    def unimodal_loss(output: FusionOutput, label: Tensor) -> Tensor:
        l = torch.stack(list(output.modality_logits.values()), 1).float()  # (B, M, K)
        b, m, _ = l.shape
        ce = F.cross_entropy(l.flatten(0, 1), label.repeat_interleave(m), reduction="none").view(b, m)
        present = output.mask
        return torch.where(present, ce, torch.zeros_like(ce)).sum() / present.sum().clamp_min(1)

    @torch.no_grad()
    def unimodal_probabilities(self, data: MultimodalDataset, batch_size: int = 512) -> tuple[Tensor, Tensor]:
        """softmax(l_m) for every subject and modality (N, M, K), and the mask (N, M), in eval mode."""
        was_training = self.training
        self.eval()
        probs, masks = [], []
        for i in torch.arange(len(data), device=data.device).split(batch_size):
            batch, mask = self.read(data.batch(i))
            probs.append(self.unimodal(batch, mask).float().softmax(-1))
            masks.append(mask)
        self.train(was_training)
        return torch.cat(probs), torch.cat(masks)


class CrossFitted(OutputFusion):
    """Base of the rules fitted after training on the unimodal probabilities of the training subjects.

    Probabilities of subjects a classifier was trained on over-trust whichever modality overfits most,
    so they are cross-fitted: the training set is cut into ``cross_fit`` folds, a copy of the model is
    trained without each fold (``fit`` passes ``refit``) and predicts it; every subject's probabilities
    then come from classifiers that did not see it. ``cross_fit=1`` uses the in-sample probabilities.
    """

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, *, cross_fit: int = 3, **options) -> None:
        super().__init__(specs, num_classes, **options)
        if isinstance(cross_fit, bool) or not isinstance(cross_fit, int) or cross_fit < 1:
            raise ValueError(f"cross_fit is a number of folds (1: in-sample), got {cross_fit!r}")
        self.cross_fit = cross_fit

    def held_out_probabilities(self, train: MultimodalDataset, refit=None) -> tuple[Tensor, Tensor]:
        """Out-of-fold softmax(l_m) (N, M, K) for the training subjects, and their mask (N, M)."""
        if refit is None or self.cross_fit < 2:
            return self.unimodal_probabilities(train)
        from sklearn.model_selection import StratifiedKFold

        labels = train.labels.cpu().numpy()
        k = int(min(self.cross_fit, np.bincount(labels).max()))
        folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=0) if np.bincount(labels).min() >= k else None
        cuts = folds.split(np.zeros(len(labels)), labels) if folds else _plain_folds(len(labels), k)
        probs, mask = self.unimodal_probabilities(train)
        for rest, held in cuts:
            copy = refit(train.subset(rest))
            probs[torch.as_tensor(held, device=probs.device)] = copy.unimodal_probabilities(train.subset(held))[0]
        return probs, mask


def _plain_folds(n: int, k: int):
    order = np.random.default_rng(0).permutation(n)
    for held in np.array_split(order, k):
        yield np.setdiff1d(order, held), held


class AverageFusion(OutputFusion):
    """p = (1/|P|) Σ_{m∈P} softmax(l_m)"""

    fusion_label: ClassVar[str] = "average\nprobabilities"

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        l = self.unimodal(batch, mask)  # (B, M, K)
        p = masked_mean(l.float().softmax(-1), mask, 1)  # (B, K)
        return self.output(_log(p), l, mask)


class MajorityVoteFusion(OutputFusion):
    """y = argmax_k Σ_{m∈P} [argmax l_m = k]; ties broken by the mean probability"""

    fusion_label: ClassVar[str] = "majority vote"

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        l = self.unimodal(batch, mask)  # (B, M, K)
        probs = l.float().softmax(-1)  # (B, M, K)
        votes = F.one_hot(probs.argmax(-1), self.num_classes).float()  # (B, M, K)
        share = masked_mean(votes, mask, 1) + 1e-3 * masked_mean(probs, mask, 1)  # (B, K)
        return self.output(_log(share / share.sum(-1, keepdim=True).clamp_min(1e-8)), l, mask)


class WeightedVoteFusion(CrossFitted):
    """y = argmax_k Σ_{m∈P} w_m [argmax l_m = k], w_m = balanced accuracy of classifier m, out of fold on the training set"""

    fusion_label: ClassVar[str] = "weighted vote\nΣ w_m vote_m"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.register_buffer("weights", torch.ones(len(self.modalities)))  # set by after_fit

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        l = self.unimodal(batch, mask)  # (B, M, K)
        probs = l.float().softmax(-1)
        votes = F.one_hot(probs.argmax(-1), self.num_classes).float()  # (B, M, K)
        w = torch.where(mask, self.weights.expand_as(mask), torch.zeros_like(self.weights))  # (B, M)
        share = (w.unsqueeze(-1) * votes).sum(1) / w.sum(1, keepdim=True).clamp_min(1e-8)  # (B, K)
        share = share + 1e-3 * masked_mean(probs, mask, 1)
        return self.output(_log(share / share.sum(-1, keepdim=True)), l, mask, attention=w)

    def after_fit(self, train: MultimodalDataset, refit=None) -> None:
        """w_m = balanced accuracy of modality m's classifier on the training subjects where m is present
        (out of fold: each subject predicted by a copy that did not train on it)."""
        from sklearn.metrics import balanced_accuracy_score

        probs, mask = self.held_out_probabilities(train, refit)
        labels, predicted, mask = train.labels.cpu().numpy(), probs.argmax(-1).cpu().numpy(), mask.cpu().numpy()
        scores = [
            balanced_accuracy_score(labels[mask[:, j]], predicted[mask[:, j], j]) if mask[:, j].any() else 0.0
            for j in range(len(self.modalities))
        ]
        self.weights.copy_(torch.tensor(scores, dtype=torch.float32).clamp_min(1e-3))


class LearnedWeightFusion(OutputFusion):
    """p = Σ_{m∈P} w_m softmax(l_m),  w = softmax_{m∈P}(a) with learned scores a"""

    fusion_label: ClassVar[str] = "learned weights\nΣ w_m p_m"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.scores = nn.Parameter(torch.zeros(len(self.modalities)))  # a

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        l = self.unimodal(batch, mask)  # (B, M, K)
        w = masked_softmax(self.scores.float().expand(mask.shape), mask, dim=1)  # (B, M)
        p = (w.unsqueeze(-1) * l.float().softmax(-1)).sum(1)  # (B, K)
        return self.output(_log(p), l, mask, attention=w)

    def loss(self, output: FusionOutput, label: Tensor) -> Tensor:
        """CE of the weighted mixture plus the unimodal cross-entropies."""
        return F.nll_loss(output.logits.float(), label) + self.unimodal_loss(output, label)


class StackingFusion(CrossFitted):
    """y = softmax(A [p_1; ...; p_M; mask] + c): a logistic-regression meta-learner on out-of-fold unimodal probabilities"""

    fusion_label: ClassVar[str] = "stacked\nmeta-learner"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, *, C: float = 1.0, **options) -> None:
        super().__init__(specs, num_classes, **options)
        if C <= 0:
            raise ValueError(f"C (inverse regularisation strength of the meta-learner) must be positive, got {C}")
        self.C = C
        width = len(self.modalities) * (self.num_classes + 1)
        self.register_buffer("meta_weight", torch.zeros(self.num_classes, width))  # A, set by after_fit
        self.register_buffer("meta_bias", torch.zeros(self.num_classes))  # c
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def features(self, probs: Tensor, mask: Tensor) -> Tensor:
        """[p_1; ...; p_M; mask] (B, M*K + M); an absent p_m is the uniform distribution."""
        uniform = torch.full_like(probs, 1.0 / self.num_classes)
        return torch.cat([torch.where(mask.unsqueeze(-1), probs, uniform).flatten(1), mask.float()], 1)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        l = self.unimodal(batch, mask)  # (B, M, K)
        probs = l.float().softmax(-1)
        if not bool(self.fitted):  # before after_fit: plain averaging
            return self.output(_log(masked_mean(probs, mask, 1)), l, mask)
        logits = self.features(probs, mask) @ self.meta_weight.T + self.meta_bias  # (B, K)
        return self.output(logits, l, mask)

    def after_fit(self, train: MultimodalDataset, refit=None) -> None:
        """Fit the meta-learner (scikit-learn LogisticRegression) on the training set's out-of-fold unimodal outputs."""
        from sklearn.linear_model import LogisticRegression

        probs, mask = self.held_out_probabilities(train, refit)
        x = self.features(probs, mask).cpu().numpy()
        y = train.labels.cpu().numpy()
        if len(np.unique(y)) < 2:
            raise ValueError("the stacking meta-learner needs at least two classes in the training set")
        meta = LogisticRegression(C=self.C, max_iter=1000).fit(x, y)
        weight = np.zeros((self.num_classes, x.shape[1]))
        bias = np.full(self.num_classes, -30.0)  # classes never seen in training: never predicted
        if len(meta.classes_) == 2:  # scikit-learn keeps one row for two classes: logits [0, w x + b]
            weight[meta.classes_[1]], bias[meta.classes_] = meta.coef_[0], (0.0, meta.intercept_[0])
        else:
            weight[meta.classes_], bias[meta.classes_] = meta.coef_, meta.intercept_
        self.meta_weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        self.meta_bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        self.fitted.fill_(True)


class EvidentialFusion(OutputFusion):
    """Dempster's rule on opinions b_m = v_m / S_m, u_m = K / S_m, v_m = softplus(l_m)  (trusted multi-view, Han et al. 2021)"""

    fusion_label: ClassVar[str] = "Dempster-Shafer\n(evidential)"

    def __init__(
        self,
        specs: Mapping[str, ModalitySpec],
        num_classes: int,
        *,
        kl_weight: float = 1.0,
        anneal_steps: int = 100,
        **options,
    ) -> None:
        super().__init__(specs, num_classes, **options)
        self.kl_weight, self.anneal_steps, self.steps = kl_weight, max(int(anneal_steps), 1), 0

    def opinions(self, l: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Beliefs (B, M, K), uncertainties (B, M, 1) (absent: vacuous, b = 0 and u = 1) and α (B, M, K)."""
        alpha = F.softplus(l.float()) + 1  # (B, M, K)
        s = alpha.sum(-1, keepdim=True)  # (B, M, 1)
        keep = mask.unsqueeze(-1)
        b = torch.where(keep, (alpha - 1) / s, torch.zeros_like(alpha))
        u = torch.where(keep, self.num_classes / s, torch.ones_like(s))
        return b, u, alpha

    @staticmethod
    def dempster(b1: Tensor, u1: Tensor, b2: Tensor, u2: Tensor) -> tuple[Tensor, Tensor]:
        """Combine two opinions: b = (b1 b2 + b1 u2 + b2 u1) / (1 - C), u = u1 u2 / (1 - C), C = Σ_{i≠j} b1_i b2_j."""
        conflict = b1.sum(-1, keepdim=True) * b2.sum(-1, keepdim=True) - (b1 * b2).sum(-1, keepdim=True)  # (B, 1)
        scale = 1.0 / (1.0 - conflict).clamp_min(1e-6)
        return (b1 * b2 + b1 * u2 + b2 * u1) * scale, u1 * u2 * scale

    def combine(self, l: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Fused Dirichlet α (B, K) and uncertainty (B, 1), with the per-modality α (B, M, K) and u (B, M, 1)."""
        b, u, alpha = self.opinions(l, mask)
        bc, uc = torch.zeros_like(b[:, 0]), torch.ones_like(u[:, 0])  # the vacuous opinion: knows nothing
        for j in range(len(self.modalities)):
            bc, uc = self.dempster(bc, uc, b[:, j], u[:, j])
        s = self.num_classes / uc  # (B, 1)
        return bc * s + 1, uc, alpha, u

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        l = self.unimodal(batch, mask)  # (B, M, K)
        alpha, uc, _, u = self.combine(l, mask)  # (B, K), (B, 1)
        logits = _log(alpha / alpha.sum(-1, keepdim=True))  # expected probability of the fused Dirichlet
        return self.output(logits, l, mask, uncertainty=torch.cat([u.squeeze(-1), uc], 1))

    def evidential_loss(self, alpha: Tensor, label: Tensor, kl: float) -> Tensor:
        """ψ(S) - ψ(α_y) + λ KL(Dir(α̃) || Dir(1)), α̃ = α with the true class's evidence removed; per subject."""
        s = alpha.sum(-1)
        fit = torch.digamma(s) - torch.digamma(alpha.gather(-1, label.unsqueeze(-1)).squeeze(-1))
        onehot = F.one_hot(label, self.num_classes).bool()
        a = torch.where(onehot, torch.ones_like(alpha), alpha)  # α̃
        sa = a.sum(-1)
        divergence = (
            torch.lgamma(sa) - torch.lgamma(torch.tensor(float(self.num_classes), device=a.device))
            - torch.lgamma(a).sum(-1) + ((a - 1) * (torch.digamma(a) - torch.digamma(sa).unsqueeze(-1))).sum(-1)
        )
        return fit + kl * divergence

    def loss(self, output: FusionOutput, label: Tensor) -> Tensor:
        """Σ_{m∈P} L(α_m) + L(α), averaged over subjects; the KL weight grows from 0 over ``anneal_steps`` steps.

        Out of training (validation) the full KL weight is used, so the validation loss is the same
        objective at every epoch and early stopping can compare epochs.
        """
        if self.training:
            self.steps += 1
            kl = self.kl_weight * min(1.0, self.steps / self.anneal_steps)
        else:
            kl = self.kl_weight
        l = torch.stack(list(output.modality_logits.values()), 1)  # (B, M, K)
        alpha, _, alphas, _ = self.combine(l, output.mask)
        m = alphas.shape[1]
        per_modality = self.evidential_loss(alphas.flatten(0, 1), label.repeat_interleave(m), kl).view(-1, m)  # (B, M)
        per_modality = torch.where(output.mask, per_modality, torch.zeros_like(per_modality)).sum(1)
        return (per_modality + self.evidential_loss(alpha, label, kl)).mean()
