"""Write tests/engine/data/torch_golden.json: torch.optim and lr_scheduler on a known problem.

Run with the venv that has torch (it is the yardstick, never a dependency)::

    .venv/bin/python tests/engine/make_torch_golden.py

CI does not install torch, so the committed JSON is what test_optimizers.py / test_schedules.py
compare against; when torch is importable they also run it live through the functions below.

The problem is smooth on purpose (a rotated ill-conditioned quadratic plus a quartic and a tilt):
two correct implementations then differ only by rounding, which stays near 1e-16 over 30 steps.
The gradient is one NumPy function used by both sides, so both see bit-identical gradients.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

STEPS = 30
STARTS = [[2.0, -1.5], [-1.0, 2.5], [0.3, 0.2], [-2.5, -2.0]]
KAPPA, ANGLE, QUARTIC = 10.0, math.pi / 6, 0.1
TILT = np.array([0.5, -0.25])
_c, _s = math.cos(ANGLE), math.sin(ANGLE)
_R = np.array([[_c, -_s], [_s, _c]])
A = _R @ np.diag([1.0, KAPPA]) @ _R.T


def gradient(theta: np.ndarray) -> np.ndarray:
    """∇f for f(θ) = ½θᵀAθ + (q/4)Σθᵢ⁴ + tᵀθ, θ of shape (n, 2)."""
    return theta @ A + QUARTIC * (theta * theta * theta) + TILT


# (optimizer id, hyperparameters): every flag of every torch optimizer appears at least once,
# and lerp's two branches (weight 1 − β₁ below and above ½) are both taken.
OPTIMIZER_CASES: list[tuple[str, dict]] = [
    ("sgd", {"lr": 0.05}),
    ("sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd", {"lr": 0.03, "momentum": 0.8, "dampening": 0.3}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1}),
    ("sgd", {"lr": 0.02, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
    ("adagrad", {"lr": 0.5}),
    ("adagrad", {"lr": 0.5, "lr_decay": 0.1}),
    ("adagrad", {"lr": 0.3, "initial_accumulator_value": 0.5, "weight_decay": 0.1}),
    ("adagrad", {"lr": 0.5, "eps": 1e-3}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "centered": True}),
    ("rmsprop", {"lr": 0.005, "momentum": 0.8}),
    (
        "rmsprop",
        {"lr": 0.005, "momentum": 0.8, "centered": True, "weight_decay": 0.1, "alpha": 0.9},
    ),
    ("rmsprop", {"lr": 0.01, "eps": 1e-3, "alpha": 0.8}),
    ("adadelta", {}),
    ("adadelta", {"lr": 3.0, "rho": 0.5, "eps": 1e-4}),
    ("adadelta", {"lr": 5.0, "weight_decay": 0.1}),
    ("adam", {"lr": 0.1}),
    ("adam", {"lr": 0.1, "amsgrad": True}),
    ("adam", {"lr": 0.05, "betas": [0.8, 0.99], "eps": 1e-4, "weight_decay": 0.1}),
    (
        "adam",
        {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True, "amsgrad": True},
    ),
    ("adam", {"lr": 0.1, "betas": [0.3, 0.5]}),
    ("adamw", {"lr": 0.1}),
    ("adamw", {"lr": 0.05, "eps": 1e-3, "weight_decay": 0.0}),
    ("adamw", {"lr": 0.1, "weight_decay": 0.5, "amsgrad": True, "betas": [0.3, 0.9]}),
    ("nadam", {"lr": 0.1}),
    ("nadam", {"lr": 0.05, "momentum_decay": 0.1, "betas": [0.8, 0.99]}),
    ("nadam", {"lr": 0.05, "weight_decay": 0.1, "eps": 1e-3}),
    ("nadam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("radam", {"lr": 0.1}),
    ("radam", {"lr": 0.1, "betas": [0.3, 0.9]}),
    ("radam", {"lr": 0.05, "weight_decay": 0.1}),
    ("radam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True, "eps": 1e-3}),
    ("adamax", {"lr": 0.1}),
    ("adamax", {"lr": 0.05, "betas": [0.3, 0.9], "weight_decay": 0.1, "eps": 1e-3}),
]

TORCH_CLASS = {
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adadelta": "Adadelta",
    "adam": "Adam",
    "adamw": "AdamW",
    "nadam": "NAdam",
    "radam": "RAdam",
    "adamax": "Adamax",
}

SCHEDULE_STEPS = 60
# (our schedule id, our hyperparameters, base lr). T_max < SCHEDULE_STEPS on purpose: torch's
# recursive cosine is checked past T_max too.
SCHEDULE_CASES: list[tuple[str, dict, float]] = [
    ("constant", {}, 0.1),
    ("step", {"step_size": 3, "gamma": 0.5}, 0.1),
    ("step", {"step_size": 7, "gamma": 0.1}, 1.0),
    ("exponential", {"gamma": 0.9}, 0.1),
    ("exponential", {"gamma": 0.999}, 0.03),
    ("cosine", {"T_max": 10, "eta_min": 0.001}, 0.1),
    ("cosine", {"T_max": 25, "eta_min": 0.0}, 1.0),
    ("inverse_time", {"decay_rate": 0.1}, 0.1),
    ("inverse_time", {"decay_rate": 2.5}, 0.7),
]


def torch_trajectory(name: str, hyper: dict) -> np.ndarray:
    """Positions (STEPS + 1, n, 2) from torch.optim, float64, single-tensor path."""
    import torch

    torch.set_default_dtype(torch.float64)  # NAdam's mu_product lives in the default dtype
    kwargs = dict(hyper)
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    p = torch.tensor(STARTS, dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, TORCH_CLASS[name])([p], foreach=False, **kwargs)
    out = [p.detach().numpy().copy()]
    for _ in range(STEPS):
        p.grad = torch.from_numpy(gradient(p.detach().numpy()))
        opt.step()
        out.append(p.detach().numpy().copy())
    return np.array(out)


def torch_schedule(name: str, hyper: dict, base_lr: float) -> np.ndarray:
    """The lr torch uses at optimizer steps 0..SCHEDULE_STEPS-1 (get_last_lr after k steps)."""
    import torch
    from torch.optim import lr_scheduler as ls

    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = {
        "constant": lambda: ls.LambdaLR(opt, lambda k: 1.0),
        "step": lambda: ls.StepLR(opt, step_size=hyper["step_size"], gamma=hyper["gamma"]),
        "exponential": lambda: ls.ExponentialLR(opt, gamma=hyper["gamma"]),
        "cosine": lambda: ls.CosineAnnealingLR(opt, T_max=hyper["T_max"], eta_min=hyper["eta_min"]),
        "inverse_time": lambda: ls.LambdaLR(opt, lambda k: 1.0 / (1.0 + hyper["decay_rate"] * k)),
    }[name]()
    lrs = []
    for _ in range(SCHEDULE_STEPS):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return np.array(lrs)


def main() -> int:
    import torch

    data = {
        "meta": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "problem": "f = ½θᵀAθ + (q/4)Σθ⁴ + tᵀθ; see make_torch_golden.gradient",
            "steps": STEPS,
            "starts": STARTS,
            "schedule_steps": SCHEDULE_STEPS,
        },
        "optimizers": [
            {"name": n, "hyper": h, "trajectory": torch_trajectory(n, h).tolist()}
            for n, h in OPTIMIZER_CASES
        ],
        "schedules": [
            {"name": n, "hyper": h, "base_lr": b, "lrs": torch_schedule(n, h, b).tolist()}
            for n, h, b in SCHEDULE_CASES
        ],
    }
    out = Path(__file__).with_name("data") / "torch_golden.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
