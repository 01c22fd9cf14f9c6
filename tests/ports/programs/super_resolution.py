"""Super-resolution as PyTorch's example builds it: convolutions initialised by
``init.orthogonal_`` with ReLU's gain, a sub-pixel convolution (``nn.PixelShuffle``), MSE,
Adam, and the PSNR of each epoch from ``log10``."""

import math

import torch
import torch.nn as nn
import torch.nn.init as init
import torch.optim as optim


class Net(nn.Module):
    def __init__(self, upscale_factor):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 16, (5, 5), (1, 1), (2, 2))
        self.conv2 = nn.Conv2d(16, 16, (3, 3), (1, 1), (1, 1))
        self.conv3 = nn.Conv2d(16, 8, (3, 3), (1, 1), (1, 1))
        self.conv4 = nn.Conv2d(8, upscale_factor ** 2, (3, 3), (1, 1), (1, 1))
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)
        self._initialize_weights()

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        return self.pixel_shuffle(self.conv4(x))

    def _initialize_weights(self):
        init.orthogonal_(self.conv1.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv2.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv3.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv4.weight)


def run(ports):
    model = Net(upscale_factor=2)
    ports.start("srcnn", model)
    criterion = nn.MSELoss()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    high = torch.tensor(ports.rng.uniform(0, 1, (4, 8, 1, 12, 12)), dtype=torch.float32)
    report = {"losses": [], "psnr": []}
    for epoch in range(2):
        epoch_loss = 0
        for target in high:
            inputs = nn.functional.avg_pool2d(target, 2)
            optimizer.zero_grad()
            loss = criterion(model(inputs), target)
            epoch_loss += loss.item()
            loss.backward()
            optimizer.step()
        report["losses"].append(epoch_loss / len(high))
        avg_psnr = 0
        with torch.no_grad():
            for target in high:
                mse = criterion(model(nn.functional.avg_pool2d(target, 2)), target)
                avg_psnr += 10 * math.log10(1 / mse.item())
        report["psnr"].append(avg_psnr / len(high))
    return report
