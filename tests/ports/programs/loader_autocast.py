"""A training loop as many scripts write it: a map-style ``Dataset`` with ``__getitem__``
returning a dict, a ``DataLoader`` with a custom ``collate_fn``, a sampler (a list of indices
in a shuffled order, from the data source: the libraries' generators draw differently),
``drop_last``, ``torch.autocast("cpu", dtype=torch.bfloat16)`` around
the forward, a ``GradScaler`` that is off on the CPU, ``OneCycleLR``, ``zero_grad(set_to_none=
True)``, and evaluation under ``torch.inference_mode``. (No LayerNorm: under autocast PyTorch
rounds a LayerNorm's weight and bias gradients to bfloat16 where gradient keeps them in
float32, 0.013 from the exact value against 7e-7 on 8 rows; the losses then part at 1e-3.)"""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset


class Points(Dataset):
    def __init__(self, features, labels):
        self.features, self.labels = features, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"x": self.features[i], "y": self.labels[i]}


def collate(batch):
    return torch.stack([b["x"] for b in batch]), torch.stack([b["y"] for b in batch])


def run(ports):
    features = torch.tensor(ports.rng.standard_normal((40, 6)), dtype=torch.float32)
    labels = torch.tensor(ports.rng.integers(0, 3, 40))
    order = ports.rng.permutation(40).tolist()
    loader = DataLoader(Points(features, labels), batch_size=8, sampler=order, drop_last=True,
                        collate_fn=collate)
    model = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Dropout(0.0), nn.Linear(16, 3))
    ports.start("loader", model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05,
                                                    total_steps=3 * len(loader))
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    criterion = nn.CrossEntropyLoss()
    report = {"losses": [], "lr": [], "batches": len(loader)}
    for epoch in range(3):
        model.train()
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(x)
            loss = criterion(logits.float(), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            report["losses"].append(loss.item())
        report["lr"].append(scheduler.get_last_lr()[0])
    model.eval()
    with torch.inference_mode():
        accuracy = (model(features).argmax(1) == labels).float().mean().item()
    report["accuracy"] = accuracy
    return report
