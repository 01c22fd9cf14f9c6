"""Actor-critic as PyTorch's reinforcement-learning example writes it: a shared layer with
action and value heads, ``Categorical`` log-probabilities, discounted returns normalised with
float32's epsilon, ``smooth_l1_loss`` for the critic, ``torch.stack(...).sum()``. The episodes'
states and actions come from the data source, the same in both runs."""

from collections import namedtuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions import Categorical

SavedAction = namedtuple("SavedAction", ["log_prob", "value"])
eps = np.finfo(np.float32).eps.item()


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.affine1 = nn.Linear(4, 32)
        self.action_head = nn.Linear(32, 2)
        self.value_head = nn.Linear(32, 1)
        self.saved_actions = []
        self.rewards = []

    def forward(self, x):
        x = F.relu(self.affine1(x))
        action_prob = F.softmax(self.action_head(x), dim=-1)
        state_values = self.value_head(x)
        return action_prob, state_values


def run(ports):
    model = Policy()
    ports.start("policy", model)
    optimizer = optim.Adam(model.parameters(), lr=3e-2)
    gamma = 0.99
    report = {"losses": [], "entropy": []}
    for episode in range(4):
        states = ports.rng.standard_normal((12, 4)).astype(np.float32)
        choices = ports.rng.integers(0, 2, 12)
        rewards = ports.rng.uniform(0, 1, 12)
        entropy = 0.0
        for state, choice, reward in zip(states, choices, rewards):
            probs, state_value = model(torch.from_numpy(state).float())
            m = Categorical(probs)
            action = torch.tensor(int(choice))
            model.saved_actions.append(SavedAction(m.log_prob(action), state_value))
            model.rewards.append(float(reward))
            entropy += m.entropy().item()
        R = 0
        policy_losses, value_losses, returns = [], [], []
        for r in model.rewards[::-1]:
            R = r + gamma * R
            returns.insert(0, R)
        returns = torch.tensor(returns)
        returns = (returns - returns.mean()) / (returns.std() + eps)
        for (log_prob, value), R in zip(model.saved_actions, returns):
            advantage = R - value.item()
            policy_losses.append(-log_prob * advantage)
            value_losses.append(F.smooth_l1_loss(value, torch.tensor([R])))
        optimizer.zero_grad()
        loss = torch.stack(policy_losses).sum() + torch.stack(value_losses).sum()
        loss.backward()
        optimizer.step()
        del model.rewards[:]
        del model.saved_actions[:]
        report["losses"].append(loss.item())
        report["entropy"].append(entropy)
    return report
