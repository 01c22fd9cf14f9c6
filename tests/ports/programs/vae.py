"""A variational autoencoder as PyTorch's VAE example writes one: a shared hidden layer, mean
and log-variance heads, the reparameterization trick, binary cross-entropy summed with the KL
term, Adam. The noise of the trick comes from the data source, the same in both runs."""

import torch
from torch import nn, optim
from torch.nn import functional as F


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc21 = nn.Linear(32, 4)
        self.fc22 = nn.Linear(32, 4)
        self.fc3 = nn.Linear(4, 32)
        self.fc4 = nn.Linear(32, 64)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar, eps):
        std = torch.exp(0.5 * logvar)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x, eps):
        mu, logvar = self.encode(x.view(-1, 64))
        z = self.reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 64), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def run(ports):
    model = VAE()
    ports.start("vae", model)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    data = torch.tensor(ports.rng.uniform(0, 1, (6, 16, 8, 8)), dtype=torch.float32)
    noise = torch.tensor(ports.rng.standard_normal((6, 16, 4)), dtype=torch.float32)
    losses = []
    model.train()
    for epoch in range(2):
        train_loss = 0
        for batch_idx in range(data.shape[0]):
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data[batch_idx], noise[batch_idx])
            loss = loss_function(recon_batch, data[batch_idx], mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        losses.append(train_loss / data.shape[0])
    model.eval()
    with torch.no_grad():
        sample = model.decode(noise[0])
    return {"losses": losses, "sample_mean": sample.mean().item()}
