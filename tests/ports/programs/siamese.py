"""A Siamese network as PyTorch's example builds one: a shared convolutional tower run on
both images, their features concatenated into a head with a sigmoid, ``nn.BCELoss``,
weights initialised through ``self.apply`` with ``xavier_uniform_`` and a bias ``fill_``,
Adadelta under ``StepLR``; the accuracy with ``torch.where`` on the outputs."""

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR


class SiameseNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.tower = nn.Sequential(nn.Conv2d(1, 6, 3), nn.BatchNorm2d(6), nn.ReLU(inplace=True),
                                   nn.MaxPool2d(2), nn.Conv2d(6, 8, 3), nn.ReLU(inplace=True),
                                   nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(16, 8), nn.ReLU(inplace=True), nn.Linear(8, 1))
        self.sigmoid = nn.Sigmoid()
        self.fc.apply(self.init_weights)

    def init_weights(self, m):
        if isinstance(m, nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight)
            m.bias.data.fill_(0.01)

    def forward_once(self, x):
        return self.tower(x).view(x.size()[0], -1)

    def forward(self, input1, input2):
        output = torch.cat((self.forward_once(input1), self.forward_once(input2)), 1)
        return self.sigmoid(self.fc(output))


def run(ports):
    model = SiameseNetwork()
    ports.start("siamese", model)
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=2, gamma=0.7)
    criterion = nn.BCELoss()
    left = torch.tensor(ports.rng.standard_normal((4, 6, 1, 10, 10)), dtype=torch.float32)
    right = torch.tensor(ports.rng.standard_normal((4, 6, 1, 10, 10)), dtype=torch.float32)
    targets = torch.tensor(ports.rng.integers(0, 2, (4, 6)), dtype=torch.float32)
    report = {"losses": [], "correct": [], "distance": []}
    for epoch in range(2):
        model.train()
        for images_1, images_2, target in zip(left, right, targets):
            optimizer.zero_grad()
            outputs = model(images_1, images_2).squeeze()
            loss = criterion(outputs, target)
            loss.backward()
            optimizer.step()
            report["losses"].append(loss.item())
        scheduler.step()
        model.eval()
        with torch.no_grad():
            outputs = model(left[0], right[0]).squeeze()
            pred = torch.where(outputs > 0.5, 1, 0)
            report["correct"].append(pred.eq(targets[0].view_as(pred)).sum().item())
            a, b = model.forward_once(left[1]), model.forward_once(right[1])
            report["distance"].append(F.pairwise_distance(a, b).mean().item()
                                      + F.cosine_similarity(a, b).sum().item())
    return report
