"""A sentence-pair classifier as PyTorch's SNLI example builds one: a frozen-then-trained
embedding, a bidirectional LSTM encoder whose final states (``ht[-2:]``) are joined, features
``[p, h, p - h, p * h]`` through ``Linear``/``BatchNorm1d``/``ReLU``/``Dropout``, cross-entropy,
a parameter group added once the embedding is unfrozen; the accuracy in eval mode. (SGD with
momentum where the example has Adam: a bias before the batch norm of units active for the
whole batch has a gradient of zero but for rounding, whose sign Adam's first step turns into
a full step either way.)"""

import torch
import torch.nn as nn


class Bottle(nn.Module):
    def forward(self, input):
        if len(input.size()) <= 2:
            return super().forward(input)
        size = input.size()[:2]
        out = super().forward(input.view(size[0] * size[1], -1))
        return out.view(size[0], size[1], -1)


class Linear(Bottle, nn.Linear):
    pass


class Encoder(nn.Module):
    def __init__(self, d_embed, d_hidden, n_layers):
        super().__init__()
        self.rnn = nn.LSTM(input_size=d_embed, hidden_size=d_hidden, num_layers=n_layers,
                           dropout=0, bidirectional=True)
        self.n_cells = n_layers * 2
        self.d_hidden = d_hidden

    def forward(self, inputs):
        batch_size = inputs.size()[1]
        state_shape = self.n_cells, batch_size, self.d_hidden
        h0 = c0 = inputs.new_zeros(state_shape)
        outputs, (ht, ct) = self.rnn(inputs, (h0, c0))
        return ht[-2:].transpose(0, 1).contiguous().view(batch_size, -1)


class SNLIClassifier(nn.Module):
    def __init__(self, n_embed=20, d_embed=8, d_proj=8, d_hidden=6, n_layers=2, d_out=3):
        super().__init__()
        self.embed = nn.Embedding(n_embed, d_embed)
        self.projection = Linear(d_embed, d_proj)
        self.encoder = Encoder(d_proj, d_hidden, n_layers)
        self.dropout = nn.Dropout(p=0.0)
        self.relu = nn.ReLU()
        seq_in_size = 4 * 2 * d_hidden
        lin_config = [seq_in_size] * 2
        self.out = nn.Sequential(
            Linear(*lin_config), self.relu, self.dropout, nn.BatchNorm1d(seq_in_size),
            Linear(*lin_config), self.relu, self.dropout,
            Linear(seq_in_size, d_out))

    def forward(self, premise, hypothesis):
        prem_embed = self.relu(self.projection(self.embed(premise)))
        hypo_embed = self.relu(self.projection(self.embed(hypothesis)))
        premise = self.encoder(prem_embed)
        hypothesis = self.encoder(hypo_embed)
        features = torch.cat([premise, hypothesis, premise - hypothesis,
                              premise * hypothesis], 1)
        return self.out(features)


def run(ports):
    model = SNLIClassifier()
    ports.start("snli", model)
    model.embed.weight.requires_grad = False
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1,
                          momentum=0.9)
    premises = torch.tensor(ports.rng.integers(0, 20, (5, 7, 4)))
    hypotheses = torch.tensor(ports.rng.integers(0, 20, (5, 6, 4)))
    labels = torch.tensor(ports.rng.integers(0, 3, (5, 4)))
    report = {"losses": [], "frozen_grad": None}
    for step in range(5):
        model.train()
        opt.zero_grad()
        answer = model(premises[step], hypotheses[step])
        loss = criterion(answer, labels[step])
        loss.backward()
        opt.step()
        report["losses"].append(loss.item())
        if step == 2:
            model.embed.weight.requires_grad = True
            opt.add_param_group({"params": [model.embed.weight], "lr": 0.05})
    report["frozen_grad"] = model.embed.weight.grad is None
    model.eval()
    with torch.no_grad():
        answer = model(premises[0], hypotheses[0])
        n_correct = (torch.max(answer, 1)[1].view(labels[0].size()) == labels[0]).sum().item()
    report["correct"] = n_correct
    report["running_var"] = model.out[3].running_var.sum().item()
    return report
